//go:build amd64 && !purego

#include "textflag.h"

// func affineF16(dst *float32, n int, s, b float32)
//
// dst[i] = f16(f16(s·dst[i]) + b) for i < n (n a positive multiple of 8),
// each f16 the round-to-nearest-even conversion by VCVTPS2PH (immediate
// 0) and back: MLX's affine dequantization in float16 (see
// dequantAffineRow).
TEXT ·affineF16(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS s+16(FP), Y1
	VBROADCASTSS b+20(FP), Y2
	SHRQ         $3, CX

affloop:
	VMULPS    (DI), Y1, Y0
	VCVTPS2PH $0, Y0, X0
	VCVTPH2PS X0, Y0
	VADDPS    Y2, Y0, Y0
	VCVTPS2PH $0, Y0, X0
	VCVTPH2PS X0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $32, DI
	DECQ      CX
	JNZ       affloop
	VZEROUPPER
	RET
