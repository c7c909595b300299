//go:build amd64 && !purego

#include "textflag.h"
#include "simd_amd64.h"

// Fused K-quant kernels (see matmul_kquant.go): one decoded weight row
// against nt tokens' Q8_K codes, the integer lanes and the float steps of
// ggml's order in one pass. Go's operand order is the reverse of Intel's:
// VFMADD231PS a, b, d is d += b·a; VPMADDUBSW s, u, d multiplies the
// unsigned bytes of u by the signed bytes of s.

// func kVecDot(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, xd *float32, bs *int16, nb, nt, mode int, dst *float32, ldd int)
//
// ggml_vec_dot_q{3,5,6}_K_q8_K (AVX2) for one row and nt tokens: per block
// of 256, 8 int32 lanes Σ scv·maddubs(w, x) (mode&1: signed codes, by
// VPSIGNB); mode&2 (Q6_K) subtracts 32·maddwd(bsums, aux) from the lanes;
// mode&4 (Q5_K) adds float(Σ maddwd(bsums, aux))·(xd·wdm) into a separate
// float32 sum by a fused multiply-add; the lanes are converted and added
// to 8 float32 accumulators by a fused multiply-add with xd·wd; at the end
// hsum_float_8 of the accumulators plus the separate sum goes to
// dst[t·ldd].
TEXT ·kVecDot(SB), NOSPLIT, $0-104
	MOVQ x+40(FP), DI
	MOVQ xd+48(FP), R11
	MOVQ bs+56(FP), R12
	MOVQ mode+80(FP), R14
	MOVQ nt+72(FP), R15
	MOVQ dst+88(FP), BX
	MOVQ ldd+96(FP), AX
	SHLQ $2, AX
	TESTQ R15, R15
	JZ    vdone

vtok:
	MOVQ   w+0(FP), SI
	MOVQ   scv+8(FP), DX
	MOVQ   aux+16(FP), R8
	MOVQ   wd+24(FP), R9
	MOVQ   wdm+32(FP), R10
	MOVQ   nb+64(FP), CX
	VXORPS Y8, Y8, Y8
	VXORPS X9, X9, X9

vblk:
	VPXOR Y0, Y0, Y0
	MOVQ  $8, R13
	TESTQ $1, R14
	JNZ   vsigned

vuns:
	VMOVDQU    (SI), Y1
	VPMADDUBSW (DI), Y1, Y3
	VPMADDWD   (DX), Y3, Y3
	VPADDD     Y3, Y0, Y0
	ADDQ       $32, SI
	ADDQ       $32, DI
	ADDQ       $32, DX
	DECQ       R13
	JNZ        vuns
	JMP        vlanes

vsigned:
	VMOVDQU    (SI), Y1
	VMOVDQU    (DI), Y2
	VPSIGNB    Y1, Y2, Y2
	VPABSB     Y1, Y1
	VPMADDUBSW Y2, Y1, Y3
	VPMADDWD   (DX), Y3, Y3
	VPADDD     Y3, Y0, Y0
	ADDQ       $32, SI
	ADDQ       $32, DI
	ADDQ       $32, DX
	DECQ       R13
	JNZ        vsigned

vlanes:
	TESTQ    $2, R14
	JZ       vnocorr
	VMOVDQU  (R12), Y4
	VPMADDWD (R8), Y4, Y4
	VPSLLD   $5, Y4, Y4
	VPSUBD   Y4, Y0, Y0

vnocorr:
	TESTQ       $4, R14
	JZ          vnomins
	VMOVDQU     (R12), Y4
	VPMADDWD    (R8), Y4, Y4
	ISUM8(Y4, X4, X5)
	VCVTDQ2PS   X4, X4
	VMOVSS      (R11), X5
	VMULSS      (R10), X5, X5
	VFMADD231SS X4, X5, X9

vnomins:
	VCVTDQ2PS    Y0, Y1
	SCALEFMA((R11), (R9), Y1, Y8, Y2, X2)
	ADDQ         $32, R8
	ADDQ         $4, R9
	ADDQ         $4, R10
	ADDQ         $4, R11
	ADDQ         $32, R12
	DECQ         CX
	JNZ          vblk

	HSUM8(Y8, X8, X1)
	VADDSS       X9, X8, X8
	VMOVSS       X8, (BX)
	ADDQ         AX, BX
	DECQ         R15
	JNZ          vtok

vdone:
	VZEROUPPER
	RET

// func kRepackDot(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, xd *float32, bs *int16, nb, nt, per int, dst *float32, ldd int)
//
// repack.cpp's q4_K_8x8 / q2_K_8x8 GEMM (per = 2 or 4 chunks of 32) or
// GEMV (per = 8) for one row and nt tokens: per group of per chunks, the
// integer sums Σ scv·maddubs(w, x) and Σ maddwd(bsums, aux) are converted
// and added by fused multiply-adds with wd·xd and wdm·xd into two float32
// accumulators; dst[t·ldd] is their difference.
TEXT ·kRepackDot(SB), NOSPLIT, $32-104
	MOVQ x+40(FP), DI
	MOVQ xd+48(FP), R11
	MOVQ bs+56(FP), R12
	MOVQ nt+72(FP), R15
	MOVQ dst+88(FP), BX
	TESTQ R15, R15
	JZ    rdone

rtok:
	MOVQ   w+0(FP), SI
	MOVQ   scv+8(FP), DX
	MOVQ   aux+16(FP), R8
	MOVQ   wd+24(FP), R9
	MOVQ   wdm+32(FP), R10
	MOVQ   nb+64(FP), CX
	VXORPS X8, X8, X8
	VXORPS X9, X9, X9

rblk:
	VMOVDQU  (R12), Y4
	VPMADDWD (R8), Y4, Y4
	VMOVDQU  Y4, (SP)
	XORQ     R13, R13

rgrp:
	VPXOR Y0, Y0, Y0
	XORL  AX, AX
	MOVQ  per+80(FP), R14

rchunk:
	VMOVDQU    (SI), Y1
	VPMADDUBSW (DI), Y1, Y3
	VPMADDWD   (DX), Y3, Y3
	VPADDD     Y3, Y0, Y0
	ADDL       (SP)(R13*4), AX
	INCQ       R13
	ADDQ       $32, SI
	ADDQ       $32, DI
	ADDQ       $32, DX
	DECQ       R14
	JNZ        rchunk

	ISUM8(Y0, X0, X1)
	VCVTDQ2PS   X0, X0
	VMOVSS      (R9), X2
	VMULSS      (R11), X2, X2
	VFMADD231SS X0, X2, X8
	VMOVD       AX, X3
	VCVTDQ2PS   X3, X3
	VMOVSS      (R10), X4
	VMULSS      (R11), X4, X4
	VFMADD231SS X3, X4, X9
	CMPQ        R13, $8
	JLT         rgrp

	ADDQ $32, R8
	ADDQ $4, R9
	ADDQ $4, R10
	ADDQ $4, R11
	ADDQ $32, R12
	DECQ CX
	JNZ  rblk

	VSUBSS X9, X8, X8
	VMOVSS X8, (BX)
	MOVQ   ldd+96(FP), AX
	SHLQ   $2, AX
	ADDQ   AX, BX
	DECQ   R15
	JNZ    rtok

rdone:
	VZEROUPPER
	RET

// Q04TOK multiplies block codes Y1 (w), |w| in Y3, with token t's codes
// at xaddr, scale xd at daddr: acc += (dw·xd) · lanes (see q0dot).
#define Q04TOK(xaddr, daddr, acc) \
	VMOVDQU      xaddr, Y2;   \
	VPSIGNB      Y1, Y2, Y2;  \
	VPMADDUBSW   Y2, Y3, Y2;  \
	VPMADDWD     Y15, Y2, Y2; \
	VCVTDQ2PS    Y2, Y2;      \
	SCALEFMA((DX), daddr, Y2, acc, Y4, X4)

// Q0OUT stores hsum_float_8 of ya (X alias xa) at (BX) and steps BX.
#define Q0OUT(ya, xa) \
	HSUM8(ya, xa, X1); \
	VMOVSS xa, (BX);   \
	ADDQ   AX, BX

// func q0dot4(w, x *int8, k int, dw, dx *float32, nb int, dst *float32, ldd int)
//
// q0dot of one row of nb blocks with four tokens (codes x + t·k, scales
// dx + t·nb): dst[t·ldd] for t < 4, the row's codes and |codes| loaded
// once per block for the four.
TEXT ·q0dot4(SB), NOSPLIT, $0-64
	MOVQ         w+0(FP), SI
	MOVQ         x+8(FP), DI
	MOVQ         k+16(FP), R8
	LEAQ         (R8)(R8*2), R9
	MOVQ         dw+24(FP), DX
	MOVQ         dx+32(FP), R10
	MOVQ         nb+40(FP), CX
	MOVQ         CX, R11
	SHLQ         $2, R11
	LEAQ         (R11)(R11*2), R12
	ZEROY4(Y8, Y9, Y10, Y11)
	BCASTD($0x00010001, AX, Y15, X15)

q04loop:
	VMOVDQU (SI), Y1
	VPSIGNB Y1, Y1, Y3
	Q04TOK((DI), (R10), Y8)
	Q04TOK((DI)(R8*1), (R10)(R11*1), Y9)
	Q04TOK((DI)(R8*2), (R10)(R11*2), Y10)
	Q04TOK((DI)(R9*1), (R10)(R12*1), Y11)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $4, DX
	ADDQ    $4, R10
	DECQ    CX
	JNZ     q04loop

	MOVQ dst+48(FP), BX
	MOVQ ldd+56(FP), AX
	SHLQ $2, AX
	Q0OUT(Y8, X8)
	Q0OUT(Y9, X9)
	Q0OUT(Y10, X10)
	Q0OUT(Y11, X11)
	VZEROUPPER
	RET
