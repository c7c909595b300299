//go:build amd64 && !purego

#include "textflag.h"

// iq3Lane16 is the lane numbers 0..15 (int32).
DATA iq3Lane16<>+0(SB)/4, $0
DATA iq3Lane16<>+4(SB)/4, $1
DATA iq3Lane16<>+8(SB)/4, $2
DATA iq3Lane16<>+12(SB)/4, $3
DATA iq3Lane16<>+16(SB)/4, $4
DATA iq3Lane16<>+20(SB)/4, $5
DATA iq3Lane16<>+24(SB)/4, $6
DATA iq3Lane16<>+28(SB)/4, $7
DATA iq3Lane16<>+32(SB)/4, $8
DATA iq3Lane16<>+36(SB)/4, $9
DATA iq3Lane16<>+40(SB)/4, $10
DATA iq3Lane16<>+44(SB)/4, $11
DATA iq3Lane16<>+48(SB)/4, $12
DATA iq3Lane16<>+52(SB)/4, $13
DATA iq3Lane16<>+56(SB)/4, $14
DATA iq3Lane16<>+60(SB)/4, $15
GLOBL iq3Lane16<>(SB), RODATA|NOPTR, $64

DATA iq3StepC<>+0(SB)/4, $0x3f800000  // 1.0
DATA iq3StepC<>+4(SB)/4, $0x3f000000  // 0.5
DATA iq3StepC<>+8(SB)/4, $7           // kMaxQ-1
DATA iq3StepC<>+12(SB)/4, $16         // lanes per chunk
DATA iq3StepC<>+16(SB)/4, $0x7f7fffff // FLT_MAX
DATA iq3StepC<>+20(SB)/4, $0xffff     // 16 lanes
DATA iq3StepC<>+24(SB)/4, $1          // int 1
GLOBL iq3StepC<>(SB), RODATA|NOPTR, $28

// iq3Mul8 multiplies the level bytes l0 l1 l2 l3 by 1 8 1 8 (VPMADDUBSW)
// and iq3Mul64 the word pairs by 1 64 (VPMADDWD): u = l0|l1<<3|l2<<6|l3<<9.
DATA iq3Mul8<>+0(SB)/8, $0x0801080108010801
DATA iq3Mul8<>+8(SB)/8, $0x0801080108010801
DATA iq3Mul8<>+16(SB)/8, $0x0801080108010801
DATA iq3Mul8<>+24(SB)/8, $0x0801080108010801
GLOBL iq3Mul8<>(SB), RODATA|NOPTR, $32
DATA iq3Mul64<>+0(SB)/8, $0x0040000100400001
DATA iq3Mul64<>+8(SB)/8, $0x0040000100400001
DATA iq3Mul64<>+16(SB)/8, $0x0040000100400001
DATA iq3Mul64<>+24(SB)/8, $0x0040000100400001
GLOBL iq3Mul64<>(SB), RODATA|NOPTR, $32

// func iq3Step(info *uint32, lanes *uint8, xval, waux, wx, weight *[32]float32, id float32, sq *[8]float32, laux *[32]int8, onGrid *[8]bool) (sumqx, sumq2 float32, ok bool)
//
// One candidate scale of the IQ3 search (iq3Grid.stepGo is its
// definition). Levels: l = clamp(cvt(0.5*((id*x)-1)), 0, 7), VCVTPS2DQ
// rounding to nearest even as nearestInt does. Each off-grid group's
// neighbour list (info, lanes: iq3StepTables) is searched 16 points at a
// time in ggml's order, d_i = sq[l_i] - x_i, t_i = (w_i*d_i)*d_i,
// e = ((t0 + t1) + t2) + t3, each lane keeping its first error below the
// lane's best so far (FLT_MAX at first; NaN never below); the chosen point
// is the smallest position holding the smallest error. The sums are formed
// in order, one float32 add at a time.
//
// Frame: 0 u[8] int32; 32 best positions [16]int32; 96 wx*q [32]float32;
// 224 (weight*q)*q [32]float32.
TEXT ·iq3Step(SB), NOSPLIT, $352-89
	MOVQ         info+0(FP), R8
	MOVQ         lanes+8(FP), R9
	MOVQ         xval+16(FP), SI
	MOVQ         waux+24(FP), DI
	MOVQ         laux+64(FP), R10
	MOVQ         onGrid+72(FP), R11
	MOVQ         sq+56(FP), AX
	VMOVUPS      (AX), Y31
	VBROADCASTSS id+48(FP), Z30
	VBROADCASTSS iq3StepC<>+0(SB), Z29
	VBROADCASTSS iq3StepC<>+4(SB), Z28
	VPXORD       Z27, Z27, Z27
	VPBROADCASTD iq3StepC<>+8(SB), Z26
	VPBROADCASTD iq3StepC<>+12(SB), Z19
	MOVB         $1, ok+88(FP)

	// levels of the 32 values
	VMULPS    (SI), Z30, Z0
	VSUBPS    Z29, Z0, Z0
	VMULPS    Z28, Z0, Z0
	VCVTPS2DQ Z0, Z0
	VPMAXSD   Z27, Z0, Z0
	VPMINSD   Z26, Z0, Z0
	VPMOVDB   Z0, (R10)
	VMULPS    64(SI), Z30, Z1
	VSUBPS    Z29, Z1, Z1
	VMULPS    Z28, Z1, Z1
	VCVTPS2DQ Z1, Z1
	VPMAXSD   Z27, Z1, Z1
	VPMINSD   Z26, Z1, Z1
	VPMOVDB   Z1, 16(R10)

	// u of the 8 groups
	VMOVDQU    (R10), Y2
	VPMADDUBSW iq3Mul8<>(SB), Y2, Y2
	VPMADDWD   iq3Mul64<>(SB), Y2, Y2
	VMOVDQU    Y2, 0(SP)

	XORQ CX, CX

group:
	MOVL  0(SP)(CX*4), AX
	MOVL  (R8)(AX*4), BX
	TESTL BX, BX
	JNZ   offgrid
	MOVB  $1, (R11)(CX*1)
	JMP   next

offgrid:
	MOVB         $0, (R11)(CX*1)
	MOVQ         CX, DX
	SHLQ         $4, DX
	VBROADCASTSS (SI)(DX*1), Z8
	VBROADCASTSS 4(SI)(DX*1), Z9
	VBROADCASTSS 8(SI)(DX*1), Z10
	VBROADCASTSS 12(SI)(DX*1), Z11
	VBROADCASTSS (DI)(DX*1), Z12
	VBROADCASTSS 4(DI)(DX*1), Z13
	VBROADCASTSS 8(DI)(DX*1), Z14
	VBROADCASTSS 12(DI)(DX*1), Z15
	MOVL         BX, R13
	SHRL         $24, R13
	ANDL         $0xffffff, BX
	LEAQ         (R9)(BX*1), R12
	VBROADCASTSS iq3StepC<>+16(SB), Z16
	VMOVDQU32    iq3Lane16<>(SB), Z18
	VMOVDQA32    Z18, Z17

chunk:
	BZHIL R13, iq3StepC<>+20(SB), AX
	KMOVW AX, K1
	VPMOVZXBD 0(R12), Z0
	VPERMPS   Z31, Z0, Z0
	VSUBPS    Z8, Z0, Z0
	VMULPS    Z0, Z12, Z1
	VMULPS    Z0, Z1, Z1
	VPMOVZXBD 16(R12), Z0
	VPERMPS   Z31, Z0, Z0
	VSUBPS    Z9, Z0, Z0
	VMULPS    Z0, Z13, Z2
	VMULPS    Z0, Z2, Z2
	VADDPS    Z2, Z1, Z1
	VPMOVZXBD 32(R12), Z0
	VPERMPS   Z31, Z0, Z0
	VSUBPS    Z10, Z0, Z0
	VMULPS    Z0, Z14, Z2
	VMULPS    Z0, Z2, Z2
	VADDPS    Z2, Z1, Z1
	VPMOVZXBD 48(R12), Z0
	VPERMPS   Z31, Z0, Z0
	VSUBPS    Z11, Z0, Z0
	VMULPS    Z0, Z15, Z2
	VMULPS    Z0, Z2, Z2
	VADDPS    Z2, Z1, Z1
	VCMPPS    $1, Z16, Z1, K1, K2
	VMOVAPS   Z1, K2, Z16
	VMOVDQA32 Z18, K2, Z17
	VPADDD    Z19, Z18, Z18
	ADDQ      $64, R12
	SUBL      $16, R13
	JGT       chunk

	// m = the smallest error, in every lane of Z0
	VSHUFF32X4 $0x4e, Z16, Z16, Z0
	VMINPS     Z0, Z16, Z0
	VSHUFF32X4 $0xb1, Z0, Z0, Z1
	VMINPS     Z1, Z0, Z0
	VPERMILPS  $0x4e, Z0, Z1
	VMINPS     Z1, Z0, Z0
	VPERMILPS  $0xb1, Z0, Z1
	VMINPS     Z1, Z0, Z0
	VUCOMISS   iq3StepC<>+16(SB), X0
	JCC        fail // m >= FLT_MAX: no neighbour (ggml aborts)
	VCMPPS     $0, Z0, Z16, K3
	KMOVW      K3, AX
	VMOVDQU32  Z17, 32(SP)
	MOVL       $0x7fffffff, BX

minpos:
	BSFL    AX, R13
	MOVL    32(SP)(R13*4), R12
	CMPL    R12, BX
	CMOVLLT R12, BX
	LEAL    -1(AX), R12
	ANDL    R12, AX
	JNZ     minpos

	// the chosen point's levels: chunk BX/16, lane BX%16
	MOVL    0(SP)(CX*4), AX
	MOVL    (R8)(AX*4), AX
	ANDL    $0xffffff, AX
	ADDQ    R9, AX
	MOVL    BX, R12
	SHRL    $4, R12
	SHLL    $6, R12
	ANDL    $15, BX
	ADDQ    R12, BX
	ADDQ    AX, BX
	MOVBLZX (BX), AX
	MOVB    AX, (R10)(CX*4)
	MOVBLZX 16(BX), AX
	MOVB    AX, 1(R10)(CX*4)
	MOVBLZX 32(BX), AX
	MOVB    AX, 2(R10)(CX*4)
	MOVBLZX 48(BX), AX
	MOVB    AX, 3(R10)(CX*4)
	JMP     next

fail:
	MOVB $0, ok+88(FP)

next:
	INCQ CX
	CMPQ CX, $8
	JLT  group

	// q = 2L+1; sums in order
	VPMOVZXBD    (R10), Z0
	VPMOVZXBD    16(R10), Z1
	VPADDD       Z0, Z0, Z0
	VPADDD       Z1, Z1, Z1
	VPBROADCASTD iq3StepC<>+24(SB), Z2
	VPADDD       Z2, Z0, Z0
	VPADDD       Z2, Z1, Z1
	VCVTDQ2PS    Z0, Z0
	VCVTDQ2PS    Z1, Z1
	MOVQ         wx+32(FP), AX
	MOVQ         weight+40(FP), BX
	VMULPS       (AX), Z0, Z2
	VMOVUPS      Z2, 96(SP)
	VMULPS       64(AX), Z1, Z3
	VMOVUPS      Z3, 160(SP)
	VMULPS       (BX), Z0, Z4
	VMULPS       Z0, Z4, Z4
	VMOVUPS      Z4, 224(SP)
	VMULPS       64(BX), Z1, Z5
	VMULPS       Z1, Z5, Z5
	VMOVUPS      Z5, 288(SP)
	VXORPS       X6, X6, X6
	VXORPS       X7, X7, X7
	VADDSS 96(SP), X6, X6
	VADDSS 224(SP), X7, X7
	VADDSS 100(SP), X6, X6
	VADDSS 228(SP), X7, X7
	VADDSS 104(SP), X6, X6
	VADDSS 232(SP), X7, X7
	VADDSS 108(SP), X6, X6
	VADDSS 236(SP), X7, X7
	VADDSS 112(SP), X6, X6
	VADDSS 240(SP), X7, X7
	VADDSS 116(SP), X6, X6
	VADDSS 244(SP), X7, X7
	VADDSS 120(SP), X6, X6
	VADDSS 248(SP), X7, X7
	VADDSS 124(SP), X6, X6
	VADDSS 252(SP), X7, X7
	VADDSS 128(SP), X6, X6
	VADDSS 256(SP), X7, X7
	VADDSS 132(SP), X6, X6
	VADDSS 260(SP), X7, X7
	VADDSS 136(SP), X6, X6
	VADDSS 264(SP), X7, X7
	VADDSS 140(SP), X6, X6
	VADDSS 268(SP), X7, X7
	VADDSS 144(SP), X6, X6
	VADDSS 272(SP), X7, X7
	VADDSS 148(SP), X6, X6
	VADDSS 276(SP), X7, X7
	VADDSS 152(SP), X6, X6
	VADDSS 280(SP), X7, X7
	VADDSS 156(SP), X6, X6
	VADDSS 284(SP), X7, X7
	VADDSS 160(SP), X6, X6
	VADDSS 288(SP), X7, X7
	VADDSS 164(SP), X6, X6
	VADDSS 292(SP), X7, X7
	VADDSS 168(SP), X6, X6
	VADDSS 296(SP), X7, X7
	VADDSS 172(SP), X6, X6
	VADDSS 300(SP), X7, X7
	VADDSS 176(SP), X6, X6
	VADDSS 304(SP), X7, X7
	VADDSS 180(SP), X6, X6
	VADDSS 308(SP), X7, X7
	VADDSS 184(SP), X6, X6
	VADDSS 312(SP), X7, X7
	VADDSS 188(SP), X6, X6
	VADDSS 316(SP), X7, X7
	VADDSS 192(SP), X6, X6
	VADDSS 320(SP), X7, X7
	VADDSS 196(SP), X6, X6
	VADDSS 324(SP), X7, X7
	VADDSS 200(SP), X6, X6
	VADDSS 328(SP), X7, X7
	VADDSS 204(SP), X6, X6
	VADDSS 332(SP), X7, X7
	VADDSS 208(SP), X6, X6
	VADDSS 336(SP), X7, X7
	VADDSS 212(SP), X6, X6
	VADDSS 340(SP), X7, X7
	VADDSS 216(SP), X6, X6
	VADDSS 344(SP), X7, X7
	VADDSS 220(SP), X6, X6
	VADDSS 348(SP), X7, X7
	VMOVSS       X6, sumqx+80(FP)
	VMOVSS       X7, sumq2+84(FP)
	VZEROUPPER
	RET
