//go:build amd64 && !purego

#include "textflag.h"

// The repacked Q4_K/Q2_K product with AVX512_VNNI for a tile of 16 weight
// rows and four tokens (see matmul_q4k_avx512_amd64.go). Each 512-bit
// register holds one int32 or float32 lane per weight row, one register
// per token, so the float steps of repack.cpp's q*_K_8x8 order (the
// conversion of a group's integer sums, the scale products, the fused
// multiply-adds) run for the 16 rows at once without horizontal sums.
// Go's operand order is the reverse of Intel's: VPDPBUSD m, u, d is
// d += Σ u·m over each lane's 4 bytes, u unsigned and m signed.

// KZSTEP multiplies 4 codes of each of the 16 rows (64 bytes at woff(SI))
// with the same 4 codes of each token (xoff(DI) + t·k, broadcast),
// accumulating into the int32 lanes t0..t3.
#define KZSTEP(woff, xoff, t0, t1, t2, t3) \
	VMOVDQU32     woff(SI), Z8;           \
	VPDPBUSD.BCST xoff(DI), Z8, t0;       \
	VPDPBUSD.BCST xoff(DI)(R15*1), Z8, t1; \
	VPDPBUSD.BCST xoff(DI)(R15*2), Z8, t2; \
	VPDPBUSD.BCST xoff(DI)(R14*1), Z8, t3

// KZZERO clears both partial-sum sets (Z4-Z7, Z18-Z21).
#define KZZERO \
	VPXORD Z4, Z4, Z4;    \
	VPXORD Z5, Z5, Z5;    \
	VPXORD Z6, Z6, Z6;    \
	VPXORD Z7, Z7, Z7;    \
	VPXORD Z18, Z18, Z18; \
	VPXORD Z19, Z19, Z19; \
	VPXORD Z20, Z20, Z20; \
	VPXORD Z21, Z21, Z21

// KZSCALE adds the two partial sums of one scale region, multiplies them
// by the rows' scales at (DX) and adds the products to the group's sums
// Z0-Z3 (exact: |partial| ≤ 32·15·128, scale ≤ 63).
#define KZSCALE \
	VMOVDQU32 (DX), Z9;   \
	VPADDD    Z18, Z4, Z4; \
	VPADDD    Z19, Z5, Z5; \
	VPADDD    Z20, Z6, Z6; \
	VPADDD    Z21, Z7, Z7; \
	VPMULLD   Z9, Z4, Z4; \
	VPMULLD   Z9, Z5, Z5; \
	VPMULLD   Z9, Z6, Z6; \
	VPMULLD   Z9, Z7, Z7; \
	VPADDD    Z4, Z0, Z0; \
	VPADDD    Z5, Z1, Z1; \
	VPADDD    Z6, Z2, Z2; \
	VPADDD    Z7, Z3, Z3; \
	ADDQ      $64, DX

// KZFLOAT is the float step of token t (xd at off(R11)): acc += float(isum)
// · (wd·xd) and accMin += float(imin) · (wdm·xd), each one fused
// multiply-add per row lane.
#define KZFLOAT(off, isum, imin, acc, accMin) \
	VCVTDQ2PS   isum, isum;          \
	VMULPS.BCST off(R11), Z26, Z28;  \
	VFMADD231PS Z28, isum, acc;      \
	VCVTDQ2PS   imin, imin;          \
	VMULPS.BCST off(R11), Z27, Z28;  \
	VFMADD231PS Z28, imin, accMin

// func kRepack16x4z(wq *uint8, sc, mnp *int32, wd, wdm *float32, x *int8, k int, xdq *float32, bsq *int16, nb, per, q2 int, dst *float32, ldd, mask int)
//
// dst[t·ldd + r] for the four tokens t (codes x + t·k; block scales and
// bsums interleaved in xdq, bsq as q8KBlocks.makeQuads lays them out) and
// the rows r set in mask (of 16), from the tile's codes arranged four by
// four (wq: for each 4 elements, 4 codes of row 0, of row 1, ... row 15),
// its scales as int32 per row (sc: 16 per chunk of 32 for Q4_K, per 16
// elements for Q2_K, q2 ≠ 0), its minimum pairs (mnp: per chunk c the
// int16 pair aux[2c], aux[2c+1] of each row, multiplied with the bsums
// pair of the chunk) and per block its 16 rows' wd and wdm. Per group of
// per chunks (2, 4 or 8) the sums of the rows' scaled code products and of
// their minimum terms are converted and added into per-row accumulators
// as kRepackDot does; the result is acc − accMin.
TEXT ·kRepack16x4z(SB), NOSPLIT, $0-120
	MOVQ wq+0(FP), SI
	MOVQ sc+8(FP), DX
	MOVQ mnp+16(FP), R8
	MOVQ wd+24(FP), R9
	MOVQ wdm+32(FP), R10
	MOVQ x+40(FP), DI
	MOVQ k+48(FP), R15
	LEAQ (R15)(R15*2), R14
	MOVQ xdq+56(FP), R11
	MOVQ bsq+64(FP), R12
	MOVQ nb+72(FP), CX
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17

kzblk:
	VMOVUPS (R9), Z26
	VMOVUPS (R10), Z27
	MOVQ    $8, AX // chunks left in the block

kzgrp:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	MOVQ   per+80(FP), BX

kzchunk:
	// The chunk's minimum terms: Σ aux·bsums over its pair.
	VMOVDQU32     (R8), Z9
	VPDPWSSD.BCST (R12), Z9, Z22
	VPDPWSSD.BCST 32(R12), Z9, Z23
	VPDPWSSD.BCST 64(R12), Z9, Z24
	VPDPWSSD.BCST 96(R12), Z9, Z25
	ADDQ          $64, R8
	ADDQ          $4, R12

	// The chunk's 32 codes: one scale region (Q4_K) or two (Q2_K), the
	// steps alternating between two sets of partial sums.
	KZZERO
	KZSTEP(0, 0, Z4, Z5, Z6, Z7)
	KZSTEP(64, 4, Z18, Z19, Z20, Z21)
	KZSTEP(128, 8, Z4, Z5, Z6, Z7)
	KZSTEP(192, 12, Z18, Z19, Z20, Z21)
	MOVQ q2+88(FP), R13
	TESTQ R13, R13
	JZ    kzsame
	KZSCALE
	KZZERO

kzsame:
	KZSTEP(256, 16, Z4, Z5, Z6, Z7)
	KZSTEP(320, 20, Z18, Z19, Z20, Z21)
	KZSTEP(384, 24, Z4, Z5, Z6, Z7)
	KZSTEP(448, 28, Z18, Z19, Z20, Z21)
	KZSCALE
	ADDQ $512, SI
	ADDQ $32, DI
	DECQ BX
	JNZ  kzchunk

	KZFLOAT(0, Z0, Z22, Z10, Z14)
	KZFLOAT(4, Z1, Z23, Z11, Z15)
	KZFLOAT(8, Z2, Z24, Z12, Z16)
	KZFLOAT(12, Z3, Z25, Z13, Z17)
	SUBQ per+80(FP), AX
	JNZ  kzgrp

	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $16, R11
	ADDQ $96, R12 // 128 per block, 32 of them stepped by the chunks
	DECQ CX
	JNZ  kzblk

	MOVQ   mask+112(FP), AX
	KMOVW  AX, K1
	MOVQ   dst+96(FP), BX
	MOVQ   ldd+104(FP), AX
	SHLQ   $2, AX
	VSUBPS Z14, Z10, Z10
	VMOVUPS Z10, K1, (BX)
	ADDQ   AX, BX
	VSUBPS Z15, Z11, Z11
	VMOVUPS Z11, K1, (BX)
	ADDQ   AX, BX
	VSUBPS Z16, Z12, Z12
	VMOVUPS Z12, K1, (BX)
	ADDQ   AX, BX
	VSUBPS Z17, Z13, Z13
	VMOVUPS Z13, K1, (BX)
	VZEROUPPER
	RET
