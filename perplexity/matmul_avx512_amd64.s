//go:build amd64 && !purego

#include "textflag.h"
#include "simd_amd64.h"

// AVX-512 kernels (see matmul_avx512.go). Go's operand order is the
// reverse of Intel's: VFMADD231PS a, b, d is d += b·a.

// func dot4x4t16z(x *float32, ldx int, w *float32, ldw int, k int, dst *float32, ldd int)
//
// dst[t·ldd + r] = x_t · w_r for four tokens t and four weight rows r in
// tinyBLAS<16, __m512>'s order: 16 lanes, lane l accumulating elements
// 16j+l by fused multiply-adds in order of j, then _mm512_reduce_add_ps
// (k a positive multiple of 16).
TEXT ·dot4x4t16z(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), SI
	MOVQ ldx+8(FP), R12
	MOVQ w+16(FP), DI
	MOVQ ldw+24(FP), R8
	MOVQ k+32(FP), CX
	MOVQ dst+40(FP), BX
	MOVQ ldd+48(FP), DX
	SHLQ $2, R8
	SHLQ $2, R12
	SHLQ $2, CX
	SHLQ $2, DX
	LEAQ (DI)(R8*1), R9
	LEAQ (R9)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	LEAQ (SI)(R12*1), R13
	LEAQ (R13)(R12*1), R14
	LEAQ (R14)(R12*1), R15
	ZEROZ4(Z0, Z1, Z2, Z3)
	ZEROZ4(Z4, Z5, Z6, Z7)
	ZEROZ4(Z8, Z9, Z10, Z11)
	ZEROZ4(Z12, Z13, Z14, Z15)
	XORQ   AX, AX

loop44:
	VMOVUPS     (DI)(AX*1), Z16
	VMOVUPS     (R9)(AX*1), Z17
	VMOVUPS     (R10)(AX*1), Z18
	VMOVUPS     (R11)(AX*1), Z19
	VMOVUPS     (SI)(AX*1), Z20
	VMOVUPS     (R13)(AX*1), Z21
	VMOVUPS     (R14)(AX*1), Z22
	VMOVUPS     (R15)(AX*1), Z23
	FMA4(Z20, Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)
	FMA4(Z21, Z16, Z17, Z18, Z19, Z4, Z5, Z6, Z7)
	FMA4(Z22, Z16, Z17, Z18, Z19, Z8, Z9, Z10, Z11)
	FMA4(Z23, Z16, Z17, Z18, Z19, Z12, Z13, Z14, Z15)
	ADDQ        $64, AX
	CMPQ        AX, CX
	JLT         loop44

	REDUCE16(Z0, Y0, X0, Y16, X16)
	REDUCE16(Z1, Y1, X1, Y16, X16)
	REDUCE16(Z2, Y2, X2, Y16, X16)
	REDUCE16(Z3, Y3, X3, Y16, X16)
	REDUCE16(Z4, Y4, X4, Y16, X16)
	REDUCE16(Z5, Y5, X5, Y16, X16)
	REDUCE16(Z6, Y6, X6, Y16, X16)
	REDUCE16(Z7, Y7, X7, Y16, X16)
	REDUCE16(Z8, Y8, X8, Y16, X16)
	REDUCE16(Z9, Y9, X9, Y16, X16)
	REDUCE16(Z10, Y10, X10, Y16, X16)
	REDUCE16(Z11, Y11, X11, Y16, X16)
	REDUCE16(Z12, Y12, X12, Y16, X16)
	REDUCE16(Z13, Y13, X13, Y16, X16)
	REDUCE16(Z14, Y14, X14, Y16, X16)
	REDUCE16(Z15, Y15, X15, Y16, X16)
	STORE4SS(X0, X1, X2, X3, BX)
	ADDQ   DX, BX
	STORE4SS(X4, X5, X6, X7, BX)
	ADDQ   DX, BX
	STORE4SS(X8, X9, X10, X11, BX)
	ADDQ   DX, BX
	STORE4SS(X12, X13, X14, X15, BX)
	VZEROUPPER
	RET

// func kRepackDot4z(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, k int, xdq *float32, bsq *int16, nb, per int, dst *float32, ldd int)
//
// kRepackDot for four tokens at once (x, x+k, x+2k, x+3k; their Q8_K
// scales and bsums interleaved per block in xdq, bsq: see q8KBlocks.quads),
// with AVX-512 integer lanes: per group of per chunks of 32, each token's
// Σ scv·maddubs(w, x) and Σ maddwd(bsums, aux) (exact integers), converted
// and added by fused multiply-adds with wd·xd and wdm·xd into per-token
// float32 accumulators (lanes of X12, X15); dst[t·ldd] = acc − accMin.
TEXT ·kRepackDot4z(SB), NOSPLIT, $64-104
	MOVQ w+0(FP), SI
	MOVQ scv+8(FP), DX
	MOVQ aux+16(FP), R8
	MOVQ wd+24(FP), R9
	MOVQ wdm+32(FP), R10
	MOVQ x+40(FP), DI
	MOVQ k+48(FP), R15
	LEAQ (R15)(R15*2), R14
	MOVQ xdq+56(FP), R11
	MOVQ bsq+64(FP), R12
	MOVQ nb+72(FP), CX
	VXORPS X12, X12, X12
	VXORPS X15, X15, X15

r4blk:
	// The minimum terms of the block's 8 chunks for the 4 tokens,
	// transposed to [chunk j | chunk j+4] × 4 tokens, summed per group
	// and kept on the stack (16 bytes per group).
	VMOVDQU     (R8), Y8
	VPMADDWD    (R12), Y8, Y4
	VPMADDWD    32(R12), Y8, Y5
	VPMADDWD    64(R12), Y8, Y6
	VPMADDWD    96(R12), Y8, Y7
	VPUNPCKLDQ  Y5, Y4, Y8
	VPUNPCKHDQ  Y5, Y4, Y9
	VPUNPCKLDQ  Y7, Y6, Y10
	VPUNPCKHDQ  Y7, Y6, Y11
	VPUNPCKLQDQ Y10, Y8, Y4
	VPUNPCKHQDQ Y10, Y8, Y5
	VPUNPCKLQDQ Y11, Y9, Y6
	VPUNPCKHQDQ Y11, Y9, Y7
	VPADDD      Y5, Y4, Y4 // chunks 0+1 | 4+5
	VPADDD      Y7, Y6, Y6 // chunks 2+3 | 6+7
	MOVQ        per+80(FP), AX
	CMPQ        AX, $2
	JNE         r4min4
	VMOVDQU     X4, (SP)
	VMOVDQU     X6, 16(SP)
	VEXTRACTI128 $1, Y4, 32(SP)
	VEXTRACTI128 $1, Y6, 48(SP)
	JMP         r4codes

r4min4:
	VPADDD       Y6, Y4, Y4 // chunks 0-3 | 4-7
	CMPQ         AX, $4
	JNE          r4min8
	VMOVDQU      X4, (SP)
	VEXTRACTI128 $1, Y4, 16(SP)
	JMP          r4codes

r4min8:
	VEXTRACTI128 $1, Y4, X5
	VPADDD       X5, X4, X4
	VMOVDQU      X4, (SP)

r4codes:
	XORQ BX, BX // stack offset of the group

r4grp:
	ZEROZ4(Z0, Z1, Z2, Z3)
	MOVQ   per+80(FP), R13
	SHRQ   $1, R13

r4pair:
	VMOVDQU64  (SI), Z8
	VMOVDQU64  (DX), Z9
	VPMADDUBSW (DI), Z8, Z10
	VPMADDWD   Z9, Z10, Z10
	VPADDD     Z10, Z0, Z0
	VPMADDUBSW (DI)(R15*1), Z8, Z10
	VPMADDWD   Z9, Z10, Z10
	VPADDD     Z10, Z1, Z1
	VPMADDUBSW (DI)(R15*2), Z8, Z10
	VPMADDWD   Z9, Z10, Z10
	VPADDD     Z10, Z2, Z2
	VPMADDUBSW (DI)(R14*1), Z8, Z10
	VPMADDWD   Z9, Z10, Z10
	VPADDD     Z10, Z3, Z3
	ADDQ       $64, SI
	ADDQ       $64, DX
	ADDQ       $64, DI
	DECQ       R13
	JNZ        r4pair

	IFOLD256(Z0, Y0, Y10)
	IFOLD256(Z1, Y1, Y10)
	IFOLD256(Z2, Y2, Y10)
	IFOLD256(Z3, Y3, Y10)
	ISUM8X4(Y0, X0, Y1, Y2, Y3, X10) // [Σ token 0, 1, 2, 3]
	VCVTDQ2PS     X0, X0
	VBROADCASTSS  (R9), X11
	VMULPS        (R11), X11, X11
	VFMADD231PS   X0, X11, X12
	VCVTDQ2PS     (SP)(BX*1), X13
	VBROADCASTSS  (R10), X14
	VMULPS        (R11), X14, X14
	VFMADD231PS   X13, X14, X15
	ADDQ          $16, BX
	MOVQ          BX, R13
	IMULQ         per+80(FP), R13
	CMPQ          R13, $128 // (groups done)·per < 8 chunks
	JLT           r4grp

	ADDQ $32, R8
	ADDQ $4, R9
	ADDQ $4, R10
	ADDQ $16, R11
	ADDQ $128, R12
	DECQ CX
	JNZ  r4blk

	VSUBPS    X15, X12, X12
	MOVQ      dst+88(FP), BX
	MOVQ      ldd+96(FP), AX
	SHLQ      $2, AX
	VMOVSS    X12, (BX)
	ADDQ      AX, BX
	VEXTRACTPS $1, X12, (BX)
	ADDQ      AX, BX
	VEXTRACTPS $2, X12, (BX)
	ADDQ      AX, BX
	VEXTRACTPS $3, X12, (BX)
	VZEROUPPER
	RET

// VEC4TOK accumulates one pair of chunks (64 codes) of the four tokens:
// lanes of Zt += maddwd(maddubs(w, x_t), scv).
#define VEC4TOK(xaddr, acc) \
	VPMADDUBSW xaddr, Z8, Z10; \
	VPMADDWD   Z9, Z10, Z10;   \
	VPADDD     Z10, acc, acc

// VEC4FMA converts token t's lanes (yi) and adds them to its float
// accumulators (ya) by a fused multiply-add with xd_t·wd.
#define VEC4FMA(off, yi, ya) \
	VCVTDQ2PS yi, yi; \
	SCALEFMA(off(R11), (R9), yi, ya, Y8, X8)

// VEC4OUT stores hsum_float_8 of ya (X alias xa) plus lane sel of X15 at
// (BX), then steps BX to the next token's output.
#define VEC4OUT(ya, xa, sel) \
	HSUM8(ya, xa, X8);          \
	VPERMILPS    $sel, X15, X9; \
	VADDSS       X9, xa, xa;    \
	VMOVSS       xa, (BX);      \
	ADDQ         AX, BX

// func kVecDot4z(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, k int, xdq *float32, bsq *int16, nb, mode int, dst *float32, ldd int)
//
// kVecDot for four tokens at once (x, x+k, x+2k, x+3k; scales and bsums
// interleaved per block in xdq, bsq) and unsigned codes (Q6_K, Q5_K: mode
// kCorr32 or kMins), the integer lanes two chunks per AVX-512 register.
TEXT ·kVecDot4z(SB), NOSPLIT, $0-104
	MOVQ w+0(FP), SI
	MOVQ scv+8(FP), DX
	MOVQ aux+16(FP), R8
	MOVQ wd+24(FP), R9
	MOVQ wdm+32(FP), R10
	MOVQ x+40(FP), DI
	MOVQ k+48(FP), R15
	LEAQ (R15)(R15*2), R14
	MOVQ xdq+56(FP), R11
	MOVQ bsq+64(FP), R12
	MOVQ nb+72(FP), CX
	MOVQ mode+80(FP), BX
	ZEROY4(Y4, Y5, Y6, Y7)
	VXORPS X15, X15, X15

v4blk:
	ZEROZ4(Z0, Z1, Z2, Z3)
	MOVQ   $4, R13

v4pair:
	VMOVDQU64 (SI), Z8
	VMOVDQU64 (DX), Z9
	VEC4TOK((DI), Z0)
	VEC4TOK((DI)(R15*1), Z1)
	VEC4TOK((DI)(R15*2), Z2)
	VEC4TOK((DI)(R14*1), Z3)
	ADDQ      $64, SI
	ADDQ      $64, DX
	ADDQ      $64, DI
	DECQ      R13
	JNZ       v4pair

	IFOLD256(Z0, Y0, Y10)
	IFOLD256(Z1, Y1, Y10)
	IFOLD256(Z2, Y2, Y10)
	IFOLD256(Z3, Y3, Y10)
	VMOVDQU       (R8), Y11
	TESTQ         $2, BX
	JZ            v4nocorr
	VPMADDWD      (R12), Y11, Y10
	VPSLLD        $5, Y10, Y10
	VPSUBD        Y10, Y0, Y0
	VPMADDWD      32(R12), Y11, Y10
	VPSLLD        $5, Y10, Y10
	VPSUBD        Y10, Y1, Y1
	VPMADDWD      64(R12), Y11, Y10
	VPSLLD        $5, Y10, Y10
	VPSUBD        Y10, Y2, Y2
	VPMADDWD      96(R12), Y11, Y10
	VPSLLD        $5, Y10, Y10
	VPSUBD        Y10, Y3, Y3

v4nocorr:
	TESTQ        $4, BX
	JZ           v4nomins
	VPMADDWD     (R12), Y11, Y8
	VPMADDWD     32(R12), Y11, Y9
	VPMADDWD     64(R12), Y11, Y10
	VPMADDWD     96(R12), Y11, Y12
	ISUM8X4(Y8, X8, Y9, Y10, Y12, X9)
	VCVTDQ2PS    X8, X8
	VBROADCASTSS (R10), X9
	VMULPS       (R11), X9, X9
	VFMADD231PS  X8, X9, X15

v4nomins:
	VEC4FMA(0, Y0, Y4)
	VEC4FMA(4, Y1, Y5)
	VEC4FMA(8, Y2, Y6)
	VEC4FMA(12, Y3, Y7)
	ADDQ $32, R8
	ADDQ $4, R9
	ADDQ $4, R10
	ADDQ $16, R11
	ADDQ $128, R12
	DECQ CX
	JNZ  v4blk

	MOVQ dst+88(FP), BX
	MOVQ ldd+96(FP), AX
	SHLQ $2, AX
	VEC4OUT(Y4, X4, 0x00)
	VEC4OUT(Y5, X5, 0x01)
	VEC4OUT(Y6, X6, 0x02)
	VEC4OUT(Y7, X7, 0x03)
	VZEROUPPER
	RET
