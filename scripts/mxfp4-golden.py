#!/usr/bin/env python3
"""Prints golden MXFP4 blocks for quantize/ggml_mxfp4_test.go: the bytes
llama.cpp's own quantize_row_mxfp4_ref (libggml-base.so of the reference
build, ~/llama.cpp/build/bin) writes for a few crafted 32-value blocks, each
given as float32 bit patterns."""
import ctypes, os, struct

lib = ctypes.CDLL(os.path.expanduser("~/llama.cpp/build/bin/libggml-base.so"))
lib.quantize_row_mxfp4_ref.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]

def f32(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]

def quant(bits):
    src = (ctypes.c_uint32 * 32)(*bits)
    dst = (ctypes.c_uint8 * 17)()
    lib.quantize_row_mxfp4_ref(ctypes.addressof(src), ctypes.addressof(dst), 32)
    return bytes(dst)

blocks = {
    "ties at amax 6": [f32(v) for v in [6, 0.25, -0.25, -0.75, 5, 2.5, -6, 0.75, 1.25, 1.75, 3.5, -5, -3.5, -2.5, -1.75, -1.25]
                       + [0.0, -0.0, 0.1, -0.1, 0.5, 1, 1.5, 2, 3, 4, -0.5, -1, -1.5, -2, -3, -4]],
    "zero": [0] * 32,
    "amax just below 1": [0x3F7FFFFF] + [f32(-0.3)] * 31,
    "amax 1024-ulp (log2f rounds up to 10)": [0x447FFFFF] + [f32(100.0 + i) for i in range(31)],
    "amax 2^-130 (exponent wraps)": [0x00080000] + [0] * 30 + [0x80040000],
    "large": [f32(3e38)] + [f32(-1e37 * i) for i in range(31)],
    "gaussian-ish": [f32(((i * 37) % 23 - 11) * 0.0137) for i in range(32)],
}
for name, bits in blocks.items():
    print("//", name)
    print("{" + ", ".join("0x%08x" % b for b in bits) + "},")
    print("{" + ", ".join("0x%02x" % b for b in quant(bits)) + "},")
