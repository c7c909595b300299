//go:build amd64 && !purego

#include "textflag.h"
#include "simd_amd64.h"

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
	ZEROZ4(Z4, Z5, Z6, Z7); \
	ZEROZ4(Z18, Z19, Z20, Z21)

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
	ZEROZ4(Z10, Z11, Z12, Z13)
	ZEROZ4(Z14, Z15, Z16, Z17)

kzblk:
	VMOVUPS (R9), Z26
	VMOVUPS (R10), Z27
	MOVQ    $8, AX // chunks left in the block

kzgrp:
	ZEROZ4(Z0, Z1, Z2, Z3)
	ZEROZ4(Z22, Z23, Z24, Z25)
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

// kzIota is 0, 1, … 15 (int32).
DATA kzIota<>+0(SB)/4, $0
DATA kzIota<>+4(SB)/4, $1
DATA kzIota<>+8(SB)/4, $2
DATA kzIota<>+12(SB)/4, $3
DATA kzIota<>+16(SB)/4, $4
DATA kzIota<>+20(SB)/4, $5
DATA kzIota<>+24(SB)/4, $6
DATA kzIota<>+28(SB)/4, $7
DATA kzIota<>+32(SB)/4, $8
DATA kzIota<>+36(SB)/4, $9
DATA kzIota<>+40(SB)/4, $10
DATA kzIota<>+44(SB)/4, $11
DATA kzIota<>+48(SB)/4, $12
DATA kzIota<>+52(SB)/4, $13
DATA kzIota<>+56(SB)/4, $14
DATA kzIota<>+60(SB)/4, $15
GLOBL kzIota<>(SB), RODATA|NOPTR, $64

// KZGATHER loads the 4 bytes at off(R9) of each row set in R8 (rows
// stride apart: byte offsets in Z1) into the lanes of Z0, 0 for the others.
#define KZGATHER(off) \
	KMOVW      R8, K1;            \
	VPXORD     Z0, Z0, Z0;        \
	VPGATHERDD off(R9)(Z1*1), K1, Z0

// KZ4 stores the low nibbles of Z0's bytes at lo(DI) and the high ones at
// hi(DI).
#define KZ4(lo, hi) \
	VPANDD    Z2, Z0, Z4;  \
	VMOVDQU32 Z4, lo(DI);  \
	VPSRLD    $4, Z0, Z0;  \
	VPANDD    Z2, Z0, Z0;  \
	VMOVDQU32 Z0, hi(DI)

// KZ2 stores the four 2-bit fields of Z0's bytes at off(DI), 512+off(DI),
// 1024+off(DI), 1536+off(DI).
#define KZ2(off) \
	VPANDD    Z3, Z0, Z4;      \
	VMOVDQU32 Z4, off(DI);     \
	VPSRLD    $2, Z0, Z4;      \
	VPANDD    Z3, Z4, Z4;      \
	VMOVDQU32 Z4, 512+off(DI); \
	VPSRLD    $4, Z0, Z4;      \
	VPANDD    Z3, Z4, Z4;      \
	VMOVDQU32 Z4, 1024+off(DI); \
	VPSRLD    $6, Z0, Z4;      \
	VPANDD    Z3, Z4, Z4;      \
	VMOVDQU32 Z4, 1536+off(DI)

// func kArrangeCodes(dst *uint8, src *byte, stride, nb, mask, q2 int)
//
// The codes of kTileZ.wq from nb blocks of up to 16 rows (Q4_K, or Q2_K
// for q2 ≠ 0) at src, stride bytes apart, the rows set in mask (the others
// zero): each row's 4 consecutive codes as one 32-bit lane, gathered from
// the 16 rows at once. The rows (one contiguous range) are prefetched
// first: the gathers' 16 interleaved streams defeat the hardware
// prefetcher.
TEXT ·kArrangeCodes(SB), NOSPLIT, $0-48
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         mask+32(FP), AX
	POPCNTQ      AX, AX
	IMULQ        stride+16(FP), AX
	ADDQ         SI, AX // end of the rows

kapf:
	PREFETCHT0 (SI)
	ADDQ       $64, SI
	CMPQ       SI, AX
	JLT        kapf
	MOVQ       src+8(FP), SI
	MOVQ         stride+16(FP), AX
	VPBROADCASTD AX, Z1
	VPMULLD      kzIota<>(SB), Z1, Z1
	MOVQ         nb+24(FP), CX
	MOVQ         mask+32(FP), R8
	BCASTDZ($0x0f0f0f0f, AX, Z2)
	BCASTDZ($0x03030303, AX, Z3)
	MOVQ         q2+40(FP), AX
	TESTQ        AX, AX
	JNZ          kaq2

kaq4:
	LEAQ 16(SI), R9 // the block's 128 bytes of codes
	MOVQ $4, R10

kaq4j:
	// 32 bytes: elements 64j + 0..31 (low nibbles), 64j + 32..63 (high).
	KZGATHER(0)
	KZ4(0, 512)
	KZGATHER(4)
	KZ4(64, 576)
	KZGATHER(8)
	KZ4(128, 640)
	KZGATHER(12)
	KZ4(192, 704)
	KZGATHER(16)
	KZ4(256, 768)
	KZGATHER(20)
	KZ4(320, 832)
	KZGATHER(24)
	KZ4(384, 896)
	KZGATHER(28)
	KZ4(448, 960)
	ADDQ $32, R9
	ADDQ $1024, DI
	DECQ R10
	JNZ  kaq4j
	ADDQ $144, SI
	DECQ CX
	JNZ  kaq4
	VZEROUPPER
	RET

kaq2:
	LEAQ 16(SI), R9 // the block's 64 bytes of codes
	MOVQ $2, R10

kaq2h:
	// 32 bytes: field j of byte l is element 128h + 32j + l.
	KZGATHER(0)
	KZ2(0)
	KZGATHER(4)
	KZ2(64)
	KZGATHER(8)
	KZ2(128)
	KZGATHER(12)
	KZ2(192)
	KZGATHER(16)
	KZ2(256)
	KZGATHER(20)
	KZ2(320)
	KZGATHER(24)
	KZ2(384)
	KZGATHER(28)
	KZ2(448)
	ADDQ $32, R9
	ADDQ $2048, DI
	DECQ R10
	JNZ  kaq2h
	ADDQ $84, SI
	DECQ CX
	JNZ  kaq2
	VZEROUPPER
	RET
