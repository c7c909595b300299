//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 kernels (see matmul_avx512.go). Go's operand order is the
// reverse of Intel's: VFMADD231PS a, b, d is d += b·a.

// RED16 is gcc's _mm512_reduce_add_ps of z into the low lane of x (y, x:
// its Y and X aliases; X16 scratch): the 256-bit halves added lane-wise,
// then the 128-bit halves, then lanes (0+2) + (1+3).
#define RED16(z, y, x) \
	VEXTRACTF64X4 $1, z, Y16; \
	VADDPS        Y16, y, y;  \
	VEXTRACTF32X4 $1, y, X16; \
	VADDPS        X16, x, x;  \
	VPERMILPS     $0x4E, x, X16; \
	VADDPS        X16, x, x;  \
	VMOVSHDUP     x, X16;     \
	VADDSS        X16, x, x

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
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
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
	VFMADD231PS Z16, Z20, Z0
	VFMADD231PS Z17, Z20, Z1
	VFMADD231PS Z18, Z20, Z2
	VFMADD231PS Z19, Z20, Z3
	VFMADD231PS Z16, Z21, Z4
	VFMADD231PS Z17, Z21, Z5
	VFMADD231PS Z18, Z21, Z6
	VFMADD231PS Z19, Z21, Z7
	VFMADD231PS Z16, Z22, Z8
	VFMADD231PS Z17, Z22, Z9
	VFMADD231PS Z18, Z22, Z10
	VFMADD231PS Z19, Z22, Z11
	VFMADD231PS Z16, Z23, Z12
	VFMADD231PS Z17, Z23, Z13
	VFMADD231PS Z18, Z23, Z14
	VFMADD231PS Z19, Z23, Z15
	ADDQ        $64, AX
	CMPQ        AX, CX
	JLT         loop44

	RED16(Z0, Y0, X0)
	RED16(Z1, Y1, X1)
	RED16(Z2, Y2, X2)
	RED16(Z3, Y3, X3)
	RED16(Z4, Y4, X4)
	RED16(Z5, Y5, X5)
	RED16(Z6, Y6, X6)
	RED16(Z7, Y7, X7)
	RED16(Z8, Y8, X8)
	RED16(Z9, Y9, X9)
	RED16(Z10, Y10, X10)
	RED16(Z11, Y11, X11)
	RED16(Z12, Y12, X12)
	RED16(Z13, Y13, X13)
	RED16(Z14, Y14, X14)
	RED16(Z15, Y15, X15)
	VMOVSS X0, (BX)
	VMOVSS X1, 4(BX)
	VMOVSS X2, 8(BX)
	VMOVSS X3, 12(BX)
	ADDQ   DX, BX
	VMOVSS X4, (BX)
	VMOVSS X5, 4(BX)
	VMOVSS X6, 8(BX)
	VMOVSS X7, 12(BX)
	ADDQ   DX, BX
	VMOVSS X8, (BX)
	VMOVSS X9, 4(BX)
	VMOVSS X10, 8(BX)
	VMOVSS X11, 12(BX)
	ADDQ   DX, BX
	VMOVSS X12, (BX)
	VMOVSS X13, 4(BX)
	VMOVSS X14, 8(BX)
	VMOVSS X15, 12(BX)
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
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
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

	VEXTRACTI64X4 $1, Z0, Y10
	VPADDD        Y10, Y0, Y0
	VEXTRACTI64X4 $1, Z1, Y10
	VPADDD        Y10, Y1, Y1
	VEXTRACTI64X4 $1, Z2, Y10
	VPADDD        Y10, Y2, Y2
	VEXTRACTI64X4 $1, Z3, Y10
	VPADDD        Y10, Y3, Y3
	VPHADDD       Y1, Y0, Y0
	VPHADDD       Y3, Y2, Y2
	VPHADDD       Y2, Y0, Y0
	VEXTRACTI128  $1, Y0, X10
	VPADDD        X10, X0, X0 // [Σ token 0, 1, 2, 3]
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
	VCVTDQ2PS    yi, yi;        \
	VMOVSS       off(R11), X8;  \
	VMULSS       (R9), X8, X8;  \
	VBROADCASTSS X8, Y8;        \
	VFMADD231PS  yi, Y8, ya

// VEC4OUT stores hsum_float_8 of ya plus lane sel of X15 at (BX), then
// steps BX to the next token's output.
#define VEC4OUT(ya, xa, sel) \
	VEXTRACTF128 $1, ya, X8;   \
	VADDPS       xa, X8, X8;   \
	VMOVHLPS     X8, X8, X9;   \
	VADDPS       X9, X8, X8;   \
	VMOVSHDUP    X8, X9;       \
	VADDSS       X9, X8, X8;   \
	VPERMILPS    $sel, X15, X9; \
	VADDSS       X9, X8, X8;   \
	VMOVSS       X8, (BX);     \
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
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS X15, X15, X15

v4blk:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
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

	VEXTRACTI64X4 $1, Z0, Y10
	VPADDD        Y10, Y0, Y0
	VEXTRACTI64X4 $1, Z1, Y10
	VPADDD        Y10, Y1, Y1
	VEXTRACTI64X4 $1, Z2, Y10
	VPADDD        Y10, Y2, Y2
	VEXTRACTI64X4 $1, Z3, Y10
	VPADDD        Y10, Y3, Y3
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
	VPHADDD      Y9, Y8, Y8
	VPHADDD      Y12, Y10, Y10
	VPHADDD      Y10, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPADDD       X9, X8, X8
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
