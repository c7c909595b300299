#!/usr/bin/env python3
"""Assemble testdata/unseen/reference.json (Python standard library only).

Inputs, for each fixture NAME (qwen2-bpe-tied, llama3-bpe-tied):
  testdata/unseen/hf_reference.json      transformers figures (make-unseen-fixtures.py)
  WORK/NAME.TYPE.gguf                    the converter's bf16/f16 files and
                                         llama-quantize's outputs
  WORK/NAME.TYPE.ppl.txt                 llama-perplexity's output for that file
  WORK/NAME.tokenize.txt                 llama-tokenize --ids output on kjv_eval.txt

Usage: python3 scripts/unseen-reference.py WORK
(see testdata/unseen/README.md for the commands that made WORK).
"""

import hashlib
import json
import os
import re
import struct
import sys

NAMES = ["qwen2-bpe-tied", "llama3-bpe-tied"]
TYPES = ["bf16", "f16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"]

# ggml type ids -> names (ggml.h at the reference commit).
GGML_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
              10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 30: "BF16"}


def gguf_tensors(path):
    """Tensor name, type, shape (outermost first) and sha256 of its bytes."""
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    sizes = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(sizes[t])

    assert data[:4] == b"GGUF", path
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    assert version == 3
    align = 32
    for _ in range(n_kv):
        k = string()
        v = value(take("I"))
        if k == "general.alignment":
            align = v
    infos = []
    for _ in range(n_tensors):
        name = string()
        nd = take("I")
        ne = [take("Q") for _ in range(nd)]
        typ = take("I")
        off = take("Q")
        infos.append((name, ne, typ, off))
    data_start = (pos + align - 1) // align * align
    out = []
    for name, ne, typ, off in infos:
        size = tensor_size(ne, typ)
        assert data_start + off + size <= len(data), (name, off, size)
        b = data[data_start + off:data_start + off + size]
        out.append({"name": name, "type": GGML_TYPES[typ], "shape": list(reversed(ne)),
                    "sha256": hashlib.sha256(b).hexdigest()})
    return out


BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
         10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210)}


def tensor_size(ne, typ):
    bs, bb = BLOCK[typ]
    n = 1
    for d in ne:
        n *= d
    assert ne[0] % bs == 0
    return n // bs * bb


def file_entry(path):
    b = open(path, "rb").read()
    return {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b), "tensors": gguf_tensors(path)}


def parse_ppl(path):
    txt = open(path, encoding="utf-8", errors="replace").read()
    running = [float(v) for v in re.findall(r"\[\d+\](\d+\.\d+),", txt)]
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", txt)
    if not m:
        raise SystemExit(f"{path}: no final estimate")
    return {"ppl": float(m.group(1)), "stderr": float(m.group(2)), "running": running}


def main(work):
    hfref = json.load(open("testdata/unseen/hf_reference.json"))
    ref = {
        "about": "see README.md; transformers figures from scripts/make-unseen-fixtures.py, "
                 "GGUF files and figures from llama.cpp 34af94cd9ab277632e27caeec2d41de2fd091b31",
        "versions": hfref["versions"],
        "llama_cpp_commit": "34af94cd9ab277632e27caeec2d41de2fd091b31",
        "models": {},
    }
    for name in NAMES:
        h = hfref[name]
        m = {"n_tokens": h["n_tokens"], "add_bos": h["add_bos"], "bos": h["bos"] if h["bos"] is not None else -1,
             "transformers_fp32": {}, "gguf": {}}
        for ctx in (128, 256):
            p = h[f"ppl_ctx{ctx}"]
            m["transformers_fp32"][f"ctx{ctx}"] = {"ppl": p["ppl"], "chunks": p["chunks"],
                                                  "scored": p["scored_tokens"], "running": p["running"]}
        for typ in TYPES:
            path = os.path.join(work, f"{name}.{typ}.gguf")
            if typ == "bf16":
                path = f"testdata/unseen/{name}.bf16.gguf"
            if not os.path.exists(path):
                continue
            e = file_entry(path)
            pp = os.path.join(work, f"{name}.{typ}.ppl.txt")
            if os.path.exists(pp):
                e["llama_perplexity_ctx128"] = parse_ppl(pp)
            m["gguf"][typ] = e
        tk = os.path.join(work, f"{name}.tokenize.txt")
        if os.path.exists(tk):
            ids = json.loads(open(tk).read().strip().splitlines()[-1])
            hf_ids = json.load(open(f"testdata/unseen/{name}.eval_token_ids.json"))["kjv_eval.txt"]
            m["llama_tokenize"] = {
                "command": f"llama-tokenize -m {name}.bf16.gguf -f kjv_eval.txt --ids --no-escape --log-disable",
                "n": len(ids), "same_as_transformers": ids == hf_ids,
                "note": "llama-tokenize reads -f verbatim (keeps the trailing newline); "
                        "llama-perplexity -f drops one trailing newline (common/arg.cpp)",
            }
        ref["models"][name] = m
    with open("testdata/unseen/reference.json", "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
