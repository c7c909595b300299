#!/usr/bin/env python3
"""Reference values for convert's llama3 rope_freqs.weight (provenance record).

Runs the statements of llama.cpp's convert_hf_to_gguf LlamaModel.
generate_extra_tensors (conversion/llama.py at 34af94cd) for a grid of
rope configurations in real PyTorch on the CPU, and the bare
`base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)` for many
bases, and prints them as JSON (float32 values as hex bit patterns).

Usage (on a machine with torch): python3 scripts/torch-rope-freqs.py > convert/testdata/torch_rope_freqs.json
"""

import json
import math
import platform
import random

import torch


def rope_factors(base, dim, factor, low_freq_factor, high_freq_factor, old_context_len):
    # conversion/llama.py LlamaModel.generate_extra_tensors, verbatim arithmetic
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    rope_factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            rope_factors.append(1)
        elif wavelen > low_freq_wavelen:
            rope_factors.append(factor)
        else:
            smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            rope_factors.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(rope_factors, dtype=torch.float32)


def bits(t):
    return ["%08x" % v for v in t.contiguous().view(torch.int32).tolist()]


def fix(v):
    return v & 0xffffffff


rng = random.Random(20261126)
configs = [
    # Llama 3.1 8B/70B/405B, Llama 3.2 1B and 3B, the testdata/unseen fixture
    (500000.0, 128, 8.0, 1.0, 4.0, 8192),
    (500000.0, 64, 32.0, 1.0, 4.0, 8192),
    (500000.0, 128, 32.0, 1.0, 4.0, 8192),
    (500000.0, 64, 8.0, 1.0, 4.0, 64),
    (10000, 128, 8, 1, 4, 8192),
]
for _ in range(70):
    base = rng.choice([10000.0, 10000, 100000.0, 500000.0, 1000000.0, 2500000.0, 123456.7, 50000.0])
    dim = rng.choice([16, 32, 40, 48, 64, 80, 96, 100, 128, 160, 192, 256])
    factor = rng.choice([8.0, 16.0, 32.0, 2.5, 4, 40.0])
    low, high = rng.choice([(1.0, 4.0), (1.0, 2.0), (0.5, 3.0), (2.0, 8.0), (1, 4), (1.0, 3.0)])
    orig = rng.choice([8192, 4096, 64, 128, 256, 1000, 3000, 32, 512.0, 100])
    configs.append((base, dim, factor, low, high, orig))

out = {
    "torch": torch.__version__,
    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    "machine": platform.machine(),
    "rope": [],
    "pow": [],
}
for base, dim, factor, low, high, orig in configs:
    out["rope"].append({
        "base": base, "dim": dim, "factor": factor, "low": low, "high": high, "orig": orig,
        "factors": bits(rope_factors(base, dim, factor, low, high, orig)),
    })
for _ in range(120):
    base = rng.choice([rng.uniform(2, 1e7), float(rng.randint(2, 10**7)), 10000.0, 500000.0])
    dim = rng.choice([64, 96, 128, 200])
    p = base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    out["pow"].append({"base": base, "dim": dim, "pow": bits(p)})
print(json.dumps(out, indent=0))
