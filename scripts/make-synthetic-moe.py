#!/usr/bin/env python3
"""Write a synthetic Mixtral-shaped HF checkpoint (random bf16 weights, the
published per-expert layout) for measuring conversion memory and speed on
MoE models: scripts/bench-moe-convert.sh. Python standard library + numpy.

  python3 scripts/make-synthetic-moe.py OUTDIR [LAYERS HIDDEN FFN EXPERTS]

The tokenizer files are testdata/arch/mixtral-tiny's (vocabulary 4096).
Tensors are written one at a time, so memory stays at one tensor.
"""
import json, os, shutil, struct, sys
import numpy as np

out = sys.argv[1]
L, H, F, E = (int(x) for x in (sys.argv[2:6] if len(sys.argv) >= 6 else (8, 1024, 2816, 8)))
V, heads, kv = 4096, 16, 8
src = os.path.join(os.path.dirname(__file__), "..", "testdata", "arch", "mixtral-tiny")
os.makedirs(out, exist_ok=True)
for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "generation_config.json"):
    shutil.copy(os.path.join(src, f), out)
cfg = json.load(open(os.path.join(src, "config.json")))
cfg.update(hidden_size=H, intermediate_size=F, num_hidden_layers=L, num_local_experts=E,
           num_attention_heads=heads, num_key_value_heads=kv)
json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)

shapes = [("model.embed_tokens.weight", (V, H)), ("lm_head.weight", (V, H)), ("model.norm.weight", (H,))]
hd = H // heads
for l in range(L):
    p = f"model.layers.{l}."
    shapes += [(p + "input_layernorm.weight", (H,)), (p + "post_attention_layernorm.weight", (H,)),
               (p + "self_attn.q_proj.weight", (H, H)), (p + "self_attn.k_proj.weight", (kv * hd, H)),
               (p + "self_attn.v_proj.weight", (kv * hd, H)), (p + "self_attn.o_proj.weight", (H, H)),
               (p + "block_sparse_moe.gate.weight", (E, H))]
    for e in range(E):
        q = p + f"block_sparse_moe.experts.{e}."
        shapes += [(q + "w1.weight", (F, H)), (q + "w2.weight", (H, F)), (q + "w3.weight", (F, H))]

header, off = {"__metadata__": {"format": "pt"}}, 0
for name, shape in shapes:
    n = 2 * int(np.prod(shape))
    header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
    off += n
hb = json.dumps(header, separators=(",", ":")).encode()
hb += b" " * (-len(hb) % 8)
rng = np.random.default_rng(1)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hb)))
    f.write(hb)
    for name, shape in shapes:
        if name.endswith("norm.weight"):
            a = np.ones(shape, np.float32)
        else:
            a = (rng.standard_normal(shape, dtype=np.float32) * 0.02)
        f.write((a.view(np.uint32) >> 16).astype("<u2").tobytes())
print(f"{out}: {off / 1e9:.2f} GB of bf16 weights, {len(shapes)} tensors")
