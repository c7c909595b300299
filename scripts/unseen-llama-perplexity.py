#!/usr/bin/env python3
"""Records llama-perplexity's figures for the unseen fixtures on this machine
into testdata/unseen/llama-perplexity-avx512.json.

testdata/unseen/reference.json's llama-perplexity figures were made on a
machine whose CPU took other kernels (its BF16 products, for one, are not
this machine's VDPBF16PS); quantbridge emulates llama.cpp's AVX-512 kernels
(AVX512_VNNI, AVX512_BF16), so its figures are compared with
llama-perplexity run on such a CPU: this script's. For each fixture, the
bf16 GGUF and llama-quantize's Q8_0, Q6_K, Q5_K_M, Q4_K_M and Q4_0 of it (the
files whose sha256 reference.json records; checked here) at ctx 128, with
-b 128 (one chunk per batch, as reference.json) and with the default batch.

    LLAMA_BIN=~/llama.cpp/build/bin python3 scripts/unseen-llama-perplexity.py > testdata/unseen/llama-perplexity-avx512.json

llama.cpp 34af94cd built as ../shared/docs/llama-cpp-reference-build.md says
(GGML_NATIVE=ON) on a CPU with AVX512F/BW/VL, AVX512_VNNI and AVX512_BF16.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

BIN = os.environ.get("LLAMA_BIN", os.path.expanduser("~/llama.cpp/build/bin"))
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TEXT = os.path.join(ROOT, "testdata", "kjv_eval.txt")
NAMES = ["qwen2-bpe-tied", "llama3-bpe-tied"]
TYPES = ["bf16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"]

env = dict(os.environ, LD_LIBRARY_PATH=BIN)
flags = open("/proc/cpuinfo").read()
for f in ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"):
    if f not in flags:
        sys.exit(f"this CPU lacks {f}: its llama-perplexity figures are not the ones quantbridge emulates")
ref = json.load(open(os.path.join(ROOT, "testdata", "unseen", "reference.json")))


def ppl(path, batch):
    cmd = [os.path.join(BIN, "llama-perplexity"), "-m", path, "-f", TEXT, "-c", "128", "-t", "2", "--no-warmup"]
    if batch:
        cmd += ["-b", str(batch)]
    for _ in range(8):  # the log is asynchronous: retry until complete
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        log = p.stdout + p.stderr
        running = [float(v) for v in re.findall(r"\[\d+\]([0-9.]+),", log)]
        m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
        if m and len(running) == 50:
            return {"ppl": float(m.group(1)), "stderr": float(m.group(2)), "running": running}
    sys.exit(f"{path}: no complete llama-perplexity log")


out = {"note": "llama-perplexity (llama.cpp 34af94cd, GGML_NATIVE=ON) on an AVX-512 CPU with AVX512_VNNI and AVX512_BF16, "
               "kjv_eval.txt, -c 128 -t 2 --no-warmup, with -b 128 (b128) and the default batch (default); "
               "scripts/unseen-llama-perplexity.py", "models": {}}
with tempfile.TemporaryDirectory() as work:
    for name in NAMES:
        bf16 = os.path.join(ROOT, "testdata", "unseen", name + ".bf16.gguf")
        per = {}
        for typ in TYPES:
            path = bf16
            if typ != "bf16":
                path = os.path.join(work, f"{name}.{typ}.gguf")
                subprocess.run([os.path.join(BIN, "llama-quantize"), bf16, path, typ, "2"], check=True, capture_output=True, env=env)
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
            if digest != ref["models"][name]["gguf"][typ]["sha256"]:
                sys.exit(f"{path}: sha256 {digest} is not reference.json's")
            per[typ] = {"b128": ppl(path, 128), "default": ppl(path, 0)}
            print(f"{name} {typ}: {per[typ]['b128']['ppl']} / {per[typ]['default']['ppl']}", file=sys.stderr)
        out["models"][name] = per
json.dump(out, sys.stdout, indent=1)
print()
