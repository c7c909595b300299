//go:build amd64 && !purego

#include "textflag.h"

// func f16ToF32AVX(dst *float32, src *byte, n int)
//
// dst[i] = the fp16 value at src[2i:] (n a positive multiple of 8), by
// VCVTPH2PS (F16C, present on every AVX2+FMA CPU); exact.
TEXT ·f16ToF32AVX(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX

f16loop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       f16loop
	VZEROUPPER
	RET

// func bf16ToF32AVX(dst *float32, src *byte, n int)
//
// dst[i] = the bf16 value at src[2i:] (n a positive multiple of 8): the
// 16 bits shifted into the high half of a float32.
TEXT ·bf16ToF32AVX(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX

bf16loop:
	VPMOVZXWD (SI), Y0
	VPSLLD    $16, Y0, Y0
	VMOVDQU   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       bf16loop
	VZEROUPPER
	RET
