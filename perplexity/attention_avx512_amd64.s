//go:build amd64 && !purego

#include "textflag.h"
#include "simd_amd64.h"

// AVX-512 kernels of the tiled flash attention (attention_ggml.go) and of
// ggml_vec_swiglu_f32: ggml_v_expf on 16 lanes, as ggml's AVX-512 build
// computes it (vec.h), and the steps around it.

// EXPCONSTS loads the constants of VEXPF: Z16 log2(e), Z17 0x1.8p23,
// Z18/Z19 ln 2 in two parts, Z20 the magnitude mask, Z21 192, Z22..Z26 the
// polynomial, Z27 1, Z28 +Inf, Z29 0. Uses AX.
#define EXPCONSTS \
	BCASTDZ($0x3fb8aa3b, AX, Z16); \
	BCASTDZ($0x4b400000, AX, Z17); \
	BCASTDZ($0x3f317200, AX, Z18); \
	BCASTDZ($0x35bfbe8e, AX, Z19); \
	BCASTDZ($0x7fffffff, AX, Z20); \
	BCASTDZ($0x43400000, AX, Z21); \
	BCASTDZ($0x3c072010, AX, Z22); \
	BCASTDZ($0x3d2b9f17, AX, Z23); \
	BCASTDZ($0x3e2aaf33, AX, Z24); \
	BCASTDZ($0x3efffedb, AX, Z25); \
	BCASTDZ($0x3f7ffff6, AX, Z26); \
	BCASTDZ($0x3f800000, AX, Z27); \
	BCASTDZ($0x7f800000, AX, Z28); \
	VPXORD Z29, Z29, Z29

// VEXPF replaces xr with ggml_v_expf(xr) (vexpf on each lane), using
// nr, br, ur, tr, wr, K1 and K2:
//
//	n = (x·log2e + 0x1.8p23) − 0x1.8p23
//	b = x − n·ln2hi − n·ln2lo (two fused negated multiply-adds)
//	j = ((p5·b + p4)·u + (p3·b + p2))·u + (p1·b + 1), u = b·b
//	x = j·2^n (VSCALEFPS), or where |n| > 192 or n is NaN: +Inf if n > 0, else 0
//
// The NaN case follows vexpf (0); ggml's mask is ordered (NaN).
#define VEXPF(xr, nr, br, ur, tr, wr) \
	VMOVAPS      Z17, nr; \
	VFMADD231PS  Z16, xr, nr; \
	VSUBPS       Z17, nr, nr; \
	VMOVAPS      xr, br; \
	VFNMADD231PS Z18, nr, br; \
	VFNMADD231PS Z19, nr, br; \
	VPANDD       Z20, nr, ur; \
	VCMPPS       $0x16, Z21, ur, K1; \
	VCMPPS       $0x1e, Z29, nr, K2; \
	VMULPS       br, br, ur; \
	VMOVAPS      Z23, tr; \
	VFMADD231PS  Z22, br, tr; \
	VMOVAPS      Z25, wr; \
	VFMADD231PS  Z24, br, wr; \
	VFMADD213PS  wr, ur, tr; \
	VMOVAPS      Z27, wr; \
	VFMADD231PS  Z26, br, wr; \
	VFMADD213PS  wr, ur, tr; \
	VSCALEFPS    nr, tr, xr; \
	VMOVAPS      Z29, tr; \
	VMOVAPS      Z28, K2, tr; \
	VMOVAPS      tr, K1, xr

// func faScores1x512(q, kt *float32, d int, s *float32)
//
// s[j] = fma-chain over i < d of q[i]·kt[i·64+j] (in order of i, from 0)
// for the 64 keys j of a flash-attention tile (kt: the tile transposed;
// d > 0).
TEXT ·faScores1x512(SB), NOSPLIT, $0-32
	MOVQ   q+0(FP), SI
	MOVQ   kt+8(FP), DI
	MOVQ   d+16(FP), CX
	MOVQ   s+24(FP), BX
	ZEROZ4(Z0, Z1, Z2, Z3)

loopsc1:
	VBROADCASTSS (SI), Z8
	VFMADD231PS  (DI), Z8, Z0
	VFMADD231PS  64(DI), Z8, Z1
	VFMADD231PS  128(DI), Z8, Z2
	VFMADD231PS  192(DI), Z8, Z3
	ADDQ         $4, SI
	ADDQ         $256, DI
	DECQ         CX
	JNZ          loopsc1
	STOREZ4(Z0, Z1, Z2, Z3, 0(BX))
	VZEROUPPER
	RET

// func faScores4x512(q *float32, ldq int, kt *float32, d int, s *float32)
//
// faScores1x512 for four query rows (q, q+ldq, q+2·ldq, q+3·ldq) into
// s, s+64, s+128, s+192, sharing the loads of the key tile.
TEXT ·faScores4x512(SB), NOSPLIT, $0-40
	MOVQ   q+0(FP), SI
	MOVQ   ldq+8(FP), R11
	MOVQ   kt+16(FP), DI
	MOVQ   d+24(FP), CX
	MOVQ   s+32(FP), BX
	SHLQ   $2, R11
	LEAQ   (R11)(R11*2), R12
	ZEROZ4(Z0, Z1, Z2, Z3)
	ZEROZ4(Z4, Z5, Z6, Z7)
	ZEROZ4(Z8, Z9, Z10, Z11)
	ZEROZ4(Z12, Z13, Z14, Z15)

loopsc4:
	LOADZ4(0(DI), Z16, Z17, Z18, Z19)
	VBROADCASTSS (SI), Z20
	VBROADCASTSS (SI)(R11*1), Z21
	VBROADCASTSS (SI)(R11*2), Z22
	VBROADCASTSS (SI)(R12*1), Z23
	FMA4(Z20, Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)
	FMA4(Z21, Z16, Z17, Z18, Z19, Z4, Z5, Z6, Z7)
	FMA4(Z22, Z16, Z17, Z18, Z19, Z8, Z9, Z10, Z11)
	FMA4(Z23, Z16, Z17, Z18, Z19, Z12, Z13, Z14, Z15)
	ADDQ         $4, SI
	ADDQ         $256, DI
	DECQ         CX
	JNZ          loopsc4
	STOREZ4(Z0, Z1, Z2, Z3, 0(BX))
	STOREZ4(Z4, Z5, Z6, Z7, 256(BX))
	STOREZ4(Z8, Z9, Z10, Z11, 512(BX))
	STOREZ4(Z12, Z13, Z14, Z15, 768(BX))
	VZEROUPPER
	RET

// func faMaskMax512(p *float32, scale float32, mask uint64) float32
//
// p[j] ×= scale where bit j of mask is set, p[j] = −Inf elsewhere, for
// the 64 scores of a tile; returns the largest p[j] (any sign of a zero
// maximum), or NaN when a p[j] is NaN.
TEXT ·faMaskMax512(SB), NOSPLIT, $0-28
	MOVQ         p+0(FP), BX
	MOVQ         mask+16(FP), DX
	VBROADCASTSS scale+8(FP), Z8
	BCASTDZ($0xff800000, AX, Z4)
	VMOVAPS      Z4, Z5
	VMOVAPS      Z4, Z6
	VMOVAPS      Z4, Z7
	KMOVW        DX, K1
	SHRQ         $16, DX
	KMOVW        DX, K2
	SHRQ         $16, DX
	KMOVW        DX, K3
	SHRQ         $16, DX
	KMOVW        DX, K4
	VMULPS       (BX), Z8, K1, Z4
	VMULPS       64(BX), Z8, K2, Z5
	VMULPS       128(BX), Z8, K3, Z6
	VMULPS       192(BX), Z8, K4, Z7
	STOREZ4(Z4, Z5, Z6, Z7, 0(BX))

	// Any NaN?
	VCMPPS   $3, Z4, Z4, K1
	VCMPPS   $3, Z5, Z5, K2
	VCMPPS   $3, Z6, Z6, K3
	VCMPPS   $3, Z7, Z7, K4
	KORW     K1, K2, K1
	KORW     K3, K4, K3
	KORTESTW K1, K3
	JNZ      nan

	VMAXPS        Z5, Z4, Z4
	VMAXPS        Z7, Z6, Z6
	VMAXPS        Z6, Z4, Z4
	VEXTRACTF64X4 $1, Z4, Y5
	VMAXPS        Y5, Y4, Y4
	VEXTRACTF128  $1, Y4, X5
	VMAXPS        X5, X4, X4
	VMOVHLPS      X4, X4, X5
	VMAXPS        X5, X4, X4
	VMOVSHDUP     X4, X5
	VMAXSS        X5, X4, X4
	VMOVSS        X4, ret+24(FP)
	VZEROUPPER
	RET

nan:
	MOVL $0x7fc00000, AX
	MOVL AX, ret+24(FP)
	VZEROUPPER
	RET

// func faExpSum512(p *float32, m float32) float64
//
// p[j] = vexpf(p[j] − m) for the 64 lanes of a tile, and returns the sum
// of reduce16 of each group of 16, in order, in float64.
TEXT ·faExpSum512(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	EXPCONSTS
	VBROADCASTSS m+8(FP), Z15
	LOADZ4(0(SI), Z0, Z1, Z2, Z3)
	VSUBPS  Z15, Z0, Z0
	VSUBPS  Z15, Z1, Z1
	VSUBPS  Z15, Z2, Z2
	VSUBPS  Z15, Z3, Z3
	VEXPF(Z0, Z4, Z5, Z6, Z7, Z8)
	VEXPF(Z1, Z9, Z10, Z11, Z12, Z13)
	VMOVUPS Z0, (SI)
	VMOVUPS Z1, 64(SI)
	VEXPF(Z2, Z4, Z5, Z6, Z7, Z8)
	VEXPF(Z3, Z9, Z10, Z11, Z12, Z13)
	VMOVUPS Z2, 128(SI)
	VMOVUPS Z3, 192(SI)
	REDUCE16(Z0, Y0, X0, Y4, X4)
	REDUCE16(Z1, Y1, X1, Y5, X5)
	REDUCE16(Z2, Y2, X2, Y6, X6)
	REDUCE16(Z3, Y3, X3, Y7, X7)
	VCVTSS2SD X0, X0, X0
	VCVTSS2SD X1, X1, X1
	VCVTSS2SD X2, X2, X2
	VCVTSS2SD X3, X3, X3
	VXORPD    X8, X8, X8
	VADDSD    X0, X8, X8
	VADDSD    X1, X8, X8
	VADDSD    X2, X8, X8
	VADDSD    X3, X8, X8
	VMOVSD    X8, ret+16(FP)
	VZEROUPPER
	RET

// func faPV512(p *float32, v *float32, ldv, n, d int, out *float32)
//
// out[i] = fma(p[j], v[j·ldv+i], out[i]) for j < n in order, i < d (d a
// positive multiple of 16, n >= 1), keeping 64 (then 16) outputs in
// registers across the keys.
TEXT ·faPV512(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ ldv+16(FP), R8
	MOVQ n+24(FP), R10
	MOVQ d+32(FP), R9
	MOVQ out+40(FP), BX
	SHLQ $2, R8

pv64:
	CMPQ    R9, $64
	JLT     pv16
	LOADZ4(0(BX), Z0, Z1, Z2, Z3)
	MOVQ    SI, AX
	MOVQ    DI, DX
	MOVQ    R10, CX

pv64j:
	VBROADCASTSS (AX), Z8
	VFMADD231PS  (DX), Z8, Z0
	VFMADD231PS  64(DX), Z8, Z1
	VFMADD231PS  128(DX), Z8, Z2
	VFMADD231PS  192(DX), Z8, Z3
	ADDQ         $4, AX
	ADDQ         R8, DX
	DECQ         CX
	JNZ          pv64j
	STOREZ4(Z0, Z1, Z2, Z3, 0(BX))
	ADDQ         $256, BX
	ADDQ         $256, DI
	SUBQ         $64, R9
	JMP          pv64

pv16:
	CMPQ    R9, $16
	JLT     pvdone
	VMOVUPS (BX), Z0
	MOVQ    SI, AX
	MOVQ    DI, DX
	MOVQ    R10, CX

pv16j:
	VBROADCASTSS (AX), Z8
	VFMADD231PS  (DX), Z8, Z0
	ADDQ         $4, AX
	ADDQ         R8, DX
	DECQ         CX
	JNZ          pv16j
	VMOVUPS      Z0, (BX)
	ADDQ         $64, BX
	ADDQ         $64, DI
	SUBQ         $16, R9
	JMP          pv16

pvdone:
	VZEROUPPER
	RET

// func faPV4x512(p *float32, v *float32, ldv, n, d int, out *float32, ldo int)
//
// faPV512 for four rows: out+r·ldo gets the chain of p[r·64+j] (r < 4),
// sharing the loads of v; 64 outputs of each row (then 16) stay in
// registers across the keys.
TEXT ·faPV4x512(SB), NOSPLIT, $0-56
	MOVQ p+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ ldv+16(FP), R8
	MOVQ n+24(FP), R10
	MOVQ d+32(FP), R9
	MOVQ out+40(FP), BX
	MOVQ ldo+48(FP), R11
	SHLQ $2, R8
	SHLQ $2, R11
	LEAQ (R11)(R11*2), R12

pv4x64:
	CMPQ    R9, $64
	JLT     pv4x16
	LOADZ4(0(BX), Z0, Z1, Z2, Z3)
	LOADZ4(0(BX)(R11*1), Z4, Z5, Z6, Z7)
	LOADZ4(0(BX)(R11*2), Z8, Z9, Z10, Z11)
	LOADZ4(0(BX)(R12*1), Z12, Z13, Z14, Z15)
	MOVQ    SI, AX
	MOVQ    DI, DX
	MOVQ    R10, CX

pv4x64j:
	LOADZ4(0(DX), Z16, Z17, Z18, Z19)
	VBROADCASTSS (AX), Z20
	VBROADCASTSS 256(AX), Z21
	VBROADCASTSS 512(AX), Z22
	VBROADCASTSS 768(AX), Z23
	FMA4(Z20, Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)
	FMA4(Z21, Z16, Z17, Z18, Z19, Z4, Z5, Z6, Z7)
	FMA4(Z22, Z16, Z17, Z18, Z19, Z8, Z9, Z10, Z11)
	FMA4(Z23, Z16, Z17, Z18, Z19, Z12, Z13, Z14, Z15)
	ADDQ         $4, AX
	ADDQ         R8, DX
	DECQ         CX
	JNZ          pv4x64j
	STOREZ4(Z0, Z1, Z2, Z3, 0(BX))
	STOREZ4(Z4, Z5, Z6, Z7, 0(BX)(R11*1))
	STOREZ4(Z8, Z9, Z10, Z11, 0(BX)(R11*2))
	STOREZ4(Z12, Z13, Z14, Z15, 0(BX)(R12*1))
	ADDQ         $256, BX
	ADDQ         $256, DI
	SUBQ         $64, R9
	JMP          pv4x64

pv4x16:
	CMPQ    R9, $16
	JLT     pv4done
	VMOVUPS (BX), Z0
	VMOVUPS (BX)(R11*1), Z4
	VMOVUPS (BX)(R11*2), Z8
	VMOVUPS (BX)(R12*1), Z12
	MOVQ    SI, AX
	MOVQ    DI, DX
	MOVQ    R10, CX

pv4x16j:
	VMOVUPS      (DX), Z16
	VBROADCASTSS (AX), Z20
	VBROADCASTSS 256(AX), Z21
	VBROADCASTSS 512(AX), Z22
	VBROADCASTSS 768(AX), Z23
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z16, Z21, Z4
	VFMADD231PS  Z16, Z22, Z8
	VFMADD231PS  Z16, Z23, Z12
	ADDQ         $4, AX
	ADDQ         R8, DX
	DECQ         CX
	JNZ          pv4x16j
	VMOVUPS      Z0, (BX)
	VMOVUPS      Z4, (BX)(R11*1)
	VMOVUPS      Z8, (BX)(R11*2)
	VMOVUPS      Z12, (BX)(R12*1)
	ADDQ         $64, BX
	ADDQ         $64, DI
	SUBQ         $16, R9
	JMP          pv4x16

pv4done:
	VZEROUPPER
	RET

// func swiglu512(gp, u *float32, n int)
//
// g[i] = g[i] / (1 + vexpf(0 − g[i])) × u[i] for n a positive multiple of
// 16 (ggml_vec_swiglu_f32 with ggml_v_silu).
TEXT ·swiglu512(SB), NOSPLIT, $0-24
	MOVQ gp+0(FP), SI
	MOVQ u+8(FP), DI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	EXPCONSTS

loopsw:
	VMOVUPS (SI), Z0
	VSUBPS  Z0, Z29, Z1
	VEXPF(Z1, Z4, Z5, Z6, Z7, Z8)
	VADDPS  Z1, Z27, Z1
	VDIVPS  Z1, Z0, Z0
	VMULPS  (DI), Z0, Z0
	VMOVUPS Z0, (SI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     loopsw
	VZEROUPPER
	RET

// func ocMadF16(acc, v *float32, s float32, n int)
//
// acc[d] = fp16(v[d]·s + acc[d]) (one rounding to float32, then to fp16
// with round-to-nearest-even, held as float32) for d < n, n a positive
// multiple of 16: ggml_vec_mad_f16's vector step.
TEXT ·ocMadF16(SB), NOSPLIT, $0-32
	MOVQ         acc+0(FP), DI
	MOVQ         v+8(FP), SI
	VBROADCASTSS s+16(FP), Z1
	MOVQ         n+24(FP), CX
	SHRQ         $4, CX

loopmad:
	VMOVUPS     (DI), Z0
	VFMADD231PS (SI), Z1, Z0
	VCVTPS2PH   $0, Z0, Y2
	VCVTPH2PS   Y2, Z0
	VMOVUPS     Z0, (DI)
	ADDQ        $64, DI
	ADDQ        $64, SI
	DECQ        CX
	JNZ         loopmad
	VZEROUPPER
	RET

// func ocScaleF16(acc *float32, s float32, n int)
//
// acc[d] = fp16(acc[d]·s) for d < n, n a positive multiple of 16:
// ggml_vec_scale_f16's vector step.
TEXT ·ocScaleF16(SB), NOSPLIT, $0-24
	MOVQ         acc+0(FP), DI
	VBROADCASTSS s+8(FP), Z1
	MOVQ         n+16(FP), CX
	SHRQ         $4, CX

loopscale:
	VMULPS    (DI), Z1, Z0
	VCVTPS2PH $0, Z0, Y2
	VCVTPH2PS Y2, Z0
	VMOVUPS   Z0, (DI)
	ADDQ      $64, DI
	DECQ      CX
	JNZ       loopscale
	VZEROUPPER
	RET
