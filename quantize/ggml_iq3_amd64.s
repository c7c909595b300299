//go:build amd64 && !purego

#include "textflag.h"

// iq3LaneIdx is the lane numbers 0..7 (int32).
DATA iq3LaneIdx<>+0(SB)/4, $0
DATA iq3LaneIdx<>+4(SB)/4, $1
DATA iq3LaneIdx<>+8(SB)/4, $2
DATA iq3LaneIdx<>+12(SB)/4, $3
DATA iq3LaneIdx<>+16(SB)/4, $4
DATA iq3LaneIdx<>+20(SB)/4, $5
DATA iq3LaneIdx<>+24(SB)/4, $6
DATA iq3LaneIdx<>+28(SB)/4, $7
GLOBL iq3LaneIdx<>(SB), RODATA|NOPTR, $32

// func iq3Nearest8(lv *uint8, n int, x, w *[4]float32, sq *[8]float32) int
//
// iq3_find_best_neighbour over a list of n grid points stored as chunks of
// 8: 32 bytes per chunk, the 8 points' levels of coordinate 0, then 1, 2,
// 3. Per lane, in ggml's order: d_i = sq[l_i] - x_i, t_i = (w_i*d_i)*d_i,
// e = ((t0 + t1) + t2) + t3. NaN errors and the padding lanes count as
// +Inf (never below FLT_MAX, like a NaN in ggml's comparison). Returns the
// first position with the smallest error if that error is below FLT_MAX,
// else -1.
TEXT ·iq3Nearest8(SB), NOSPLIT, $0-48
	MOVQ lv+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ x+16(FP), AX
	MOVQ w+24(FP), BX
	MOVQ sq+32(FP), DX
	VMOVUPS      (DX), Y15
	VBROADCASTSS 0(AX), Y8
	VBROADCASTSS 4(AX), Y9
	VBROADCASTSS 8(AX), Y10
	VBROADCASTSS 12(AX), Y11
	VBROADCASTSS 0(BX), Y12
	VBROADCASTSS 4(BX), Y13
	VBROADCASTSS 8(BX), Y14
	VBROADCASTSS 12(BX), Y7
	MOVL         $0x7f800000, R10
	MOVQ         R10, X5
	VPBROADCASTD X5, Y5 // +Inf
	MOVL         $0x7f7fffff, R10
	MOVQ         R10, X6 // best = FLT_MAX
	MOVQ         $-1, R8 // best position
	XORQ         R9, R9  // position of the chunk's lane 0

nLoop:
	VPMOVZXBD 0(SI), Y0
	VPERMPS   Y15, Y0, Y0
	VSUBPS    Y8, Y0, Y0
	VMULPS    Y0, Y12, Y1
	VMULPS    Y0, Y1, Y1
	VPMOVZXBD 8(SI), Y0
	VPERMPS   Y15, Y0, Y0
	VSUBPS    Y9, Y0, Y0
	VMULPS    Y0, Y13, Y2
	VMULPS    Y0, Y2, Y2
	VADDPS    Y2, Y1, Y1
	VPMOVZXBD 16(SI), Y0
	VPERMPS   Y15, Y0, Y0
	VSUBPS    Y10, Y0, Y0
	VMULPS    Y0, Y14, Y2
	VMULPS    Y0, Y2, Y2
	VADDPS    Y2, Y1, Y1
	VPMOVZXBD 24(SI), Y0
	VPERMPS   Y15, Y0, Y0
	VSUBPS    Y11, Y0, Y0
	VMULPS    Y0, Y7, Y2
	VMULPS    Y0, Y2, Y2
	VADDPS    Y2, Y1, Y1

	// keep = lane < remaining && !isnan(e); others +Inf
	MOVQ         CX, X3
	VPBROADCASTD X3, Y3
	VPCMPGTD     iq3LaneIdx<>(SB), Y3, Y4
	VCMPPS       $3, Y1, Y1, Y0
	VANDNPS      Y4, Y0, Y4
	VBLENDVPS    Y4, Y1, Y5, Y1

	// m = min over the lanes, in every lane of X2
	VEXTRACTF128 $1, Y1, X2
	VMINPS       X2, X1, X2
	VPERMILPS    $0x4e, X2, X3
	VMINPS       X3, X2, X2
	VPERMILPS    $0xb1, X2, X3
	VMINPS       X3, X2, X2
	VUCOMISS     X6, X2
	JCC          nNext // m >= best: ggml keeps the earlier point

	VBROADCASTSS X2, Y3
	VCMPPS       $0, Y3, Y1, Y0
	VMOVMSKPS    Y0, R11
	BSFL         R11, R11
	LEAQ         (R9)(R11*1), R8
	VMOVAPS      X2, X6

nNext:
	ADDQ $32, SI
	ADDQ $8, R9
	SUBQ $8, CX
	JGT  nLoop

	MOVQ R8, ret+40(FP)
	VZEROUPPER
	RET
