//go:build amd64 && !purego

#include "textflag.h"
#include "simd_amd64.h"

// Q2X4TOK multiplies the block codes of two rows (W0, W1 = Y8, Y9; their
// −128·Σ corrections in Y10, Y11; their scales broadcast in Y12, Y13) with
// one token's offset codes at xaddr (x + 128 as unsigned bytes) and its
// scale at daddr, accumulating into acc0 (row 0) and acc1 (row 1):
// Σ (x+128)·w − 128·Σw = Σ x·w lane by lane, exactly the int32 lanes of
// ggml's mul_sum_i8_pairs_float, then acc += (dw·dx) · float(lanes).
#define Q2X4TOK(xaddr, daddr, acc0, acc1) \
	VMOVDQU     xaddr, Y14;        \
	VMOVDQA64   Y10, Y16;          \
	VMOVDQA64   Y11, Y17;          \
	VPDPBUSD    Y8, Y14, Y16;      \
	VPDPBUSD    Y9, Y14, Y17;      \
	VCVTDQ2PS   Y16, Y16;          \
	VCVTDQ2PS   Y17, Y17;          \
	VBROADCASTSS daddr, Y18;       \
	VMULPS      Y18, Y12, Y19;     \
	VMULPS      Y18, Y13, Y18;     \
	VFMADD231PS Y16, Y19, acc0;    \
	VFMADD231PS Y17, Y18, acc1

// Q2X4OUT stores hsum_float_8 of ya (xa its low half) at addr (X8 is free
// once the loop is done).
#define Q2X4OUT(ya, xa, addr) \
	HSUM8(ya, xa, X8); \
	VMOVSS xa, addr

// Q2X4INIT zeroes the eight accumulators Y0-Y7 and sets Y15 to bytes of
// 128 and Y20 to zero.
#define Q2X4INIT \
	ZEROY4(Y0, Y1, Y2, Y3);             \
	ZEROY4(Y4, Y5, Y6, Y7);             \
	BCASTD($0x80808080, AX, Y15, X15); \
	VPXORD Y20, Y20, Y20

// Q2X4CORR sets Y10, Y11 to −128·Σw of the block codes in Y8, Y9, four
// codes per int32 lane.
#define Q2X4CORR \
	VPXORD   Y10, Y10, Y10; \
	VPXORD   Y11, Y11, Y11; \
	VPDPBUSD Y8, Y15, Y10;  \
	VPDPBUSD Y9, Y15, Y11;  \
	VPSUBD   Y10, Y20, Y10; \
	VPSUBD   Y11, Y20, Y11

// Q2X4STORE stores the eight sums (rows 0, 1 of four tokens) at BX, the
// tokens AX·4 bytes apart.
#define Q2X4STORE \
	SHLQ    $2, AX;                 \
	Q2X4OUT(Y0, X0, (BX));          \
	Q2X4OUT(Y1, X1, 4(BX));         \
	ADDQ    AX, BX;                 \
	Q2X4OUT(Y2, X2, (BX));          \
	Q2X4OUT(Y3, X3, 4(BX));         \
	ADDQ    AX, BX;                 \
	Q2X4OUT(Y4, X4, (BX));          \
	Q2X4OUT(Y5, X5, 4(BX));         \
	ADDQ    AX, BX;                 \
	Q2X4OUT(Y6, X6, (BX));          \
	Q2X4OUT(Y7, X7, 4(BX))

// func q0dot2x4(w0, w1 *int8, dw0, dw1 *float32, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)
//
// q0dot of two rows (codes w0, w1, scales dw0, dw1) with four tokens
// (offset codes xu + t·k, scales dx + t·nb): dst[t·ldd] (row 0) and
// dst[t·ldd+1] (row 1) for t < 4, in ggml_vec_dot_q8_0_q8_0's AVX2 order
// (per block: scale product, fused multiply-add of the eight int32 lanes,
// then hsum_float_8), the lanes computed by VPDPBUSD (AVX512_VNNI).
TEXT ·q0dot2x4(SB), NOSPLIT, $0-80
	MOVQ w0+0(FP), SI
	MOVQ w1+8(FP), R13
	MOVQ dw0+16(FP), DX
	MOVQ dw1+24(FP), R14
	MOVQ xu+32(FP), DI
	MOVQ k+40(FP), R8
	LEAQ (R8)(R8*2), R9
	MOVQ dx+48(FP), R10
	MOVQ nb+56(FP), CX
	MOVQ CX, R11
	SHLQ $2, R11
	LEAQ (R11)(R11*2), R12
	Q2X4INIT

q2x4loop:
	VMOVDQU      (SI), Y8
	VMOVDQU      (R13), Y9
	Q2X4CORR
	VBROADCASTSS (DX), Y12
	VBROADCASTSS (R14), Y13
	Q2X4TOK((DI), (R10), Y0, Y1)
	Q2X4TOK((DI)(R8*1), (R10)(R11*1), Y2, Y3)
	Q2X4TOK((DI)(R8*2), (R10)(R11*2), Y4, Y5)
	Q2X4TOK((DI)(R9*1), (R10)(R12*1), Y6, Y7)
	ADDQ         $32, SI
	ADDQ         $32, R13
	ADDQ         $32, DI
	ADDQ         $4, DX
	ADDQ         $4, R14
	ADDQ         $4, R10
	DECQ         CX
	JNZ          q2x4loop

	MOVQ    dst+64(FP), BX
	MOVQ    ldd+72(FP), AX
	Q2X4STORE
	VZEROUPPER
	RET

// func q0dot2x4raw(w0, w1 *byte, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)
//
// q0dot2x4 on two stored Q8_0 rows (block_q8_0: fp16 d, then 32 codes;
// 34 bytes a block) read in place: each block's scale widened by
// VCVTPH2PS (exact) and broadcast, its codes loaded from offset 2.
TEXT ·q0dot2x4raw(SB), NOSPLIT, $0-64
	MOVQ w0+0(FP), SI
	MOVQ w1+8(FP), R13
	MOVQ xu+16(FP), DI
	MOVQ k+24(FP), R8
	LEAQ (R8)(R8*2), R9
	MOVQ dx+32(FP), R10
	MOVQ nb+40(FP), CX
	MOVQ CX, R11
	SHLQ $2, R11
	LEAQ (R11)(R11*2), R12
	Q2X4INIT

q2x4rloop:
	VMOVDQU      2(SI), Y8
	VMOVDQU      2(R13), Y9
	Q2X4CORR
	VPBROADCASTW (SI), X12
	VPBROADCASTW (R13), X13
	VCVTPH2PS    X12, Y12
	VCVTPH2PS    X13, Y13
	Q2X4TOK((DI), (R10), Y0, Y1)
	Q2X4TOK((DI)(R8*1), (R10)(R11*1), Y2, Y3)
	Q2X4TOK((DI)(R8*2), (R10)(R11*2), Y4, Y5)
	Q2X4TOK((DI)(R9*1), (R10)(R12*1), Y6, Y7)
	ADDQ         $34, SI
	ADDQ         $34, R13
	ADDQ         $32, DI
	ADDQ         $4, R10
	DECQ         CX
	JNZ          q2x4rloop

	MOVQ    dst+48(FP), BX
	MOVQ    ldd+56(FP), AX
	Q2X4STORE
	VZEROUPPER
	RET

// func q80Block(q *int8, u *uint8, d *float32, x *float32) bool
//
// One block of 32 activations as quantize_row_q8_0 makes it (see
// q8Blocks.quantize): amax = max |x[i]|, *d = fp16(amax/127) (VCVTPS2PH,
// round to nearest even), q[i] = x[i]·(127/amax) rounded to even (zero
// codes when *d is 0) and u[i] = q[i] + 128. It reports false, leaving
// the outputs unspecified, when amax or *d is not finite.
TEXT ·q80Block(SB), NOSPLIT, $0-33
	MOVQ          q+0(FP), DI
	MOVQ          u+8(FP), R8
	MOVQ          d+16(FP), R9
	MOVQ          x+24(FP), SI
	VMOVUPS       (SI), Z0
	VMOVUPS       64(SI), Z2
	MOVL          $0x7fffffff, AX
	VPBROADCASTD  AX, Z3
	VPANDD        Z3, Z0, Z4
	VPANDD        Z3, Z2, Z5
	VPMAXUD       Z5, Z4, Z4                 // |x| as bits: ordered as the values (NaN above +Inf)
	VEXTRACTI64X4 $1, Z4, Y5
	VPMAXUD       Y5, Y4, Y4
	VEXTRACTI128  $1, Y4, X5
	VPMAXUD       X5, X4, X4
	VPSHUFD       $0x4E, X4, X5
	VPMAXUD       X5, X4, X4
	VPSHUFD       $0xB1, X4, X5
	VPMAXUD       X5, X4, X4                 // lane 0: amax
	VMOVD         X4, AX
	CMPL          AX, $0x7f800000
	JAE           q80bad
	MOVL          $0x42fe0000, BX            // 127.0
	VMOVD         BX, X6
	VDIVSS        X6, X4, X7                 // amax / 127
	VCVTPS2PH     $0, X7, X7
	VCVTPH2PS     X7, X7
	VMOVD         X7, BX
	CMPL          BX, $0x7f800000
	JAE           q80bad
	MOVL          BX, (R9)
	MOVL          $0x80808080, CX
	VPBROADCASTD  CX, X10
	TESTL         BX, BX
	JZ            q80zero
	VDIVSS        X4, X6, X9                 // 127 / amax
	VBROADCASTSS  X9, Z9
	VMULPS        Z9, Z0, Z0
	VMULPS        Z9, Z2, Z2
	VCVTPS2DQ     Z0, Z0
	VCVTPS2DQ     Z2, Z2
	VPMOVSDB      Z0, X0
	VPMOVSDB      Z2, X2
	VMOVDQU       X0, (DI)
	VMOVDQU       X2, 16(DI)
	VPXORD        X10, X0, X0
	VPXORD        X10, X2, X2
	VMOVDQU       X0, (R8)
	VMOVDQU       X2, 16(R8)
	MOVB          $1, ret+32(FP)
	VZEROUPPER
	RET

q80zero:
	VPXORD  X0, X0, X0
	VMOVDQU X0, (DI)
	VMOVDQU X0, 16(DI)
	VMOVDQU X10, (R8)
	VMOVDQU X10, 16(R8)
	MOVB    $1, ret+32(FP)
	VZEROUPPER
	RET

q80bad:
	MOVB $0, ret+32(FP)
	VZEROUPPER
	RET

// The four-row kernels hold two weight rows in one Z register, row 2p in
// the low 256-bit half and row 2p+1 in the high half (pair p = 0 in Z16,
// p = 1 in Z17; their −128·Σw corrections in Z18, Z19; their scales,
// (dw0 ×8 | dw1 ×8), in Z20, Z21). Each token's 32 offset codes are
// broadcast to both halves (Z22) and its scale to all 16 lanes (Z23), so
// that each half runs the Y-register computation of Q2X4TOK lane for
// lane: the same int32 lanes, the same float32 scale product dw·dx, the
// same fused multiply-add. The accumulator of token t and pair p is
// Z(2t+p), Z0-Z15; Z24-Z27 and Z30 are scratch, Z28 holds bytes of 128
// and Z29 zero.

// Q4TOK multiplies both row pairs with one token's offset codes at xaddr
// and scale at daddr, accumulating into acc0 (pair 0) and acc1 (pair 1).
#define Q4TOK(xaddr, daddr, acc0, acc1) \
	VBROADCASTI64X4 xaddr, Z22;     \
	VBROADCASTSS    daddr, Z23;     \
	VMOVDQA64       Z18, Z24;       \
	VMOVDQA64       Z19, Z25;       \
	VPDPBUSD        Z16, Z22, Z24;  \
	VPDPBUSD        Z17, Z22, Z25;  \
	VCVTDQ2PS       Z24, Z24;       \
	VCVTDQ2PS       Z25, Z25;       \
	VMULPS          Z23, Z20, Z26;  \
	VMULPS          Z23, Z21, Z27;  \
	VFMADD231PS     Z24, Z26, acc0; \
	VFMADD231PS     Z25, Z27, acc1

// Q4X4TOKS runs four tokens (offset codes at x + t·R8, scales at
// d + t·R11; R9 = 3·R8, R12 = 3·R11) on the block in Z16-Z21,
// accumulating into Z(2t+p+a), a = 0 for a0, 8 for a8.
#define Q4X4TOKS(x, d, a0, a1, a2, a3, a4, a5, a6, a7) \
	Q4TOK((x), (d), a0, a1);                  \
	Q4TOK((x)(R8*1), (d)(R11*1), a2, a3);     \
	Q4TOK((x)(R8*2), (d)(R11*2), a4, a5);     \
	Q4TOK((x)(R9*1), (d)(R12*1), a6, a7)

// Q4INIT zeroes the accumulators Z0-Z15 and sets Z28 to bytes of 128 and
// Z29 to zero.
#define Q4INIT \
	ZEROZ4(Z0, Z1, Z2, Z3);         \
	ZEROZ4(Z4, Z5, Z6, Z7);         \
	ZEROZ4(Z8, Z9, Z10, Z11);       \
	ZEROZ4(Z12, Z13, Z14, Z15);     \
	BCASTDZ($0x80808080, AX, Z28);  \
	VPXORD  Z29, Z29, Z29

// Q4CORR sets Z18, Z19 to −128·Σw of the block codes in Z16, Z17, four
// codes per int32 lane.
#define Q4CORR \
	VPXORD   Z18, Z18, Z18; \
	VPXORD   Z19, Z19, Z19; \
	VPDPBUSD Z16, Z28, Z18; \
	VPDPBUSD Z17, Z28, Z19; \
	VPSUBD   Z18, Z29, Z18; \
	VPSUBD   Z19, Z29, Z19

// Q4LOAD sets Z16-Z21 to the block of the four decoded rows at SI (codes,
// R8 bytes apart; R9 = 3·R8) and DX (scales, R11 bytes apart; R12 =
// 3·R11).
#define Q4LOAD \
	VMOVDQU32     (SI), Y16;                \
	VINSERTI64X4  $1, (SI)(R8*1), Z16, Z16; \
	VMOVDQU32     (SI)(R8*2), Y17;          \
	VINSERTI64X4  $1, (SI)(R9*1), Z17, Z17; \
	Q4CORR;                                 \
	VBROADCASTSS  (DX), Y20;                \
	VBROADCASTSS  (DX)(R11*1), Y30;         \
	VINSERTF64X4  $1, Y30, Z20, Z20;        \
	VBROADCASTSS  (DX)(R11*2), Y21;         \
	VBROADCASTSS  (DX)(R12*1), Y30;         \
	VINSERTF64X4  $1, Y30, Z21, Z21

// Q4LOADRAW sets Z16-Z21 to the block at SI of the four stored Q8_0 rows
// R13 bytes apart (R14 = 3·R13): the codes from offset 2, the fp16 scale
// (offset 0) broadcast to eight words and widened by VCVTPH2PS (exact).
#define Q4LOADRAW \
	VMOVDQU32     2(SI), Y16;                 \
	VINSERTI64X4  $1, 2(SI)(R13*1), Z16, Z16; \
	VMOVDQU32     2(SI)(R13*2), Y17;          \
	VINSERTI64X4  $1, 2(SI)(R14*1), Z17, Z17; \
	Q4CORR;                                   \
	VPBROADCASTW  (SI), X20;                  \
	VPBROADCASTW  (SI)(R13*1), X30;           \
	VINSERTI32X4  $1, X30, Y20, Y20;          \
	VCVTPH2PS     Y20, Z20;                   \
	VPBROADCASTW  (SI)(R13*2), X21;           \
	VPBROADCASTW  (SI)(R14*1), X30;           \
	VINSERTI32X4  $1, X30, Y21, Y21;          \
	VCVTPH2PS     Y21, Z21

// Q4OUT stores hsum_float_8 of each half of the accumulator z (y, x: its
// Y and X aliases) at addr (low half: row 2p) and 4+addr (high half: row
// 2p+1), through Y8 and X9 (free or already stored).
#define Q4OUT(z, y, x, addr) \
	VEXTRACTF64X4 $1, z, Y8;  \
	HSUM8(Y8, X8, X9);        \
	VMOVSS        X8, 4+addr; \
	HSUM8(y, x, X9);          \
	VMOVSS        x, addr

// Q4X4STORE stores the sixteen sums of Z0-Z7 (rows 0-3 of four tokens)
// at BX, the tokens AX bytes apart, leaving BX at the last token.
#define Q4X4STORE \
	Q4OUT(Z0, Y0, X0, 0(BX)); \
	Q4OUT(Z1, Y1, X1, 8(BX)); \
	ADDQ  AX, BX;             \
	Q4OUT(Z2, Y2, X2, 0(BX)); \
	Q4OUT(Z3, Y3, X3, 8(BX)); \
	ADDQ  AX, BX;             \
	Q4OUT(Z4, Y4, X4, 0(BX)); \
	Q4OUT(Z5, Y5, X5, 8(BX)); \
	ADDQ  AX, BX;             \
	Q4OUT(Z6, Y6, X6, 0(BX)); \
	Q4OUT(Z7, Y7, X7, 8(BX))

// Q4X8STORE stores the 32 sums of Z0-Z15 (rows 0-3 of eight tokens) at
// BX, the tokens AX bytes apart: Z8-Z15 moved to Z16-Z23 first, stored
// from Z0-Z7 after the first four tokens.
#define Q4X8STORE \
	VMOVAPS   Z8, Z16;   \
	VMOVAPS   Z9, Z17;   \
	VMOVAPS   Z10, Z18;  \
	VMOVAPS   Z11, Z19;  \
	VMOVAPS   Z12, Z20;  \
	VMOVAPS   Z13, Z21;  \
	VMOVAPS   Z14, Z22;  \
	VMOVAPS   Z15, Z23;  \
	Q4X4STORE;           \
	ADDQ      AX, BX;    \
	VMOVAPS   Z16, Z0;   \
	VMOVAPS   Z17, Z1;   \
	VMOVAPS   Z18, Z2;   \
	VMOVAPS   Z19, Z3;   \
	VMOVAPS   Z20, Z4;   \
	VMOVAPS   Z21, Z5;   \
	VMOVAPS   Z22, Z6;   \
	VMOVAPS   Z23, Z7;   \
	Q4X4STORE

// func q0dot4x4(w *int8, dw *float32, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)
//
// q0dot2x4 of four rows (codes w + r·k, scales dw + r·nb, r < 4) with
// four tokens (offset codes xu + t·k, scales dx + t·nb): dst[t·ldd+r] for
// r, t < 4, bit for bit, two rows per Z register.
TEXT ·q0dot4x4(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ dw+8(FP), DX
	MOVQ xu+16(FP), DI
	MOVQ k+24(FP), R8
	LEAQ (R8)(R8*2), R9
	MOVQ dx+32(FP), R10
	MOVQ nb+40(FP), CX
	MOVQ CX, R11
	SHLQ $2, R11
	LEAQ (R11)(R11*2), R12
	Q4INIT

q4x4loop:
	Q4LOAD
	Q4X4TOKS(DI, R10, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $4, DX
	ADDQ $4, R10
	DECQ CX
	JNZ  q4x4loop

	MOVQ dst+48(FP), BX
	MOVQ ldd+56(FP), AX
	SHLQ $2, AX
	Q4X4STORE
	VZEROUPPER
	RET

// func q0dot4x4raw(w *byte, ldw int, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)
//
// q0dot4x4 on four stored Q8_0 rows (w + r·ldw, r < 4: their block_q8_0
// bytes) read in place.
TEXT ·q0dot4x4raw(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), R13
	LEAQ (R13)(R13*2), R14
	MOVQ xu+16(FP), DI
	MOVQ k+24(FP), R8
	LEAQ (R8)(R8*2), R9
	MOVQ dx+32(FP), R10
	MOVQ nb+40(FP), CX
	MOVQ CX, R11
	SHLQ $2, R11
	LEAQ (R11)(R11*2), R12
	Q4INIT

q4x4rloop:
	Q4LOADRAW
	Q4X4TOKS(DI, R10, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, R10
	DECQ CX
	JNZ  q4x4rloop

	MOVQ dst+48(FP), BX
	MOVQ ldd+56(FP), AX
	SHLQ $2, AX
	Q4X4STORE
	VZEROUPPER
	RET

// func q0dot4x8(w *int8, dw *float32, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)
//
// q0dot4x4 with eight tokens (xu + t·k, dx + t·nb, t < 8; tokens 4-7
// addressed from BX = xu + 4·k and R13 = dx + 4·nb): dst[t·ldd+r] for
// r < 4, t < 8.
TEXT ·q0dot4x8(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ dw+8(FP), DX
	MOVQ xu+16(FP), DI
	MOVQ k+24(FP), R8
	LEAQ (R8)(R8*2), R9
	MOVQ dx+32(FP), R10
	MOVQ nb+40(FP), CX
	MOVQ CX, R11
	SHLQ $2, R11
	LEAQ (R11)(R11*2), R12
	LEAQ (DI)(R8*4), BX
	LEAQ (R10)(R11*4), R13
	Q4INIT

q4x8loop:
	Q4LOAD
	Q4X4TOKS(DI, R10, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	Q4X4TOKS(BX, R13, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, BX
	ADDQ $4, DX
	ADDQ $4, R10
	ADDQ $4, R13
	DECQ CX
	JNZ  q4x8loop

	MOVQ dst+48(FP), BX
	MOVQ ldd+56(FP), AX
	SHLQ $2, AX
	Q4X8STORE
	VZEROUPPER
	RET

// func q0dot4x8raw(w *byte, ldw int, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)
//
// q0dot4x8 on four stored Q8_0 rows (w + r·ldw, r < 4) read in place
// (tokens 4-7 from BX = xu + 4·k and DX = dx + 4·nb).
TEXT ·q0dot4x8raw(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), R13
	LEAQ (R13)(R13*2), R14
	MOVQ xu+16(FP), DI
	MOVQ k+24(FP), R8
	LEAQ (R8)(R8*2), R9
	MOVQ dx+32(FP), R10
	MOVQ nb+40(FP), CX
	MOVQ CX, R11
	SHLQ $2, R11
	LEAQ (R11)(R11*2), R12
	LEAQ (DI)(R8*4), BX
	LEAQ (R10)(R11*4), DX
	Q4INIT

q4x8rloop:
	Q4LOADRAW
	Q4X4TOKS(DI, R10, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	Q4X4TOKS(BX, DX, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $32, BX
	ADDQ $4, R10
	ADDQ $4, DX
	DECQ CX
	JNZ  q4x8rloop

	MOVQ dst+48(FP), BX
	MOVQ ldd+56(FP), AX
	SHLQ $2, AX
	Q4X8STORE
	VZEROUPPER
	RET

// func q0mins16(dst *float32, ldd int, mt *float32, s *float32, nb, nt int, mask uint16)
//
// The Q4_1/Q5_1 minimum terms of up to 16 rows (lane i: row i, enabled
// by bit i of mask) for nt tokens: dst[t·ldd+i] += Σ_b m[i,b]·s[t·nb+b],
// the sum a chain of fused multiply-adds in block order from 0 (mt[16b+i]
// = m[i,b]: the minimums transposed), as mulTileQ0's portable loop sums
// summs.
TEXT ·q0mins16(SB), NOSPLIT, $0-50
	MOVQ    dst+0(FP), DI
	MOVQ    ldd+8(FP), AX
	SHLQ    $2, AX
	MOVQ    mt+16(FP), SI
	MOVQ    s+24(FP), DX
	MOVQ    nb+32(FP), R8
	MOVQ    nt+40(FP), CX
	MOVWLZX mask+48(FP), BX
	KMOVW   BX, K1

minstok:
	VPXORD Z0, Z0, Z0
	MOVQ   SI, R10
	MOVQ   DX, R11
	MOVQ   R8, R9

minsblk:
	VBROADCASTSS (R11), Z1
	VFMADD231PS  (R10), Z1, Z0
	ADDQ         $64, R10
	ADDQ         $4, R11
	DECQ         R9
	JNZ          minsblk

	VMOVUPS.Z (DI), K1, Z2
	VADDPS    Z0, Z2, Z2
	VMOVUPS   Z2, K1, (DI)
	ADDQ      AX, DI
	LEAQ      (DX)(R8*4), DX
	DECQ      CX
	JNZ       minstok
	VZEROUPPER
	RET

// func q0rep16(wt *int8, corr *int32, dw *float32, xu *uint8, dx *float32, nb int, out *float32)
//
// One token against sixteen weight rows in repack.cpp's q4_0_8x8 order
// (orderQ0Repack): lane r holds row r's accumulator; for each block b in
// order, isum = Σ x·w of its 32 elements (exact: VPDPBUSD on the token's
// offset codes x+128, four at a time broadcast from xu, against the
// codes laid out [b][4-element group][row][4], less 128·Σw from corr),
// then acc = fma(float(isum), dw[b][r]·dx[b], acc). out[r] = acc.
TEXT ·q0rep16(SB), NOSPLIT, $0-56
	MOVQ   wt+0(FP), SI
	MOVQ   corr+8(FP), R8
	MOVQ   dw+16(FP), R9
	MOVQ   xu+24(FP), DI
	MOVQ   dx+32(FP), R10
	MOVQ   nb+40(FP), CX
	MOVQ   out+48(FP), BX
	VPXORD Z0, Z0, Z0

q0rep16loop:
	VMOVDQU32    (R8), Z1
	VPBROADCASTD (DI), Z2
	VPDPBUSD     (SI), Z2, Z1
	VPBROADCASTD 4(DI), Z3
	VPDPBUSD     64(SI), Z3, Z1
	VPBROADCASTD 8(DI), Z2
	VPDPBUSD     128(SI), Z2, Z1
	VPBROADCASTD 12(DI), Z3
	VPDPBUSD     192(SI), Z3, Z1
	VPBROADCASTD 16(DI), Z2
	VPDPBUSD     256(SI), Z2, Z1
	VPBROADCASTD 20(DI), Z3
	VPDPBUSD     320(SI), Z3, Z1
	VPBROADCASTD 24(DI), Z2
	VPDPBUSD     384(SI), Z2, Z1
	VPBROADCASTD 28(DI), Z3
	VPDPBUSD     448(SI), Z3, Z1
	VCVTDQ2PS    Z1, Z1
	VBROADCASTSS (R10), Z4
	VMULPS       (R9), Z4, Z4
	VFMADD231PS  Z4, Z1, Z0
	ADDQ         $512, SI
	ADDQ         $64, R8
	ADDQ         $64, R9
	ADDQ         $32, DI
	ADDQ         $4, R10
	DECQ         CX
	JNZ          q0rep16loop

	VMOVUPS Z0, (BX)
	VZEROUPPER
	RET
