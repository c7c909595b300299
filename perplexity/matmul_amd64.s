//go:build amd64 && !purego

#include "textflag.h"
#include "simd_amd64.h"

// AVX2/FMA float32 kernels for the matrix products and attention (see
// matmul.go). Go's operand order is the reverse of Intel's:
// VFMADD231PS a, b, d is d += b·a.

// func dot4x3(x *float32, ldx int, w *float32, ldw int, k int, dst *float32, ldd int)
//
// dst[t·ldd + r] = x_t · w_r for t < 3, r < 4.
TEXT ·dot4x3(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), SI
	MOVQ ldx+8(FP), DX
	MOVQ w+16(FP), DI
	MOVQ ldw+24(FP), R8
	MOVQ k+32(FP), CX
	MOVQ dst+40(FP), BX
	SHLQ $2, DX
	SHLQ $2, R8
	SHLQ $2, CX
	LEAQ (SI)(DX*1), R12
	LEAQ (R12)(DX*1), R13
	LEAQ (DI)(R8*1), R9
	LEAQ (R9)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	ZEROY4(Y0, Y1, Y2, Y3)
	ZEROY4(Y4, Y5, Y6, Y7)
	ZEROY4(Y8, Y9, Y10, Y11)
	XORQ   AX, AX

loop4x3:
	VMOVUPS     (SI)(AX*1), Y12
	VMOVUPS     (R12)(AX*1), Y13
	VMOVUPS     (R13)(AX*1), Y14
	VMOVUPS     (DI)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS     (R9)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS     (R10)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R11)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $32, AX
	CMPQ        AX, CX
	JLT         loop4x3

	MOVQ ldd+48(FP), DX
	SHLQ $2, DX
	HADD8X4(Y0, X0, Y3, X3, Y6, X6, Y9, X9, X12)
	VMOVUPS X0, (BX)
	ADDQ    DX, BX
	HADD8X4(Y1, X1, Y4, X4, Y7, X7, Y10, X10, X12)
	VMOVUPS X1, (BX)
	ADDQ    DX, BX
	HADD8X4(Y2, X2, Y5, X5, Y8, X8, Y11, X11, X12)
	VMOVUPS X2, (BX)
	VZEROUPPER
	RET

// ROWS4X16 is one step of dot4x1avx and dot4x1t16: the 16 elements of x
// at offset AX (SI) by fused multiply-adds into the accumulators of the
// four weight rows DI, R9, R10, R11: elements 0-7 into Y0-Y3, 8-15 into
// Y4-Y7 (Y12, Y13 scratch).
#define ROWS4X16 \
	VMOVUPS     (SI)(AX*1), Y12;       \
	VMOVUPS     32(SI)(AX*1), Y13;     \
	VFMADD231PS (DI)(AX*1), Y12, Y0;   \
	VFMADD231PS (R9)(AX*1), Y12, Y1;   \
	VFMADD231PS (R10)(AX*1), Y12, Y2;  \
	VFMADD231PS (R11)(AX*1), Y12, Y3;  \
	VFMADD231PS 32(DI)(AX*1), Y13, Y4; \
	VFMADD231PS 32(R9)(AX*1), Y13, Y5; \
	VFMADD231PS 32(R10)(AX*1), Y13, Y6; \
	VFMADD231PS 32(R11)(AX*1), Y13, Y7

// func dot4x1avx(x *float32, w *float32, ldw int, k int, dst *float32)
//
// Two accumulators per row (even and odd 8-element steps) hide the FMA
// latency; k/8 may be odd.
TEXT ·dot4x1avx(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ ldw+16(FP), R8
	MOVQ k+24(FP), CX
	MOVQ dst+32(FP), BX
	SHLQ $2, R8
	SHLQ $2, CX
	LEAQ (DI)(R8*1), R9
	LEAQ (R9)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	ZEROY4(Y0, Y1, Y2, Y3)
	ZEROY4(Y4, Y5, Y6, Y7)
	XORQ   AX, AX
	MOVQ   CX, DX
	ANDQ   $-64, DX
	JZ     tail4x1

loop4x1:
	ROWS4X16
	ADDQ        $64, AX
	CMPQ        AX, DX
	JLT         loop4x1

tail4x1:
	CMPQ        AX, CX
	JGE         done4x1
	VMOVUPS     (SI)(AX*1), Y12
	VFMADD231PS (DI)(AX*1), Y12, Y0
	VFMADD231PS (R9)(AX*1), Y12, Y1
	VFMADD231PS (R10)(AX*1), Y12, Y2
	VFMADD231PS (R11)(AX*1), Y12, Y3

done4x1:
	VADDPS  Y4, Y0, Y0
	VADDPS  Y5, Y1, Y1
	VADDPS  Y6, Y2, Y2
	VADDPS  Y7, Y3, Y3
	HADD8X4(Y0, X0, Y1, X1, Y2, X2, Y3, X3, X12)
	VMOVUPS X0, (BX)
	VZEROUPPER
	RET

// DOTAVXBODY is the loop of dotAVX, shared by scoresAVX so that each of its
// scores is computed exactly as dotAVX computes it: with SI = a, DI = b,
// CX = n·4 bytes, DX = CX rounded down to a multiple of 128 and AX = 0,
// entered at blk if DX > 0, else at tail: four accumulators Y0-Y3 over
// 32-element steps, then 8-element steps into Y0, then
// (Y0+Y1) + (Y2+Y3) summed by HADD8 into the low lane of X0 (Y4-Y7
// scratch).
#define DOTAVXBODY(blk, tail, done) \
blk: \
	VMOVUPS     (SI)(AX*1), Y4;     \
	VMOVUPS     32(SI)(AX*1), Y5;   \
	VMOVUPS     64(SI)(AX*1), Y6;   \
	VMOVUPS     96(SI)(AX*1), Y7;   \
	VFMADD231PS (DI)(AX*1), Y4, Y0; \
	VFMADD231PS 32(DI)(AX*1), Y5, Y1; \
	VFMADD231PS 64(DI)(AX*1), Y6, Y2; \
	VFMADD231PS 96(DI)(AX*1), Y7, Y3; \
	ADDQ        $128, AX;           \
	CMPQ        AX, DX;             \
	JLT         blk;                \
tail: \
	CMPQ        AX, CX;             \
	JGE         done;               \
	VMOVUPS     (SI)(AX*1), Y4;     \
	VFMADD231PS (DI)(AX*1), Y4, Y0; \
	ADDQ        $32, AX;            \
	JMP         tail;               \
done: \
	VADDPS      Y1, Y0, Y0;         \
	VADDPS      Y3, Y2, Y2;         \
	VADDPS      Y2, Y0, Y0;         \
	HADD8(Y0, X0, X4)

// func dotAVX(a, b *float32, n int) float32
//
// Four accumulators over 32-element steps, then 8-element steps
// (DOTAVXBODY).
TEXT ·dotAVX(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	SHLQ $2, CX
	ZEROY4(Y0, Y1, Y2, Y3)
	XORQ   AX, AX
	MOVQ   CX, DX
	ANDQ   $-128, DX
	JZ     tail1

	DOTAVXBODY(loop1, tail1, done1)
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func axpyAVX(y *float32, a float32, x *float32, n int)
//
// y[i] = y[i] + a·x[i], multiplied and added separately (not fused) so the
// result is the scalar Go loop's, bit for bit.
TEXT ·axpyAVX(SB), NOSPLIT, $0-32
	MOVQ         y+0(FP), DI
	VBROADCASTSS a+8(FP), Y0
	MOVQ         x+16(FP), SI
	MOVQ         n+24(FP), CX
	SHLQ         $2, CX
	XORQ         AX, AX

loopaxpy:
	VMULPS  (SI)(AX*1), Y0, Y1
	VADDPS  (DI)(AX*1), Y1, Y1
	VMOVUPS Y1, (DI)(AX*1)
	ADDQ        $32, AX
	CMPQ        AX, CX
	JLT         loopaxpy
	VZEROUPPER
	RET

// Single-precision exp on 8 lanes: Cody–Waite range reduction
// x = n·ln2 + r (|r| <= ln2/2, ln2 split in a short high part and a
// correction), exp(r) by the Cephes expf polynomial (about 1 ulp), times
// 2^n built in the exponent field. Inputs are clamped to [-87, 88] so 2^n
// stays a normal float; lanes below -87 give 0 (their true value is below
// 2^-125, nothing next to the softmax maximum's 1).
//
// Constants: Y8 log2(e), Y9 ln2 high, Y10 ln2 low, Y11 -87, Y12 88,
// Y13 1.0, Y14/Y15 scratch. EXP8 computes exp of x into x, using t, u.
#define EXP_CONSTS \
	BCASTD($0x3fb8aa3b, AX, Y8, X8); \
	BCASTD($0x3f318000, AX, Y9, X9); \
	BCASTD($0xb95e8083, AX, Y10, X10); \
	BCASTD($0xc2ae0000, AX, Y11, X11); \
	BCASTD($0x42b00000, AX, Y12, X12); \
	BCASTD($0x3f800000, AX, Y13, X13)

// EXP8(x, t, u, m): x = exp(x); t, u, m scratch Y registers (m keeps the
// underflow mask until the end). Uses AX.
#define EXP8(x, t, u, m) \
	VCMPPS       $0x11, Y11, x, m; \
	VMAXPS       Y11, x, x;        \
	VMINPS       Y12, x, x;        \
	VMULPS       Y8, x, t;         \
	VROUNDPS     $0, t, t;         \
	VFNMADD231PS Y9, t, x;         \
	VFNMADD231PS Y10, t, x;        \
	BCASTD($0x39506967, AX, u, X14);   \
	BCASTD($0x3ab743ce, AX, Y15, X15); \
	VFMADD213PS  Y15, x, u;        \
	BCASTD($0x3c088908, AX, Y15, X15); \
	VFMADD213PS  Y15, x, u;        \
	BCASTD($0x3d2aa9c1, AX, Y15, X15); \
	VFMADD213PS  Y15, x, u;        \
	BCASTD($0x3e2aaaaa, AX, Y15, X15); \
	VFMADD213PS  Y15, x, u;        \
	BCASTD($0x3f000000, AX, Y15, X15); \
	VFMADD213PS  Y15, x, u;        \
	VMULPS       x, x, Y15;        \
	VFMADD213PS  x, Y15, u;        \
	VADDPS       Y13, u, u;        \
	VCVTPS2DQ    t, t;             \
	BCASTD($127, AX, Y15, X15);        \
	VPADDD       Y15, t, t;        \
	VPSLLD       $23, t, t;        \
	VMULPS       t, u, x;          \
	VANDNPS      x, m, x

// func swigluAVX(gp, u *float32, n int)
//
// g[i] = g[i] / (1 + exp(−g[i])) · u[i] for n a positive multiple of 8.
TEXT ·swigluAVX(SB), NOSPLIT, $0-24
	MOVQ   gp+0(FP), DI
	MOVQ   u+8(FP), SI
	MOVQ   n+16(FP), CX
	EXP_CONSTS
	VXORPS Y7, Y7, Y7
	SHLQ   $2, CX
	XORQ   DX, DX

loopswiglu:
	VMOVUPS (DI)(DX*1), Y4
	VSUBPS  Y4, Y7, Y0
	EXP8(Y0, Y1, Y2, Y3)
	VADDPS  Y13, Y0, Y0
	VDIVPS  Y0, Y4, Y4
	VMULPS  (SI)(DX*1), Y4, Y4
	VMOVUPS Y4, (DI)(DX*1)
	ADDQ    $32, DX
	CMPQ    DX, CX
	JLT     loopswiglu
	VZEROUPPER
	RET

// func pvAVX(out *float32, s *float32, inv float32, v *float32, ldv, n, d int)
//
// out[i] += (s[j]·inv)·v[j·ldv+i] for j = 0..n-1 in order, i < d (d a
// positive multiple of 8, n >= 1): the weighted sum of attention values with
// out held in registers across j. Each product and sum is rounded
// separately (no FMA), so the result is the scalar Go loop's, bit for bit.
TEXT ·pvAVX(SB), NOSPLIT, $0-56
	MOVQ         out+0(FP), DI
	MOVQ         s+8(FP), SI
	VBROADCASTSS inv+16(FP), Y15
	MOVQ         v+24(FP), DX
	MOVQ         ldv+32(FP), R8
	MOVQ         n+40(FP), CX
	MOVQ         d+48(FP), BX
	SHLQ         $2, R8
	SHLQ         $2, BX
	XORQ         R9, R9

pv32:
	MOVQ    BX, AX
	SUBQ    R9, AX
	CMPQ    AX, $128
	JLT     pv8
	VMOVUPS (DI)(R9*1), Y0
	VMOVUPS 32(DI)(R9*1), Y1
	VMOVUPS 64(DI)(R9*1), Y2
	VMOVUPS 96(DI)(R9*1), Y3
	LEAQ    (DX)(R9*1), R10
	XORQ    R11, R11

pvloop32:
	VBROADCASTSS (SI)(R11*4), Y4
	VMULPS       Y15, Y4, Y4
	VMULPS       (R10), Y4, Y5
	VADDPS       Y5, Y0, Y0
	VMULPS       32(R10), Y4, Y6
	VADDPS       Y6, Y1, Y1
	VMULPS       64(R10), Y4, Y7
	VADDPS       Y7, Y2, Y2
	VMULPS       96(R10), Y4, Y8
	VADDPS       Y8, Y3, Y3
	ADDQ         R8, R10
	INCQ         R11
	CMPQ         R11, CX
	JLT          pvloop32
	VMOVUPS      Y0, (DI)(R9*1)
	VMOVUPS      Y1, 32(DI)(R9*1)
	VMOVUPS      Y2, 64(DI)(R9*1)
	VMOVUPS      Y3, 96(DI)(R9*1)
	ADDQ         $128, R9
	JMP          pv32

pv8:
	CMPQ    R9, BX
	JGE     pvdone
	VMOVUPS (DI)(R9*1), Y0
	LEAQ    (DX)(R9*1), R10
	XORQ    R11, R11

pvloop8:
	VBROADCASTSS (SI)(R11*4), Y4
	VMULPS       Y15, Y4, Y4
	VMULPS       (R10), Y4, Y5
	VADDPS       Y5, Y0, Y0
	ADDQ         R8, R10
	INCQ         R11
	CMPQ         R11, CX
	JLT          pvloop8
	VMOVUPS      Y0, (DI)(R9*1)
	ADDQ         $32, R9
	JMP          pv8

pvdone:
	VZEROUPPER
	RET

// func expNegAVX(dst, src *float32, n int, sub float32)
//
// dst[i] = float32(exp(float64(src[i] − sub))) for n a positive multiple of
// 4 and src[i] − sub <= 0 (the softmax terms): the float32 difference is
// widened and exp is evaluated in float64, four lanes at a time, with the
// operations of Go's portable math.Exp (k = int(x·log2e − 0.5), hi/lo
// Cody–Waite reduction, the same degree-5 Remez polynomial and
// 1 − ((lo − r·c/(2−c)) − hi), scaled by 2^k; multiplies and adds rounded
// separately), then rounded to float32. Inputs below −120 give 0, as
// float32(math.Exp) does.
TEXT ·expNegAVX(SB), NOSPLIT, $0-28
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS sub+24(FP), Y15
	BCASTQ($0x3fe62e42fee00000, AX, Y6, X6)  // Ln2Hi
	BCASTQ($0x3dea39ef35793c76, AX, Y7, X7)  // Ln2Lo
	BCASTQ($0x3ff71547652b82fe, AX, Y8, X8)  // Log2e
	BCASTQ($0x3fe0000000000000, AX, Y9, X9)  // 0.5
	BCASTQ($0x3ff0000000000000, AX, Y10, X10) // 1
	BCASTQ($0x3fc5555555555555, AX, Y11, X11) // P1
	BCASTQ($0xbf66c16c16bebd93, AX, Y12, X12) // P2
	BCASTQ($0x3f11566aaf25de2c, AX, Y13, X13) // P3
	BCASTQ($0xbebbbd41c5d26bf1, AX, Y14, X14) // P4
	SHLQ         $2, CX
	XORQ         DX, DX

loopexpneg:
	VMOVUPS   (SI)(DX*1), X0
	VSUBPS    X15, X0, X0
	VCVTPS2PD X0, Y0
	BCASTQ($0xc05e000000000000, AX, Y1, X1) // -120
	VMAXPD    Y1, Y0, Y0
	VMULPD    Y8, Y0, Y1
	VSUBPD    Y9, Y1, Y1
	VROUNDPD  $3, Y1, Y1               // k = trunc(x·log2e − 0.5)
	VMULPD    Y6, Y1, Y2
	VSUBPD    Y2, Y0, Y2               // hi = x − k·Ln2Hi
	VMULPD    Y7, Y1, Y3               // lo = k·Ln2Lo
	VSUBPD    Y3, Y2, Y0               // r = hi − lo
	VMULPD    Y0, Y0, Y4               // t = r·r
	BCASTQ($0x3e66376972bea4d0, AX, Y5, X5) // P5
	VMULPD    Y5, Y4, Y5
	VADDPD    Y14, Y5, Y5
	VMULPD    Y5, Y4, Y5
	VADDPD    Y13, Y5, Y5
	VMULPD    Y5, Y4, Y5
	VADDPD    Y12, Y5, Y5
	VMULPD    Y5, Y4, Y5
	VADDPD    Y11, Y5, Y5
	VMULPD    Y5, Y4, Y5
	VSUBPD    Y5, Y0, Y5               // c = r − t·(P1+…)
	VMULPD    Y5, Y0, Y4               // r·c
	VADDPD    Y10, Y10, Y0             // 2
	VSUBPD    Y5, Y0, Y0               // 2 − c
	VDIVPD    Y0, Y4, Y4
	VSUBPD    Y4, Y3, Y3               // lo − r·c/(2−c)
	VSUBPD    Y2, Y3, Y3               // … − hi
	VSUBPD    Y3, Y10, Y3              // y = 1 − …
	VCVTPD2DQY Y1, X1
	VPMOVSXDQ X1, Y1
	BCASTQ($1023, AX, Y2, X2)
	VPADDQ    Y2, Y1, Y1
	VPSLLQ    $52, Y1, Y1              // 2^k
	VMULPD    Y1, Y3, Y3
	VCVTPD2PSY Y3, X3
	VMOVUPS   X3, (DI)(DX*1)
	ADDQ      $16, DX
	CMPQ      DX, CX
	JLT       loopexpneg
	VZEROUPPER
	RET

// func scoresAVX(s, q, k *float32, ldk, n, d int)
//
// s[j] = q · k[j·ldk:][:d] for j < n (n >= 1, d a positive multiple of 8),
// each computed exactly as dotAVX computes it.
TEXT ·scoresAVX(SB), NOSPLIT, $0-48
	MOVQ s+0(FP), BX
	MOVQ q+8(FP), SI
	MOVQ k+16(FP), DI
	MOVQ ldk+24(FP), R8
	MOVQ n+32(FP), R9
	MOVQ d+40(FP), CX
	SHLQ $2, R8
	SHLQ $2, CX
	MOVQ CX, DX
	ANDQ $-128, DX
	XORQ R10, R10

scoreloop:
	ZEROY4(Y0, Y1, Y2, Y3)
	XORQ   AX, AX
	CMPQ   DX, $0
	JEQ    scoretail

	DOTAVXBODY(scoreblk, scoretail, scoredone)
	VMOVSS X0, (BX)(R10*4)
	ADDQ   R8, DI
	INCQ   R10
	CMPQ   R10, R9
	JLT    scoreloop
	VZEROUPPER
	RET

// func q8KApply(dst, x *float32, n int, iscale, d float32)
//
// dst[i] = d·float32(min(nearest_int(iscale·x[i]), 127)) for n a positive
// multiple of 8, with ggml's nearest_int (add 1.5·2^23, keep the low 23
// bits, subtract 2^22): the operations of roundQ8_K's loop, lane by lane.
TEXT ·q8KApply(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS iscale+24(FP), Y12
	VBROADCASTSS d+28(FP), Y13
	BCASTD($0x4b400000, AX, Y8, X8)
	BCASTD($0x007fffff, AX, Y9, X9)
	BCASTD($0x00400000, AX, Y10, X10)
	BCASTD($127, AX, Y11, X11)
	SHLQ         $2, CX
	XORQ         DX, DX

loopq8k:
	VMULPS    (SI)(DX*1), Y12, Y0
	VADDPS    Y8, Y0, Y0
	VPAND     Y9, Y0, Y0
	VPSUBD    Y10, Y0, Y0
	VPMINSD   Y11, Y0, Y0
	VCVTDQ2PS Y0, Y0
	VMULPS    Y13, Y0, Y0
	VMOVUPS   Y0, (DI)(DX*1)
	ADDQ      $32, DX
	CMPQ      DX, CX
	JLT       loopq8k
	VZEROUPPER
	RET

// func q80Apply(dst, x *float32, n int, id, d float32)
//
// dst[i] = d·roundeven(x[i]·id) for n a positive multiple of 8: the
// operations of roundQ8_0's loop, lane by lane.
TEXT ·q80Apply(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS id+24(FP), Y12
	VBROADCASTSS d+28(FP), Y13
	SHLQ         $2, CX
	XORQ         DX, DX

loopq80:
	VMULPS   (SI)(DX*1), Y12, Y0
	VROUNDPS $0, Y0, Y0
	VMULPS   Y13, Y0, Y0
	VMOVUPS  Y0, (DI)(DX*1)
	ADDQ     $32, DX
	CMPQ     DX, CX
	JLT      loopq80
	VZEROUPPER
	RET

// func dot4x1t16(x *float32, w *float32, ldw int, k int, dst *float32)
//
// dst[r] = x · w_r for four weight rows in tinyBLAS<16, __m512>'s order:
// 16 lanes, lane l accumulating elements 16j+l by fused multiply-adds in
// order of j, then _mm512_reduce_add_ps (k a positive multiple of 16).
TEXT ·dot4x1t16(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ ldw+16(FP), R8
	MOVQ k+24(FP), CX
	MOVQ dst+32(FP), BX
	SHLQ $2, R8
	SHLQ $2, CX
	LEAQ (DI)(R8*1), R9
	LEAQ (R9)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	ZEROY4(Y0, Y1, Y2, Y3)
	ZEROY4(Y4, Y5, Y6, Y7)
	XORQ   AX, AX

loopt16:
	ROWS4X16
	ADDQ        $64, AX
	CMPQ        AX, CX
	JLT         loopt16

	REDUCE16Y(Y0, X0, Y4, X14)
	REDUCE16Y(Y1, X1, Y5, X14)
	REDUCE16Y(Y2, X2, Y6, X14)
	REDUCE16Y(Y3, X3, Y7, X14)
	STORE4SS(X0, X1, X2, X3, BX)
	VZEROUPPER
	RET

// func q0dot(w, x *int8, dw, dx *float32, nb int) float32
//
// For nb blocks of 32 codes: lane m of 8 float32 accumulators += (dw[b]·
// dx[b]) · Σ of the products of codes 4m..4m+3 of block b, by a fused
// multiply-add, the integer sums exact (VPSIGNB/VPMADDUBSW/VPMADDWD as
// ggml's mul_sum_i8_pairs_float; codes in [-127, 127]); then the lanes
// summed as hsum_float_8 does.
TEXT ·q0dot(SB), NOSPLIT, $0-44
	MOVQ         w+0(FP), SI
	MOVQ         x+8(FP), DI
	MOVQ         dw+16(FP), DX
	MOVQ         dx+24(FP), R9
	MOVQ         nb+32(FP), CX
	VXORPS       Y0, Y0, Y0
	BCASTD($0x00010001, AX, Y15, X15)

loopq0:
	VMOVDQU      (SI), Y1
	VMOVDQU      (DI), Y2
	VPSIGNB      Y1, Y1, Y3
	VPSIGNB      Y1, Y2, Y4
	VPMADDUBSW   Y4, Y3, Y5
	VPMADDWD     Y15, Y5, Y5
	VCVTDQ2PS    Y5, Y5
	SCALEFMA((DX), (R9), Y5, Y0, Y6, X6)
	ADDQ         $32, SI
	ADDQ         $32, DI
	ADDQ         $4, DX
	ADDQ         $4, R9
	DECQ         CX
	JNZ          loopq0

	HSUM8(Y0, X0, X1)
	VMOVSS       X0, ret+40(FP)
	VZEROUPPER
	RET

// func faScores(q *float32, kt *float32, d int, out *float32)
//
// out[j] = fma-chain over i < d of q[i]·kt[i·64+j] (in order of i, from 0)
// for the 64 keys j of a flash-attention tile (kt: the tile transposed).
TEXT ·faScores(SB), NOSPLIT, $0-32
	MOVQ   q+0(FP), SI
	MOVQ   kt+8(FP), DI
	MOVQ   d+16(FP), CX
	MOVQ   out+24(FP), BX
	ZEROY4(Y0, Y1, Y2, Y3)
	ZEROY4(Y4, Y5, Y6, Y7)

loopfas:
	VBROADCASTSS (SI), Y8
	VFMADD231PS  (DI), Y8, Y0
	VFMADD231PS  32(DI), Y8, Y1
	VFMADD231PS  64(DI), Y8, Y2
	VFMADD231PS  96(DI), Y8, Y3
	VFMADD231PS  128(DI), Y8, Y4
	VFMADD231PS  160(DI), Y8, Y5
	VFMADD231PS  192(DI), Y8, Y6
	VFMADD231PS  224(DI), Y8, Y7
	ADDQ         $4, SI
	ADDQ         $256, DI
	DECQ         CX
	JNZ          loopfas

	VMOVUPS Y0, (BX)
	VMOVUPS Y1, 32(BX)
	VMOVUPS Y2, 64(BX)
	VMOVUPS Y3, 96(BX)
	VMOVUPS Y4, 128(BX)
	VMOVUPS Y5, 160(BX)
	VMOVUPS Y6, 192(BX)
	VMOVUPS Y7, 224(BX)
	VZEROUPPER
	RET

// func faPV(p *float32, v *float32, ldv, n, d int, out *float32)
//
// out[i] = fma(p[j], v[j·ldv+i], out[i]) for j < n in order, i < d (d a
// positive multiple of 8).
TEXT ·faPV(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ ldv+16(FP), R8
	MOVQ n+24(FP), CX
	MOVQ d+32(FP), R9
	MOVQ out+40(FP), BX
	SHLQ $2, R8
	SHLQ $2, R9

loopfapj:
	VBROADCASTSS (SI), Y8
	XORQ         AX, AX

loopfapi:
	VMOVUPS     (BX)(AX*1), Y0
	VFMADD231PS (DI)(AX*1), Y8, Y0
	VMOVUPS     Y0, (BX)(AX*1)
	ADDQ        $32, AX
	CMPQ        AX, R9
	JLT         loopfapi
	ADDQ        $4, SI
	ADDQ        R8, DI
	DECQ        CX
	JNZ         loopfapj
	VZEROUPPER
	RET

