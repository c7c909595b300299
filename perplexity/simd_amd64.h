// Macros shared by the amd64 assembly of this package: each idiom that
// several kernels need, written once. A .s file takes them with
// #include "simd_amd64.h" (after textflag.h).
//
// Go's operand order is the reverse of Intel's: VADDPS b, a, d is
// d = a + b. Every register a macro writes besides its results is a
// parameter (scratch registers included); the macros read no memory but
// what they are given and leave the flags alone. Macros marked AVX2 are
// VEX-encoded and run on any AVX2+FMA CPU, so their registers must be
// among X0-X15/Y0-Y15; those marked AVX-512 need AVX512F and take any of
// the 32.
//
// Each reduction states the order of its additions and, where it has
// one, the C reference it reproduces. Within one addition the operands may stand in either order:
// IEEE addition is commutative, so the sums are the reference's bit for
// bit (only which of two NaN payloads propagates could differ).

// ZEROY4 clears the Y registers a, b, c, d (AVX2).
#define ZEROY4(a, b, c, d) \
	VXORPS a, a, a; \
	VXORPS b, b, b; \
	VXORPS c, c, c; \
	VXORPS d, d, d

// ZEROZ4 clears the Z registers a, b, c, d (AVX-512).
#define ZEROZ4(a, b, c, d) \
	VPXORD a, a, a; \
	VPXORD b, b, b; \
	VPXORD c, c, c; \
	VPXORD d, d, d

// BCASTD sets the 8 int32 lanes of y to val, through the general register
// r and the X register x (y's alias or a scratch) (AVX2).
#define BCASTD(val, r, y, x) \
	MOVL         val, r; \
	VMOVQ        r, x;   \
	VPBROADCASTD x, y

// BCASTQ sets the 4 int64 lanes of y to val, through the general register
// r and the X register x (y's alias or a scratch) (AVX2).
#define BCASTQ(val, r, y, x) \
	MOVQ         val, r; \
	VMOVQ        r, x;   \
	VPBROADCASTQ x, y

// BCASTDZ sets the 16 int32 lanes of z to val, through the general
// register r (AVX-512).
#define BCASTDZ(val, r, z) \
	MOVL         val, r; \
	VPBROADCASTD r, z

// FMA4 is one token row of a 4-row outer product:
// a_i += x · w_i lane-wise by fused multiply-adds, i = 0..3 in order.
#define FMA4(x, w0, w1, w2, w3, a0, a1, a2, a3) \
	VFMADD231PS w0, x, a0; \
	VFMADD231PS w1, x, a1; \
	VFMADD231PS w2, x, a2; \
	VFMADD231PS w3, x, a3

// SCALEFMA adds t · (*a · *b) lane-wise to the Y register acc by a fused
// multiply-add, the scale product rounded to float32 first and broadcast
// (u: Y scratch, xu: its X alias): ggml's
// _mm256_fmadd_ps(_mm256_set1_ps(d_a * d_b), t, acc) (AVX2).
#define SCALEFMA(a, b, t, acc, u, xu) \
	VMOVSS       a, xu;     \
	VMULSS       b, xu, xu; \
	VBROADCASTSS xu, u;     \
	VFMADD231PS  t, u, acc

// LOADZ4 loads the Z registers a, b, c, d from the 256 bytes at mem, an
// address written with its displacement (0(BX), 64(SI)(R11*1)).
#define LOADZ4(mem, a, b, c, d) \
	VMOVUPS mem, a;     \
	VMOVUPS 64+mem, b;  \
	VMOVUPS 128+mem, c; \
	VMOVUPS 192+mem, d

// STOREZ4 stores the Z registers a, b, c, d at the 256 bytes at mem (as
// in LOADZ4).
#define STOREZ4(a, b, c, d, mem) \
	VMOVUPS a, mem;     \
	VMOVUPS b, 64+mem;  \
	VMOVUPS c, 128+mem; \
	VMOVUPS d, 192+mem

// STORE4SS stores the low lanes of the X registers a, b, c, d at 0, 4, 8,
// 12 bytes from the general register r.
#define STORE4SS(a, b, c, d, r) \
	VMOVSS a, (r);  \
	VMOVSS b, 4(r); \
	VMOVSS c, 8(r); \
	VMOVSS d, 12(r)

// SUM4 leaves (x0+x2) + (x1+x3) of the 4 float32 lanes of x in its low
// lane (s: X scratch): the last two steps of ggml's hsum_float_8 and of
// gcc's _mm512_reduce_add_ps. The first step forms x0+x2, x1+x3 in lanes
// 0, 1; ggml's _mm_movehl_ps and gcc's shuffle {2, 3, 0, 1} (VPERMILPS
// $0x4E, used here) put the same two lanes there. AVX2 for x, s in
// X0-X15, else AVX-512.
#define SUM4(x, s) \
	VPERMILPS $0x4E, x, s; \
	VADDPS    s, x, x;     \
	VMOVSHDUP x, s;        \
	VADDSS    s, x, x

// FOLD128 adds the high 128-bit half of the Y register y lane-wise to its
// low half x (its X alias; s: X scratch): x = y[0:4] + y[4:8] (AVX2).
#define FOLD128(y, x, s) \
	VEXTRACTF128 $1, y, s; \
	VADDPS       s, x, x

// HSUM8 is ggml's hsum_float_8 of the Y register y (x: its X alias; s: X
// scratch), left in the low lane of x: the 128-bit halves added
// lane-wise, c = y[0:4] + y[4:8], then (c0+c2) + (c1+c3) (AVX2).
#define HSUM8(y, x, s) \
	FOLD128(y, x, s); \
	SUM4(x, s)

// REDUCE16 is gcc's _mm512_reduce_add_ps of the Z register z (y, x: its Y
// and X aliases; ys, xs: the Y and X aliases of one scratch register),
// left in the low lane of x: the 256-bit halves added lane-wise, then the
// 128-bit halves, then (0+2) + (1+3) (AVX-512).
#define REDUCE16(z, y, x, ys, xs) \
	VEXTRACTF64X4 $1, z, ys; \
	VADDPS        ys, y, y;  \
	VEXTRACTF32X4 $1, y, xs; \
	VADDPS        xs, x, x;  \
	SUM4(x, xs)

// REDUCE16Y is REDUCE16 of 16 lanes held in two Y registers, a (lanes
// 0-7, X alias xa) and b (lanes 8-15), for AVX2 (s: X scratch); a is
// overwritten with a + b.
#define REDUCE16Y(a, xa, b, s) \
	VADDPS b, a, a; \
	HSUM8(a, xa, s)

// HADD8 sums the 8 float32 lanes of y into the low lane of x (its X
// alias; s: X scratch) as ((y0+y4) + (y1+y5)) + ((y2+y6) + (y3+y7)): the
// halves added lane-wise, then two horizontal adds: the order of this
// package's own AVX2 float32 kernels (dotAVX, dot4x3), no C reference
// (AVX2).
#define HADD8(y, x, s) \
	FOLD128(y, x, s);   \
	VHADDPS x, x, x;    \
	VHADDPS x, x, x

// HADD8X4 sums the 8 lanes of each of a, b, c, d in HADD8's order into
// xa = [Σa, Σb, Σc, Σd] (xa..xd: their X aliases; s: X scratch) (AVX2).
#define HADD8X4(a, xa, b, xb, c, xc, d, xd, s) \
	FOLD128(a, xa, s);  \
	FOLD128(b, xb, s);  \
	FOLD128(c, xc, s);  \
	FOLD128(d, xd, s);  \
	VHADDPS xb, xa, xa; \
	VHADDPS xd, xc, xc; \
	VHADDPS xc, xa, xa

// IFOLD256 adds the high 256-bit half of the Z register z lane-wise to its
// low half y (its Y alias) as int32 lanes (s: Y scratch) (AVX-512).
#define IFOLD256(z, y, s) \
	VEXTRACTI64X4 $1, z, s; \
	VPADDD        s, y, y

// ISUM8X4 sums the 8 int32 lanes of each of the Y registers a, b, c, d
// into xa = [Σa, Σb, Σc, Σd] (xa: a's X alias; b, c overwritten; s: X
// scratch). Integer sums are exact in any order (AVX2).
#define ISUM8X4(a, xa, b, c, d, s) \
	VPHADDD      b, a, a;  \
	VPHADDD      d, c, c;  \
	VPHADDD      c, a, a;  \
	VEXTRACTI128 $1, a, s; \
	VPADDD       s, xa, xa

// ISUM8 sums the 8 int32 lanes of y into the low lane of x (its X alias;
// s: X scratch). Integer sums are exact in any order (AVX2).
#define ISUM8(y, x, s) \
	VEXTRACTI128 $1, y, s;    \
	VPADDD       s, x, x;     \
	VPSHUFD      $0x4E, x, s; \
	VPADDD       s, x, x;     \
	VPSHUFD      $0xB1, x, s; \
	VPADDD       s, x, x
