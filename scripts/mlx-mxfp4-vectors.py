#!/usr/bin/python3
"""Test vectors for quantize/mlx_mxfp4_test.go: mlx.core.quantize(w,
mode="mxfp4") on MLX's CPU, recomputed with numpy from the op graph of
mlx/ops.cpp fp_quantize (ml-explore/mlx @846d1762; no MLX runtime here).

Every op runs in the input dtype: numpy computes float16 ops in float32 and
rounds once, as MLX's CPU does; bfloat16 (which numpy lacks) is emulated by
rounding each float32 result to nearest-even in its top 16 bits. log2 is
numpy's float32 log2, rint is numpy's (half to even), argmin takes the first
minimum. Prints Go literals: dtype, input bits, packed words, scale bytes.

Run with the Debian python (numpy): /usr/bin/python3 scripts/mlx-mxfp4-vectors.py
"""
import numpy as np

def bf16(x):
    x = np.asarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)

def rounder(dt):
    if dt == "BF16":
        return bf16
    if dt == "F16":
        return lambda x: np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)
    return lambda x: np.asarray(x, dtype=np.float32)

LUT = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0.0, -.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)

def quantize(w, dt):
    r = rounder(dt)
    w = r(w).reshape(-1, 32)
    s = r(np.max(np.abs(w), axis=-1, keepdims=True) / np.float32(6))
    with np.errstate(divide="ignore"):
        l = r(np.log2(s))
    k = np.where(s == 0, np.float32(0), r(np.rint(l)))  # astype(int32) then back to T: exact
    p = r(np.power(np.float32(2), k))
    q = r(w / p)
    d = np.abs(r(q[..., None] - r(LUT)))
    codes = np.argmin(d, axis=-1).astype(np.uint32)  # first minimum
    words = (codes.reshape(-1, 4, 8) << (4 * np.arange(8, dtype=np.uint32))).sum(-1).astype(np.uint32)
    scales = (r(k + 127)).astype(np.int32).astype(np.uint8)
    return w.reshape(-1), words.reshape(-1), scales.reshape(-1)

rng = np.random.default_rng(11)
cases = []
# bf16: random groups across magnitudes, plus crafted ones
g = (rng.standard_normal(32 * 6) * np.repeat([1e-3, 0.02, 0.5, 3.0, 1e5, 1e-30], 32)).astype(np.float32)
cases.append(("BF16", g))
# amax/6 whose log2 lies just below k+0.5: rounding log2 to bfloat16 lands on
# k+0.5 and rint goes to even (mantissa 1.4140625 = 181/128).
cr = []
for k in (-7, -8, -3, 2):
    grp = np.zeros(32, dtype=np.float32)
    grp[0] = np.float32(181 / 128 * 2.0 ** k * 6)
    grp[1:] = np.linspace(-1, 1, 31, dtype=np.float32) * grp[0]
    cr.append(grp)
# ties between grid points with scale 1: amax 6 -> s = 1, k = 0
t = np.array([6, .25, -.25, .75, -.75, 1.25, 1.75, 2.5, 3.5, 5, -5, -3.5, -2.5, -1.75, -1.25, 0,
              -0.0, 0.1, -0.1, 7, -7, 8.5, 4.5, 5.5, 2.25, 2.75, 0.5, 1, 1.5, 2, 3, 4], dtype=np.float32)
cr.append(t)
cr.append(np.zeros(32, dtype=np.float32))
cases.append(("BF16", np.concatenate(cr)))
cases.append(("F16", (rng.standard_normal(32 * 4) * np.repeat([1e-6, 0.01, 1.0, 1000.0], 32)).astype(np.float32)))
cases.append(("F16", np.concatenate(cr[:4] + [t])))
cases.append(("F32", (rng.standard_normal(32 * 4) * np.repeat([1e-38, 0.01, 1.0, 1e30], 32)).astype(np.float32)))
# float32 amax/6 of 2^(k+0.5) nearest: log2 rounds to exactly k+0.5 in float32
f = np.zeros(32, dtype=np.float32)
f[0] = np.float32(np.float32(1.41421353816986083984375) * np.float32(2.0 ** -10)) * np.float32(6)
f[1:] = np.linspace(-1, 1, 31, dtype=np.float32) * f[0]
cases.append(("F32", np.concatenate([f, t])))

for dt, w in cases:
    w, words, scales = quantize(w, dt)
    print("{dtype.%s," % dt)
    print(" []uint32{" + ", ".join("0x%08x" % v for v in w.view(np.uint32)) + "},")
    print(" []uint32{" + ", ".join("0x%08x" % v for v in words) + "},")
    print(" []byte{" + ", ".join("%d" % v for v in scales) + "}},")
