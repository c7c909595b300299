//go:build amd64 && !purego

#include "textflag.h"

// AVX2 lane kernels for the k-quant searches (see ggml_simd.go).
//
// Lane j of every YMM register is sub-block j: each lane performs exactly
// the float32 operations of ggml's scalar code, in the same order (separate
// VMULPS and VADDPS, never fused; VDIVPS and VSQRTPS are correctly
// rounded like their scalar forms). Comparisons use ordered predicates
// (false on NaN) as C's `<` and `>` do, and every C branch becomes a
// per-lane mask and blend. Go's operand order is the reverse of Intel's:
// VSUBPS b, a, d is d = a - b; VMINPS b, a, d is d = a < b ? a : b;
// VBLENDVPS m, b, a, d is d = m ? b : a; VCMPPS $p, b, a, d is d = a p b.

#define CMP_EQ_OQ  $0x00
#define CMP_NEQ_UQ $0x04
#define CMP_NEQ_OQ $0x0c
#define CMP_LT_OQ  $0x11
#define CMP_LE_OQ  $0x12
#define CMP_GE_OQ  $0x1d
#define CMP_GT_OQ  $0x1e

// NEAREST_CLAMP turns the floats in t into ggml's nearest_int(t) clamped
// to [lo, hi] (int32 lanes; NEAREST_CLAMP converts back to float): t += 12582912f;
// keep the low 23 bits; subtract 0x400000. Y8 = 12582912f, Y9 = 0x7fffff,
// Y10 = 0x400000.
#define NEAREST_CLAMP_INT(t, lo, hi) \
	VADDPS  Y8, t, t;  \
	VPAND   Y9, t, t;  \
	VPSUBD  Y10, t, t; \
	VPMINSD hi, t, t;  \
	VPMAXSD lo, t, t

#define NEAREST_CLAMP(t, lo, hi) \
	NEAREST_CLAMP_INT(t, lo, hi); \
	VCVTDQ2PS t, t

#define BCAST32(val, reg, xreg) \
	MOVL         val, AX;   \
	VMOVQ        AX, xreg;  \
	VPBROADCASTD xreg, reg

#define MAGIC_CONSTS \
	BCAST32($0x4b400000, Y8, X8); \
	BCAST32($0x007fffff, Y9, X9); \
	BCAST32($0x00400000, Y10, X10)

// Offsets in the 12-vector scratch/result block of qkx2x8.
#define O_SCALE   0
#define O_THEMIN  32
#define O_LISCALE 64
#define O_LMIN    96
#define O_MAX     128
#define O_SUMW    160
#define O_SUMX    192
#define O_BEST    224
#define O_MIN0    256

// func qkx2x8(x, w, aux *float32, n, nmax int, nums *float32, nnums, mad int, out *[12][8]float32)
//
// make_qkx2_quants on 8 sub-blocks at once: x and w hold n rows of 8 lanes
// (row i, lane j = element i of sub-block j), aux is scratch of n rows,
// nums the nnums (>= 1) numerators rmin + rdelta*is + nmax. Results: out[0]
// scale, out[1] the_min, out[2], out[3] the (iscale, min) whose codes
// clamp(nearest_int(iscale*(x-min)), 0, nmax) are the sub-block's L (0, 0
// for a flat sub-block, whose codes are all 0).
TEXT ·qkx2x8(SB), NOSPLIT, $0-72
	MOVQ x+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ aux+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ out+64(FP), R8

	// min, max, sum_w, sum_x.
	VMOVUPS (SI), Y0
	VMOVAPS Y0, Y1
	VMOVUPS (DI), Y2
	VMULPS  Y0, Y2, Y3
	LEAQ    32(SI), R9
	LEAQ    32(DI), R10
	MOVQ    CX, DX
	DECQ    DX
	JZ      statsDone

statsLoop:
	VMOVUPS (R9), Y4
	VMINPS  Y0, Y4, Y0 // x < min ? x : min
	VMAXPS  Y1, Y4, Y1 // x > max ? x : max
	VMOVUPS (R10), Y5
	VADDPS  Y5, Y2, Y2
	VMULPS  Y4, Y5, Y5
	VADDPS  Y5, Y3, Y3
	ADDQ    $32, R9
	ADDQ    $32, R10
	DECQ    DX
	JNZ     statsLoop

statsDone:
	VXORPS  Y12, Y12, Y12
	VMINPS  Y0, Y12, Y0 // if (min > 0) min = 0
	VMOVUPS Y1, O_MAX(R8)
	VMOVUPS Y2, O_SUMW(R8)
	VMOVUPS Y3, O_SUMX(R8)
	VMOVUPS Y0, O_MIN0(R8)

	MAGIC_CONSTS
	MOVQ         nmax+32(FP), AX
	VMOVQ        AX, X11
	VPBROADCASTD X11, Y11

	// iscale = nmax/(max - min); scale = 1/iscale; first codes and error.
	VCVTDQ2PS Y11, Y13
	VSUBPS    Y0, Y1, Y14
	VDIVPS    Y14, Y13, Y1
	VMOVUPS   Y1, O_LISCALE(R8)
	VMOVUPS   Y0, O_LMIN(R8)
	BCAST32($0x3f800000, Y15, X15)
	VDIVPS    Y1, Y15, Y5
	VMOVUPS   Y5, O_SCALE(R8)
	BCAST32($0x7fffffff, Y2, X2)
	VXORPS    Y7, Y7, Y7
	MOVQ      SI, R9
	MOVQ      DI, R10
	MOVQ      CX, DX
	CMPQ      mad+56(FP), $0
	JNE       firstMad

firstSq:
	VMOVUPS (R9), Y4
	VSUBPS  Y0, Y4, Y6
	VMULPS  Y1, Y6, Y6
	NEAREST_CLAMP(Y6, Y12, Y11)
	VMULPS  Y6, Y5, Y6
	VADDPS  Y0, Y6, Y6
	VSUBPS  Y4, Y6, Y6
	VMULPS  Y6, Y6, Y6
	VMULPS  (R10), Y6, Y6
	VADDPS  Y6, Y7, Y7
	ADDQ    $32, R9
	ADDQ    $32, R10
	DECQ    DX
	JNZ     firstSq
	JMP     firstDone

firstMad:
	VMOVUPS (R9), Y4
	VSUBPS  Y0, Y4, Y6
	VMULPS  Y1, Y6, Y6
	NEAREST_CLAMP(Y6, Y12, Y11)
	VMULPS  Y6, Y5, Y6
	VADDPS  Y0, Y6, Y6
	VSUBPS  Y4, Y6, Y6
	VANDPS  Y2, Y6, Y6
	VMULPS  (R10), Y6, Y6
	VADDPS  Y6, Y7, Y7
	ADDQ    $32, R9
	ADDQ    $32, R10
	DECQ    DX
	JNZ     firstMad

firstDone:
	VMOVUPS Y7, O_BEST(R8)
	MOVQ    nums+40(FP), R11
	MOVQ    nnums+48(FP), R12

stepLoop:
	// iscale = (rmin + rdelta*is + nmax)/(max - min), min as updated.
	VBROADCASTSS (R11), Y13
	VMOVUPS      O_MAX(R8), Y14
	VSUBPS       Y0, Y14, Y14
	VDIVPS       Y14, Y13, Y1
	VXORPS       Y2, Y2, Y2 // sum_l
	VXORPS       Y3, Y3, Y3 // sum_l2
	VXORPS       Y4, Y4, Y4 // sum_xl
	MOVQ         SI, R9
	MOVQ         DI, R10
	MOVQ         BX, R13
	MOVQ         CX, DX

sumLoop:
	VMOVUPS (R9), Y5
	VSUBPS  Y0, Y5, Y6
	VMULPS  Y1, Y6, Y6
	NEAREST_CLAMP(Y6, Y12, Y11)
	VMOVUPS Y6, (R13)
	VMULPS  (R10), Y6, Y7 // w*l
	VADDPS  Y7, Y2, Y2
	VMULPS  Y6, Y7, Y13   // w*l*l
	VADDPS  Y13, Y3, Y3
	VMULPS  Y5, Y7, Y14   // w*l*x
	VADDPS  Y14, Y4, Y4
	ADDQ    $32, R9
	ADDQ    $32, R10
	ADDQ    $32, R13
	DECQ    DX
	JNZ     sumLoop

	VMOVUPS O_SUMW(R8), Y5
	VMOVUPS O_SUMX(R8), Y6
	VMULPS  Y3, Y5, Y7      // sum_w*sum_l2
	VMULPS  Y2, Y2, Y13     // sum_l*sum_l
	VSUBPS  Y13, Y7, Y7     // D
	VMULPS  Y4, Y5, Y13     // sum_w*sum_xl
	VMULPS  Y2, Y6, Y14     // sum_x*sum_l
	VSUBPS  Y14, Y13, Y13
	VDIVPS  Y7, Y13, Y13    // this_scale
	VMULPS  Y6, Y3, Y14     // sum_l2*sum_x
	VMULPS  Y4, Y2, Y15     // sum_l*sum_xl
	VSUBPS  Y15, Y14, Y14
	VDIVPS  Y7, Y14, Y14    // this_min
	VCMPPS  CMP_GT_OQ, Y12, Y14, Y15
	VDIVPS  Y3, Y4, Y5      // sum_xl/sum_l2
	VBLENDVPS Y15, Y5, Y13, Y13
	VBLENDVPS Y15, Y12, Y14, Y14
	VCMPPS  CMP_GT_OQ, Y12, Y7, Y7 // D > 0

	VXORPS  Y6, Y6, Y6 // cur_error
	MOVQ    SI, R9
	MOVQ    DI, R10
	MOVQ    BX, R13
	MOVQ    CX, DX
	CMPQ    mad+56(FP), $0
	JNE     errMadStart

errSq:
	VMOVUPS (R13), Y5
	VMULPS  Y5, Y13, Y5
	VADDPS  Y14, Y5, Y5
	VSUBPS  (R9), Y5, Y5
	VMULPS  Y5, Y5, Y5
	VMULPS  (R10), Y5, Y5
	VADDPS  Y5, Y6, Y6
	ADDQ    $32, R9
	ADDQ    $32, R10
	ADDQ    $32, R13
	DECQ    DX
	JNZ     errSq
	JMP     errDone

errMadStart:
	BCAST32($0x7fffffff, Y2, X2)

errMad:
	VMOVUPS (R13), Y5
	VMULPS  Y5, Y13, Y5
	VADDPS  Y14, Y5, Y5
	VSUBPS  (R9), Y5, Y5
	VANDPS  Y2, Y5, Y5
	VMULPS  (R10), Y5, Y5
	VADDPS  Y5, Y6, Y6
	ADDQ    $32, R9
	ADDQ    $32, R10
	ADDQ    $32, R13
	DECQ    DX
	JNZ     errMad

errDone:
	// improve = D > 0 && cur_error < best_error.
	VMOVUPS   O_BEST(R8), Y5
	VCMPPS    CMP_LT_OQ, Y5, Y6, Y15
	VANDPS    Y7, Y15, Y15
	VBLENDVPS Y15, Y6, Y5, Y5
	VMOVUPS   Y5, O_BEST(R8)
	VMOVUPS   O_SCALE(R8), Y5
	VBLENDVPS Y15, Y13, Y5, Y5
	VMOVUPS   Y5, O_SCALE(R8)
	VMOVUPS   O_LISCALE(R8), Y5
	VBLENDVPS Y15, Y1, Y5, Y5
	VMOVUPS   Y5, O_LISCALE(R8)
	VMOVUPS   O_LMIN(R8), Y5
	VBLENDVPS Y15, Y0, Y5, Y5
	VMOVUPS   Y5, O_LMIN(R8)
	VBLENDVPS Y15, Y14, Y0, Y0

	ADDQ $4, R11
	DECQ R12
	JNZ  stepLoop

	// Flat sub-blocks (max == min): scale 0, the_min = -min, codes 0.
	VMOVUPS   O_MAX(R8), Y1
	VMOVUPS   O_MIN0(R8), Y2
	VCMPPS    CMP_EQ_OQ, Y2, Y1, Y3
	VBLENDVPS Y3, Y2, Y0, Y0
	BCAST32($0x80000000, Y4, X4)
	VXORPS    Y4, Y0, Y0
	VMOVUPS   Y0, O_THEMIN(R8)
	VMOVUPS   O_SCALE(R8), Y5
	VBLENDVPS Y3, Y12, Y5, Y5
	VMOVUPS   Y5, O_SCALE(R8)
	VMOVUPS   O_LISCALE(R8), Y5
	VBLENDVPS Y3, Y12, Y5, Y5
	VMOVUPS   Y5, O_LISCALE(R8)
	VMOVUPS   O_LMIN(R8), Y5
	VBLENDVPS Y3, Y12, Y5, Y5
	VMOVUPS   Y5, O_LMIN(R8)
	VZEROUPPER
	RET

// func qx8(x *float32, n, nmax int, nums *float32, out *[2][8]float32)
//
// make_qx_quants (rmse_type 1, no quant weights) on 8 sub-blocks at once:
// x holds n rows of 8 lanes, nums the 18 numerators -(nmax + 0.1f*is) for
// is = -9..9, is != 0. Results: out[0] scale, out[1] the iscale whose codes
// clamp(nearest_int(iscale*x), -nmax, nmax-1) + nmax are the sub-block's L
// (0 for an all-zero sub-block, whose codes are all 0, not nmax).
TEXT ·qx8(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+32(FP), R8

	// amax, max: the first element of largest magnitude.
	BCAST32($0x7fffffff, Y15, X15)
	VXORPS Y0, Y0, Y0 // amax
	VXORPS Y1, Y1, Y1 // max
	MOVQ   SI, R9
	MOVQ   CX, DX

maxLoop:
	VMOVUPS   (R9), Y2
	VANDPS    Y15, Y2, Y3
	VCMPPS    CMP_GT_OQ, Y0, Y3, Y4
	VBLENDVPS Y4, Y3, Y0, Y0
	VBLENDVPS Y4, Y2, Y1, Y1
	ADDQ      $32, R9
	DECQ      DX
	JNZ       maxLoop

	BCAST32($0x26901d7d, Y2, X2) // GROUP_MAX_EPS = 1e-15f
	VCMPPS CMP_LT_OQ, Y2, Y0, Y14 // all-zero lanes

	MAGIC_CONSTS
	MOVQ         nmax+16(FP), AX
	MOVQ         AX, DX
	NEGQ         DX
	VMOVQ        DX, X11
	VPBROADCASTD X11, Y11 // lo = -nmax
	DECQ         AX
	VMOVQ        AX, X12
	VPBROADCASTD X12, Y12 // hi = nmax-1
	VCVTDQ2PS    Y11, Y2
	VDIVPS       Y1, Y2, Y0 // iscale = -nmax/max
	VMOVUPS      Y0, 32(R8)

	VXORPS Y2, Y2, Y2 // sumlx
	VXORPS Y3, Y3, Y3 // suml2
	MOVQ   SI, R9
	MOVQ   CX, DX

firstQX:
	VMOVUPS (R9), Y4
	VMULPS  Y4, Y0, Y5
	NEAREST_CLAMP(Y5, Y11, Y12)
	VMULPS  Y4, Y4, Y6 // w = x*x
	VMULPS  Y4, Y6, Y7 // w*x
	VMULPS  Y5, Y7, Y7 // w*x*l
	VADDPS  Y7, Y2, Y2
	VMULPS  Y5, Y6, Y6 // w*l
	VMULPS  Y5, Y6, Y6 // w*l*l
	VADDPS  Y6, Y3, Y3
	ADDQ    $32, R9
	DECQ    DX
	JNZ     firstQX

	// scale = suml2 ? sumlx/suml2 : 0; best = scale*sumlx.
	VXORPS  Y13, Y13, Y13
	VCMPPS  CMP_NEQ_UQ, Y13, Y3, Y4
	VDIVPS  Y3, Y2, Y5
	VANDPS  Y4, Y5, Y5
	VMOVUPS Y5, (R8)
	VMULPS  Y2, Y5, Y15 // best

	MOVQ nums+24(FP), R11
	MOVQ $18, R12

stepQX:
	VBROADCASTSS (R11), Y4
	VDIVPS       Y1, Y4, Y0 // iscale
	VXORPS       Y2, Y2, Y2
	VXORPS       Y3, Y3, Y3
	MOVQ         SI, R9
	MOVQ         CX, DX

sumQX:
	VMOVUPS (R9), Y4
	VMULPS  Y4, Y0, Y5
	NEAREST_CLAMP(Y5, Y11, Y12)
	VMULPS  Y4, Y4, Y6
	VMULPS  Y4, Y6, Y7
	VMULPS  Y5, Y7, Y7
	VADDPS  Y7, Y2, Y2
	VMULPS  Y5, Y6, Y6
	VMULPS  Y5, Y6, Y6
	VADDPS  Y6, Y3, Y3
	ADDQ    $32, R9
	DECQ    DX
	JNZ     sumQX

	// if (suml2 > 0 && sumlx*sumlx > best*suml2) take this iscale.
	VMULPS    Y2, Y2, Y4
	VMULPS    Y3, Y15, Y5
	VCMPPS    CMP_GT_OQ, Y5, Y4, Y4
	VCMPPS    CMP_GT_OQ, Y13, Y3, Y5
	VANDPS    Y5, Y4, Y4
	VDIVPS    Y3, Y2, Y5 // scale
	VMULPS    Y2, Y5, Y6 // best
	VBLENDVPS Y4, Y6, Y15, Y15
	VMOVUPS   (R8), Y6
	VBLENDVPS Y4, Y5, Y6, Y6
	VMOVUPS   Y6, (R8)
	VMOVUPS   32(R8), Y6
	VBLENDVPS Y4, Y0, Y6, Y6
	VMOVUPS   Y6, 32(R8)

	ADDQ $4, R11
	DECQ R12
	JNZ  stepQX

	// All-zero lanes: scale 0, iscale 0.
	VMOVUPS (R8), Y5
	VANDNPS Y5, Y14, Y5
	VMOVUPS Y5, (R8)
	VMOVUPS 32(R8), Y5
	VANDNPS Y5, Y14, Y5
	VMOVUPS Y5, 32(R8)
	VZEROUPPER
	RET

// func quantDiv(dst *uint8, x *float32, n int, add, div float32, lo, hi, off int32)
//
// dst[i] = clamp(nearest_int((x[i] + add)/div), lo, hi) + off for i < n
// (n a multiple of 8; the results must fit 0..255).
TEXT ·quantDiv(SB), NOSPLIT, $0-44
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS add+24(FP), Y0
	VBROADCASTSS div+28(FP), Y1
	MOVL         lo+32(FP), AX
	VMOVQ        AX, X2
	VPBROADCASTD X2, Y2
	MOVL         hi+36(FP), AX
	VMOVQ        AX, X3
	VPBROADCASTD X3, Y3
	MOVL         off+40(FP), AX
	VMOVQ        AX, X4
	VPBROADCASTD X4, Y4
	MAGIC_CONSTS
	SHRQ $3, CX
	JZ   qdDone

qdLoop:
	VMOVUPS (SI), Y5
	VADDPS  Y0, Y5, Y5
	VDIVPS  Y1, Y5, Y5
	NEAREST_CLAMP_INT(Y5, Y2, Y3)
	VPADDD  Y4, Y5, Y5
	VEXTRACTI128 $1, Y5, X6
	VPACKSSDW X6, X5, X5
	VPACKUSWB X5, X5, X5
	VMOVQ   X5, (DI)
	ADDQ    $32, SI
	ADDQ    $8, DI
	DECQ    CX
	JNZ     qdLoop

qdDone:
	VZEROUPPER
	RET

// func lanePrep(xt, wt, x *float32, n, wmode int)
//
// Transposes 8 sub-blocks of n values (n a multiple of 8) into n rows of 8
// lanes, xt[8*i+j] = x[n*j+i], and writes the weights of each element to
// wt: wmode 1: fabsf(x) (Q2_K); wmode 2: sqrtf(sum_x2/32) + fabsf(x), with
// sum_x2 the sub-block's sum of x*x in element order (Q4_K, Q5_K).
TEXT ·lanePrep(SB), NOSPLIT, $0-40
	MOVQ xt+0(FP), DI
	MOVQ x+16(FP), SI
	MOVQ n+24(FP), CX
	LEAQ (CX*4), DX // row stride in bytes
	MOVQ CX, R9
	SHRQ $3, R9     // tiles

tileLoop:
	// r_j = x[n*j + 8t : +8]
	MOVQ    SI, R10
	VMOVUPS (R10), Y0
	ADDQ    DX, R10
	VMOVUPS (R10), Y1
	ADDQ    DX, R10
	VMOVUPS (R10), Y2
	ADDQ    DX, R10
	VMOVUPS (R10), Y3
	ADDQ    DX, R10
	VMOVUPS (R10), Y4
	ADDQ    DX, R10
	VMOVUPS (R10), Y5
	ADDQ    DX, R10
	VMOVUPS (R10), Y6
	ADDQ    DX, R10
	VMOVUPS (R10), Y7

	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS   $0x44, Y10, Y8, Y0
	VSHUFPS   $0xee, Y10, Y8, Y1
	VSHUFPS   $0x44, Y11, Y9, Y2
	VSHUFPS   $0xee, Y11, Y9, Y3
	VSHUFPS   $0x44, Y14, Y12, Y4
	VSHUFPS   $0xee, Y14, Y12, Y5
	VSHUFPS   $0x44, Y15, Y13, Y6
	VSHUFPS   $0xee, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	VMOVUPS   Y8, 0(DI)
	VMOVUPS   Y9, 32(DI)
	VMOVUPS   Y10, 64(DI)
	VMOVUPS   Y11, 96(DI)
	VMOVUPS   Y12, 128(DI)
	VMOVUPS   Y13, 160(DI)
	VMOVUPS   Y14, 192(DI)
	VMOVUPS   Y15, 224(DI)
	ADDQ      $32, SI
	ADDQ      $256, DI
	DECQ      R9
	JNZ       tileLoop

	MOVQ xt+0(FP), SI
	MOVQ wt+8(FP), DI
	BCAST32($0x7fffffff, Y15, X15)
	MOVQ wmode+32(FP), AX
	CMPQ AX, $1
	JEQ  absW
	CMPQ AX, $2
	JNE  prepDone

	// av_x = sqrtf(sum_x2/32)
	VXORPS Y0, Y0, Y0
	MOVQ   SI, R10
	MOVQ   CX, R9

sumX2:
	VMOVUPS (R10), Y1
	VMULPS  Y1, Y1, Y1
	VADDPS  Y1, Y0, Y0
	ADDQ    $32, R10
	DECQ    R9
	JNZ     sumX2
	BCAST32($0x42000000, Y1, X1) // 32.0f
	VDIVPS  Y1, Y0, Y0
	VSQRTPS Y0, Y14
	JMP     avW

absW:
	VXORPS Y14, Y14, Y14 // 0 + fabsf(x) == fabsf(x)

avW:
	VMOVUPS (SI), Y1
	VANDPS  Y15, Y1, Y1
	VADDPS  Y1, Y14, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     avW

prepDone:
	VZEROUPPER
	RET

// func q3x8(x, lt *float32, n, nmax int, out *[8]float32)
//
// make_q3_quants with do_rmse on 8 sub-blocks at once: x holds n rows of 8
// lanes. Writes out the scales and lt the codes L - nmax as floats, rows
// like x (-nmax for an all-zero sub-block, whose codes are all 0). The
// coordinate descent runs its 5 passes on every lane: a pass that changes
// nothing leaves the state as it was, so the passes ggml skips after one
// would change nothing either; the loop stops once no lane changed.
TEXT ·q3x8(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ lt+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ out+32(FP), R8

	BCAST32($0x7fffffff, Y15, X15)
	VXORPS Y0, Y0, Y0 // amax
	VXORPS Y1, Y1, Y1 // max
	MOVQ   SI, R9
	MOVQ   CX, DX

q3Max:
	VMOVUPS   (R9), Y2
	VANDPS    Y15, Y2, Y3
	VCMPPS    CMP_GT_OQ, Y0, Y3, Y4
	VBLENDVPS Y4, Y3, Y0, Y0
	VBLENDVPS Y4, Y2, Y1, Y1
	ADDQ      $32, R9
	DECQ      DX
	JNZ       q3Max

	BCAST32($0x26901d7d, Y2, X2) // GROUP_MAX_EPS
	VCMPPS  CMP_LT_OQ, Y2, Y0, Y2
	VMOVUPS Y2, (R8)             // all-zero lanes, kept in out until the end

	MAGIC_CONSTS
	MOVQ         nmax+24(FP), AX
	MOVQ         AX, DX
	NEGQ         DX
	VMOVQ        DX, X11
	VPBROADCASTD X11, Y11 // lo = -nmax
	DECQ         AX
	VMOVQ        AX, X12
	VPBROADCASTD X12, Y12 // hi = nmax-1
	VXORPS       Y13, Y13, Y13
	VCVTDQ2PS    Y11, Y2
	VDIVPS       Y1, Y2, Y2 // iscale = -nmax/max

	VXORPS Y0, Y0, Y0 // sumlx
	VXORPS Y1, Y1, Y1 // suml2
	MOVQ   SI, R9
	MOVQ   DI, R10
	MOVQ   CX, DX

q3First:
	VMOVUPS (R9), Y4
	VMULPS  Y4, Y2, Y5
	NEAREST_CLAMP(Y5, Y11, Y12)
	VMOVUPS Y5, (R10)
	VMULPS  Y4, Y4, Y6 // w = x*x
	VMULPS  Y4, Y6, Y7 // w*x
	VMULPS  Y5, Y7, Y7 // w*x*l
	VADDPS  Y7, Y0, Y0
	VMULPS  Y5, Y6, Y6 // w*l
	VMULPS  Y5, Y6, Y6 // w*l*l
	VADDPS  Y6, Y1, Y1
	ADDQ    $32, R9
	ADDQ    $32, R10
	DECQ    DX
	JNZ     q3First

	MOVQ $5, R11

q3Pass:
	VXORPS Y2, Y2, Y2 // changed lanes
	MOVQ   SI, R9
	MOVQ   DI, R10
	MOVQ   CX, DX

q3Elem:
	VMOVUPS (R9), Y3      // x
	VMULPS  Y3, Y3, Y4    // w
	VMOVUPS (R10), Y5     // L
	VMULPS  Y3, Y4, Y6    // w*x
	VMULPS  Y5, Y6, Y7
	VSUBPS  Y7, Y0, Y7    // slx = sumlx - w*x*L
	VMULPS  Y5, Y4, Y15
	VMULPS  Y5, Y15, Y15
	VSUBPS  Y15, Y1, Y15  // sl2 = suml2 - w*L*L
	VMULPS  Y15, Y3, Y14
	VDIVPS  Y7, Y14, Y14  // x*sl2/slx
	NEAREST_CLAMP(Y14, Y11, Y12) // new_l
	VCMPPS  CMP_NEQ_OQ, Y5, Y14, Y3
	VMULPS  Y14, Y6, Y6
	VADDPS  Y6, Y7, Y6    // slx += w*x*new_l
	VCMPPS  CMP_GT_OQ, Y13, Y7, Y7 // slx > 0 (before the update)
	VANDPS  Y7, Y3, Y3
	VMULPS  Y14, Y4, Y4
	VMULPS  Y14, Y4, Y4
	VADDPS  Y4, Y15, Y15  // sl2 += w*new_l*new_l
	VCMPPS  CMP_GT_OQ, Y13, Y15, Y4
	VANDPS  Y4, Y3, Y3
	VMULPS  Y6, Y6, Y4
	VMULPS  Y1, Y4, Y4    // slx*slx*suml2
	VMULPS  Y0, Y0, Y7
	VMULPS  Y15, Y7, Y7   // sumlx*sumlx*sl2
	VCMPPS  CMP_GT_OQ, Y7, Y4, Y4
	VANDPS  Y4, Y3, Y3
	VBLENDVPS Y3, Y14, Y5, Y5
	VMOVUPS Y5, (R10)
	VBLENDVPS Y3, Y6, Y0, Y0
	VBLENDVPS Y3, Y15, Y1, Y1
	VORPS   Y3, Y2, Y2
	ADDQ    $32, R9
	ADDQ    $32, R10
	DECQ    DX
	JNZ     q3Elem

	VPTEST Y2, Y2
	JZ     q3Done
	DECQ   R11
	JNZ    q3Pass

q3Done:
	// scale = suml2 > 0 ? sumlx/suml2 : 0; all-zero lanes: 0, codes -nmax.
	VMOVUPS   (R8), Y2
	VCMPPS    CMP_GT_OQ, Y13, Y1, Y3
	VDIVPS    Y1, Y0, Y4
	VANDPS    Y3, Y4, Y4
	VANDNPS   Y4, Y2, Y4
	VMOVUPS   Y4, (R8)
	VCVTDQ2PS Y11, Y5
	MOVQ      DI, R10
	MOVQ      CX, DX

q3Zero:
	VMOVUPS   (R10), Y6
	VBLENDVPS Y2, Y5, Y6, Y6
	VMOVUPS   Y6, (R10)
	ADDQ      $32, R10
	DECQ      DX
	JNZ       q3Zero
	VZEROUPPER
	RET

// Dword order that undoes VPACKUSDW+VPACKUSWB's per-128-bit-lane interleave.
DATA packPerm<>+0(SB)/4, $0
DATA packPerm<>+4(SB)/4, $4
DATA packPerm<>+8(SB)/4, $1
DATA packPerm<>+12(SB)/4, $5
DATA packPerm<>+16(SB)/4, $2
DATA packPerm<>+20(SB)/4, $6
DATA packPerm<>+24(SB)/4, $3
DATA packPerm<>+28(SB)/4, $7
GLOBL packPerm<>(SB), RODATA|NOPTR, $32

// ROUNDF_BYTE turns the floats in v into the low bytes (in int32 lanes) of
// C's (int8_t)roundf(v) as x86-64 computes it: truncate, step away from
// zero when the exact remainder is at least one half, convert with
// truncation (non-finite values give 0x80000000, whose low byte is 0).
// Y12 = 0.5, Y11 = -0.5, Y10 = 0xff; t1, t2 scratch.
#define ROUNDF_BYTE(v, t1, t2) \
	VROUNDPS   $3, v, t1;              \
	VSUBPS     t1, v, t2;              \
	VCVTTPS2DQ t1, t1;                 \
	VCMPPS     CMP_GE_OQ, Y12, t2, v;  \
	VPSUBD     v, t1, t1;              \
	VCMPPS     CMP_LE_OQ, Y11, t2, t2; \
	VPADDD     t2, t1, t1;             \
	VPAND      Y10, t1, v

// func q8Blocks(y *byte, x *float32, nb int, d *float32)
//
// quantize_row_q8_0_ref on nb blocks of 32: writes the 32 codes of block i
// at y[34*i+2:] and its scale amax/127 to d[i] (the caller writes the fp16
// scales).
TEXT ·q8Blocks(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ nb+16(FP), CX
	MOVQ d+24(FP), R8
	BCAST32($0x7fffffff, Y15, X15)
	BCAST32($0x42fe0000, Y14, X14) // 127.0f
	BCAST32($0x3f800000, Y13, X13) // 1.0f
	BCAST32($0x3f000000, Y12, X12) // 0.5f
	BCAST32($0xbf000000, Y11, X11) // -0.5f
	BCAST32($0x000000ff, Y10, X10)
	VMOVDQU packPerm<>(SB), Y9
	VXORPS  Y8, Y8, Y8
	TESTQ   CX, CX
	JZ      q8Done

q8Loop:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	// amax = max |x| (order does not matter: no NaN, no signed zeros).
	VANDPS     Y15, Y0, Y4
	VANDPS     Y15, Y1, Y5
	VMAXPS     Y5, Y4, Y4
	VANDPS     Y15, Y2, Y5
	VANDPS     Y15, Y3, Y6
	VMAXPS     Y6, Y5, Y5
	VMAXPS     Y5, Y4, Y4
	VPERM2F128 $0x01, Y4, Y4, Y5
	VMAXPS     Y5, Y4, Y4
	VPERMILPS  $0x4e, Y4, Y5
	VMAXPS     Y5, Y4, Y4
	VPERMILPS  $0xb1, Y4, Y5
	VMAXPS     Y5, Y4, Y4
	// d = amax/127; id = d ? 1/d : 0
	VDIVPS     Y14, Y4, Y4
	VMOVSS     X4, (R8)
	VDIVPS     Y4, Y13, Y5
	VCMPPS     CMP_NEQ_UQ, Y8, Y4, Y6
	VANDPS     Y6, Y5, Y5
	VMULPS     Y5, Y0, Y0
	VMULPS     Y5, Y1, Y1
	VMULPS     Y5, Y2, Y2
	VMULPS     Y5, Y3, Y3
	ROUNDF_BYTE(Y0, Y4, Y6)
	ROUNDF_BYTE(Y1, Y4, Y6)
	ROUNDF_BYTE(Y2, Y4, Y6)
	ROUNDF_BYTE(Y3, Y4, Y6)
	VPACKUSDW  Y1, Y0, Y0
	VPACKUSDW  Y3, Y2, Y2
	VPACKUSWB  Y2, Y0, Y0
	VPERMD     Y0, Y9, Y0
	VMOVDQU    Y0, 2(DI)
	ADDQ       $128, SI
	ADDQ       $34, DI
	ADDQ       $4, R8
	DECQ       CX
	JNZ        q8Loop

q8Done:
	VZEROUPPER
	RET

// func absMaxBits(x *float32, n int) uint32
//
// The largest float32 bits of |x[i]| (sign bit cleared) for i < n, n a
// multiple of 32; 0 for n == 0.
TEXT ·absMaxBits(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	BCAST32($0x7fffffff, Y15, X15)
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	SHRQ  $5, CX
	JZ    amDone

amLoop:
	VPAND   0(SI), Y15, Y4
	VPMAXUD Y4, Y0, Y0
	VPAND   32(SI), Y15, Y5
	VPMAXUD Y5, Y1, Y1
	VPAND   64(SI), Y15, Y6
	VPMAXUD Y6, Y2, Y2
	VPAND   96(SI), Y15, Y7
	VPMAXUD Y7, Y3, Y3
	ADDQ    $128, SI
	DECQ    CX
	JNZ     amLoop

amDone:
	VPMAXUD    Y1, Y0, Y0
	VPMAXUD    Y3, Y2, Y2
	VPMAXUD    Y2, Y0, Y0
	VPERM2I128 $0x01, Y0, Y0, Y1
	VPMAXUD    Y1, Y0, Y0
	VPSHUFD    $0x4e, Y0, Y1
	VPMAXUD    Y1, Y0, Y0
	VPSHUFD    $0xb1, Y0, Y1
	VPMAXUD    Y1, Y0, Y0
	VMOVD      X0, AX
	MOVL       AX, ret+16(FP)
	VZEROUPPER
	RET

DATA c31<>+0(SB)/4, $31
GLOBL c31<>(SB), RODATA|NOPTR, $4

#define LOAD_BLOCK \
	VMOVUPS 0(SI), Y0;  \
	VMOVUPS 32(SI), Y1; \
	VMOVUPS 64(SI), Y2; \
	VMOVUPS 96(SI), Y3

// MASK_INDEX sets AX to the index of the first set lane of the 32-lane
// mask m0..m3 (which must have one).
#define MASK_INDEX(m0, m1, m2, m3) \
	VMOVMSKPS m0, AX;  \
	VMOVMSKPS m1, BX;  \
	SHLL      $8, BX;  \
	ORL       BX, AX;  \
	VMOVMSKPS m2, BX;  \
	SHLL      $16, BX; \
	ORL       BX, AX;  \
	VMOVMSKPS m3, BX;  \
	SHLL      $24, BX; \
	ORL       BX, AX;  \
	BSFL      AX, AX

// SIGNED_ABSMAX broadcasts to Y9 the value max of quantize_row_q4_0_ref's
// `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`: the first element
// of largest magnitude, +0 when all are zeros. Uses Y4-Y8; Y14 = 0,
// Y15 = 0x7fffffff.
#define SIGNED_ABSMAX \
	VPAND      Y15, Y0, Y4;  \
	VPAND      Y15, Y1, Y5;  \
	VPAND      Y15, Y2, Y6;  \
	VPAND      Y15, Y3, Y7;  \
	VPMAXUD    Y5, Y4, Y8;   \
	VPMAXUD    Y7, Y6, Y9;   \
	VPMAXUD    Y9, Y8, Y8;   \
	VPERM2I128 $1, Y8, Y8, Y9; \
	VPMAXUD    Y9, Y8, Y8;   \
	VPSHUFD    $0x4e, Y8, Y9; \
	VPMAXUD    Y9, Y8, Y8;   \
	VPSHUFD    $0xb1, Y8, Y9; \
	VPMAXUD    Y9, Y8, Y8;   \
	VPCMPEQD   Y8, Y4, Y4;   \
	VPCMPEQD   Y8, Y5, Y5;   \
	VPCMPEQD   Y8, Y6, Y6;   \
	VPCMPEQD   Y8, Y7, Y7;   \
	MASK_INDEX(Y4, Y5, Y6, Y7); \
	VBROADCASTSS (SI)(AX*4), Y9; \
	VPCMPEQD   Y14, Y8, Y8;  \
	VPANDN     Y9, Y8, Y9

// SCALE_ID: Y9 = Y9 / div (stored to (R8)), Y8 = Y9 ? 1/Y9 : 0.
// Y13 = 1.0f, Y14 = 0.
#define SCALE_ID(div) \
	VDIVPS div, Y9, Y9;           \
	VMOVSS X9, (R8);              \
	VDIVPS Y9, Y13, Y8;           \
	VCMPPS CMP_NEQ_UQ, Y14, Y9, Y4; \
	VANDPS Y4, Y8, Y8

// TRUNC_CODE: v = (int32)(v*Y8 + off) clamped above by hi (C's
// MIN(hi, (int8_t)(x*id + off)) as x86-64 computes it, in the low bits).
#define TRUNC_CODE(v, off, hi) \
	VMULPS     Y8, v, v;  \
	VADDPS     off, v, v; \
	VCVTTPS2DQ v, v;      \
	VPMINSD    hi, v, v

// NIBBLES packs the low nibbles of Y0|Y2<<4 (elements j and j+16, j < 8)
// and Y1|Y3<<4 into the 16 bytes of X0. Y10 = 0xf.
#define NIBBLES \
	VPAND        Y10, Y0, Y0;   \
	VPAND        Y10, Y2, Y2;   \
	VPSLLD       $4, Y2, Y2;    \
	VPOR         Y2, Y0, Y0;    \
	VPAND        Y10, Y1, Y1;   \
	VPAND        Y10, Y3, Y3;   \
	VPSLLD       $4, Y3, Y3;    \
	VPOR         Y3, Y1, Y1;    \
	VPACKUSDW    Y1, Y0, Y0;    \
	VPERMQ       $0xd8, Y0, Y0; \
	VEXTRACTI128 $1, Y0, X1;    \
	VPACKUSWB    X1, X0, X0

// QH_BITS sets AX to bit 4 of the 32 codes in Y0..Y3 (element i -> bit i).
#define QH_BITS \
	VPSLLD $27, Y0, Y4; \
	VPSLLD $27, Y1, Y5; \
	VPSLLD $27, Y2, Y6; \
	VPSLLD $27, Y3, Y7; \
	VMOVMSKPS Y4, AX;   \
	VMOVMSKPS Y5, BX;   \
	SHLL      $8, BX;   \
	ORL       BX, AX;   \
	VMOVMSKPS Y6, BX;   \
	SHLL      $16, BX;  \
	ORL       BX, AX;   \
	VMOVMSKPS Y7, BX;   \
	SHLL      $24, BX;  \
	ORL       BX, AX

#define LEGACY_CONSTS \
	BCAST32($0x7fffffff, Y15, X15); \
	VXORPS Y14, Y14, Y14;           \
	BCAST32($0x3f800000, Y13, X13); \
	BCAST32($0x0000000f, Y10, X10)

// func q40Blocks(y *byte, x *float32, nb int, d *float32)
//
// quantize_row_q4_0_ref on nb blocks: codes to y[18*i+2:], scales to d[i].
TEXT ·q40Blocks(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ nb+16(FP), CX
	MOVQ d+24(FP), R8
	LEGACY_CONSTS
	BCAST32($0xc1000000, Y12, X12) // -8.0f
	BCAST32($0x41080000, Y11, X11) // 8.5f
	TESTQ CX, CX
	JZ    q40Done

q40Loop:
	LOAD_BLOCK
	SIGNED_ABSMAX
	SCALE_ID(Y12)
	TRUNC_CODE(Y0, Y11, Y10)
	TRUNC_CODE(Y1, Y11, Y10)
	TRUNC_CODE(Y2, Y11, Y10)
	TRUNC_CODE(Y3, Y11, Y10)
	NIBBLES
	VMOVDQU X0, 2(DI)
	ADDQ    $128, SI
	ADDQ    $18, DI
	ADDQ    $4, R8
	DECQ    CX
	JNZ     q40Loop

q40Done:
	VZEROUPPER
	RET

// func q50Blocks(y *byte, x *float32, nb int, d *float32)
//
// quantize_row_q5_0_ref on nb blocks: qh and codes to y[22*i+2:], scales
// to d[i].
TEXT ·q50Blocks(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ nb+16(FP), CX
	MOVQ d+24(FP), R8
	LEGACY_CONSTS
	BCAST32($0xc1800000, Y12, X12) // -16.0f
	BCAST32($0x41840000, Y11, X11) // 16.5f
	TESTQ CX, CX
	JZ    q50Done

q50Loop:
	LOAD_BLOCK
	SIGNED_ABSMAX
	SCALE_ID(Y12)
	VPBROADCASTD c31<>(SB), Y9
	TRUNC_CODE(Y0, Y11, Y9)
	TRUNC_CODE(Y1, Y11, Y9)
	TRUNC_CODE(Y2, Y11, Y9)
	TRUNC_CODE(Y3, Y11, Y9)
	QH_BITS
	MOVL    AX, 2(DI)
	NIBBLES
	VMOVDQU X0, 6(DI)
	ADDQ    $128, SI
	ADDQ    $22, DI
	ADDQ    $4, R8
	DECQ    CX
	JNZ     q50Loop

q50Done:
	VZEROUPPER
	RET

// MIN_MAX broadcasts to Y9 the max and to Y12 the min of a block. As
// quantize_row_q4_1_ref finds them (strict comparisons from -FLT_MAX and
// FLT_MAX) the first of equal values wins, which only matters for a zero
// result, +0 or -0: FIRST_ZERO then takes the first zero of the block.
#define MIN_MAX \
	VMINPS     Y1, Y0, Y4;      \
	VMINPS     Y3, Y2, Y5;      \
	VMINPS     Y5, Y4, Y12;     \
	VMAXPS     Y1, Y0, Y4;      \
	VMAXPS     Y3, Y2, Y5;      \
	VMAXPS     Y5, Y4, Y9;      \
	VPERM2F128 $1, Y12, Y12, Y4; \
	VMINPS     Y4, Y12, Y12;    \
	VPERMILPS  $0x4e, Y12, Y4;  \
	VMINPS     Y4, Y12, Y12;    \
	VPERMILPS  $0xb1, Y12, Y4;  \
	VMINPS     Y4, Y12, Y12;    \
	VPERM2F128 $1, Y9, Y9, Y4;  \
	VMAXPS     Y4, Y9, Y9;      \
	VPERMILPS  $0x4e, Y9, Y4;   \
	VMAXPS     Y4, Y9, Y9;      \
	VPERMILPS  $0xb1, Y9, Y4;   \
	VMAXPS     Y4, Y9, Y9

// FIRST_ZERO broadcasts to dst the first element of the block equal to 0.
#define FIRST_ZERO(dst) \
	VCMPPS     CMP_EQ_OQ, Y14, Y0, Y4; \
	VCMPPS     CMP_EQ_OQ, Y14, Y1, Y5; \
	VCMPPS     CMP_EQ_OQ, Y14, Y2, Y6; \
	VCMPPS     CMP_EQ_OQ, Y14, Y3, Y7; \
	MASK_INDEX(Y4, Y5, Y6, Y7);        \
	VBROADCASTSS (SI)(AX*4), dst

// MIN_CODE: v = (int32)((v - min)*Y8 + 0.5f) (Y12 = min, Y11 = 0.5f).
#define MIN_CODE(v) \
	VSUBPS     Y12, v, v; \
	VMULPS     Y8, v, v;  \
	VADDPS     Y11, v, v; \
	VCVTTPS2DQ v, v

// func q41Blocks(y *byte, x *float32, nb int, d, m *float32)
//
// quantize_row_q4_1_ref on nb blocks: codes to y[20*i+4:], scales to d[i],
// mins to m[i].
TEXT ·q41Blocks(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ nb+16(FP), CX
	MOVQ d+24(FP), R8
	MOVQ m+32(FP), R9
	LEGACY_CONSTS
	BCAST32($0x3f000000, Y11, X11) // 0.5f
	TESTQ CX, CX
	JZ    q41Done

q41Loop:
	LOAD_BLOCK
	MIN_MAX
	VUCOMISS X14, X12
	JNE      q41MinOK
	FIRST_ZERO(Y12)

q41MinOK:
	VUCOMISS X14, X9
	JNE      q41MaxOK
	FIRST_ZERO(Y9)

q41MaxOK:
	VMOVSS  X12, (R9)
	VSUBPS  Y12, Y9, Y9
	BCAST32($0x41700000, Y4, X4) // 15.0f
	SCALE_ID(Y4)
	MIN_CODE(Y0)
	MIN_CODE(Y1)
	MIN_CODE(Y2)
	MIN_CODE(Y3)
	VPMINSD Y10, Y0, Y0
	VPMINSD Y10, Y1, Y1
	VPMINSD Y10, Y2, Y2
	VPMINSD Y10, Y3, Y3
	NIBBLES
	VMOVDQU X0, 4(DI)
	ADDQ    $128, SI
	ADDQ    $20, DI
	ADDQ    $4, R8
	ADDQ    $4, R9
	DECQ    CX
	JNZ     q41Loop

q41Done:
	VZEROUPPER
	RET

// func q51Blocks(y *byte, x *float32, nb int, d, m *float32)
//
// quantize_row_q5_1_ref on nb blocks: qh and codes to y[24*i+4:], scales
// to d[i], mins to m[i].
TEXT ·q51Blocks(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ nb+16(FP), CX
	MOVQ d+24(FP), R8
	MOVQ m+32(FP), R9
	LEGACY_CONSTS
	BCAST32($0x3f000000, Y11, X11) // 0.5f
	TESTQ CX, CX
	JZ    q51Done

q51Loop:
	LOAD_BLOCK
	MIN_MAX
	VUCOMISS X14, X12
	JNE      q51MinOK
	FIRST_ZERO(Y12)

q51MinOK:
	VUCOMISS X14, X9
	JNE      q51MaxOK
	FIRST_ZERO(Y9)

q51MaxOK:
	VMOVSS  X12, (R9)
	VSUBPS  Y12, Y9, Y9
	BCAST32($0x41f80000, Y4, X4) // 31.0f
	SCALE_ID(Y4)
	MIN_CODE(Y0)
	MIN_CODE(Y1)
	MIN_CODE(Y2)
	MIN_CODE(Y3)
	QH_BITS
	MOVL    AX, 4(DI)
	NIBBLES
	VMOVDQU X0, 8(DI)
	ADDQ    $128, SI
	ADDQ    $24, DI
	ADDQ    $4, R8
	ADDQ    $4, R9
	DECQ    CX
	JNZ     q51Loop

q51Done:
	VZEROUPPER
	RET
