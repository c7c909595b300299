#!/usr/bin/env python3
"""Generates perplexity/matmul_f16_avx512_amd64.s: the AVX-512 kernels that
multiply F16 and BF16 weight rows (as stored in the model file) by F16/BF16
activation rows in llamafile tinyBLAS's per-element order.

    python3 scripts/gen-matmul-f16-asm.py > perplexity/matmul_f16_avx512_amd64.s

Go's assembler has no AVX512_BF16 mnemonics, so VDPBF16PS is emitted as
bytes; the EVEX encoding is computed here (Intel SDM vol. 2: VDPBF16PS
zmm1, zmm2, zmm3/m512 is EVEX.512.F3.0F38.W0 52 /r). The reductions,
zeroing and stores are the macros of perplexity/simd_amd64.h.
"""

import sys

NT = 6  # tokens per call of the wide kernels
NR = 4  # weight rows per call: the FMA4, ZEROZ4, STORE4SS of simd_amd64.h
assert NR == 4

out = []


def emit(s=""):
    out.append(s)


def vdpbf16ps(dst, src1, src2):
    """The bytes of VDPBF16PS zmm<dst>, zmm<src1>, zmm<src2> (Intel order:
    dst.fp32[i] += src1.bf16[2i+1]·src2.bf16[2i+1], then
    += src1.bf16[2i]·src2.bf16[2i])."""
    r, rp = (dst >> 3) & 1, (dst >> 4) & 1
    b, x = (src2 >> 3) & 1, (src2 >> 4) & 1
    v, vp = src1 & 15, (src1 >> 4) & 1
    p0 = ((1 - r) << 7) | ((1 - x) << 6) | ((1 - b) << 5) | ((1 - rp) << 4) | 0b10  # map 0F38
    p1 = (0 << 7) | ((~v & 15) << 3) | (1 << 2) | 0b10  # W0, vvvv, pp = F3
    p2 = (0b10 << 5) | ((1 - vp) << 3)  # L'L = 512 bits, no masking
    modrm = 0xC0 | ((dst & 7) << 3) | (src2 & 7)
    return [0x62, p0, p1, p2, 0x52, modrm]


def dpbf16_line(dst, act, w):
    bs = vdpbf16ps(dst, act, w)
    return "\tBYTE $0x%02x; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x%02x // VDPBF16PS Z%d, Z%d, Z%d (Intel order)" % (
        *bs, dst, act, w)


def tok_addr(t):
    # SI = token 0, R13 = token 3, R12 = the token stride in bytes.
    base = "SI" if t < 3 else "R13"
    return ["(%s)", "(%s)(R12*1)", "(%s)(R12*2)"][t % 3] % base


def w_addr(r):
    # DI = row 0, R9 = row 1, R8 = the row stride in bytes.
    return ["(DI)", "(DI)(R8*1)", "(DI)(R8*2)", "(R9)(R8*2)"][r]


def kernel(name, bf16, nt):
    step = 64 if bf16 else 32  # bytes of one row consumed per step
    elems = 32 if bf16 else 16
    kind = "bf16" if bf16 else "fp16"
    emit("// func %s(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int)" % name)
    emit("//")
    if bf16:
        emit("// dst[t·ldd + r] = x_t · w_r for %d token row%s x_t = x + t·ldx and four" % (nt, "s"[:nt > 1]))
        emit("// weight rows w_r = w + 2r·ldw (bytes) of bf16 values (k a positive multiple of")
        emit("// 32) in tinyBLAS<32, __m512bh>'s order: VDPBF16PS into 16 lanes over")
        emit("// steps of 32 elements, then _mm512_reduce_add_ps.")
    else:
        emit("// dst[t·ldd + r] = x_t · w_r for %d token row%s x_t = x + t·ldx and four" % (nt, "s"[:nt > 1]))
        emit("// weight rows w_r = w + 2r·ldw (bytes) of fp16 values (k a positive multiple of")
        emit("// 16) in tinyBLAS<16, __m512>'s order: both operands widened by")
        emit("// VCVTPH2PS, 16 lanes accumulating by fused multiply-adds over steps of")
        emit("// 16 elements, then _mm512_reduce_add_ps.")
    emit("TEXT ·%s(SB), NOSPLIT, $0-56" % name)
    emit("\tMOVQ x+0(FP), SI")
    emit("\tMOVQ ldx+8(FP), R12")
    emit("\tMOVQ w+16(FP), DI")
    emit("\tMOVQ ldw+24(FP), R8")
    emit("\tMOVQ k+32(FP), CX")
    emit("\tMOVQ dst+40(FP), BX")
    emit("\tMOVQ ldd+48(FP), DX")
    emit("\tSHLQ $1, R12")
    emit("\tSHLQ $1, R8")
    emit("\tSHLQ $2, DX")
    emit("\tSHRQ $%d, CX" % (5 if bf16 else 4))
    emit("\tLEAQ (DI)(R8*1), R9")
    if nt > 3:
        emit("\tLEAQ (SI)(R12*2), R13")
        emit("\tADDQ R12, R13")
    nacc = nt * NR
    for a in range(0, nacc, 4):
        emit("\tZEROZ4(Z%d, Z%d, Z%d, Z%d)" % (a, a + 1, a + 2, a + 3))
    emit()
    emit("%sloop:" % name)
    for r in range(NR):
        if bf16:
            emit("\tVMOVDQU16 %s, Z%d" % (w_addr(r), 24 + r))
        else:
            emit("\tVCVTPH2PS %s, Z%d" % (w_addr(r), 24 + r))
    for t in range(nt):
        xr = 28 + t % 2
        if bf16:
            emit("\tVMOVDQU16 %s, Z%d" % (tok_addr(t), xr))
        else:
            emit("\tVCVTPH2PS %s, Z%d" % (tok_addr(t), xr))
        if bf16:
            for r in range(NR):
                # Lane j adds w[2j+1]·x[2j+1], then w[2j]·x[2j]: the
                # products are exact, so the operand order is immaterial.
                emit(dpbf16_line(t * NR + r, 24 + r, xr))
        else:
            emit("\tFMA4(Z%d, Z24, Z25, Z26, Z27, Z%d, Z%d, Z%d, Z%d)" % (
                xr, t * NR, t * NR + 1, t * NR + 2, t * NR + 3))
    emit("\tADDQ $%d, SI" % step)
    emit("\tADDQ $%d, DI" % step)
    emit("\tADDQ $%d, R9" % step)
    if nt > 3:
        emit("\tADDQ $%d, R13" % step)
    emit("\tDECQ CX")
    emit("\tJNZ  %sloop" % name)
    emit()
    for a in range(nacc):
        emit("\tREDUCE16(Z%d, Y%d, X%d, Y30, X30)" % (a, a, a))
    for t in range(nt):
        if t > 0:
            emit("\tADDQ   DX, BX")
        a = t * NR
        emit("\tSTORE4SS(X%d, X%d, X%d, X%d, BX)" % (a, a + 1, a + 2, a + 3))
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


emit("// Code generated by scripts/gen-matmul-f16-asm.py; DO NOT EDIT.")
emit()
emit("//go:build amd64 && !purego")
emit()
emit('#include "textflag.h"')
emit('#include "simd_amd64.h"')
emit()
for bf16, suffix in ((False, "h"), (True, "bf")):
    for nt in (NT, NT - 1, 1):
        kernel("dot4x%d%s" % (nt, suffix), bf16, nt)

emit("""// func f32ToF16AVX(dst *uint16, src *float32, n int)
//
// dst[i] = fp16(src[i]) rounding to nearest even (VCVTPS2PH; n a positive
// multiple of 16).
TEXT ·f32ToF16AVX(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX

f32ToF16loop:
	VMOVUPS   (SI), Z0
	VCVTPS2PH $0, Z0, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       f32ToF16loop
	VZEROUPPER
	RET""")

sys.stdout.write("\n".join(out) + "\n")
