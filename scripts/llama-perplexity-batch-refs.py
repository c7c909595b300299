#!/usr/bin/env python3
"""Records llama-perplexity's figures for kjv-llama's GGUFs at its default
batching (-b 2048 -ub 512) into testdata/llama-perplexity-batch.json.

The figures in ../shared/testdata/reference.json were made with -b 128 at
ctx 128: one chunk per batch. At llama-perplexity's default batch, 16 chunks
of 128 tokens (or 4 of 512) are evaluated together as separate sequences,
and the arithmetic differs (see perplexity/batch.go); these are the
references for that.

    LLAMA_PERPLEXITY=~/llama.cpp/build/bin/llama-perplexity \
        python3 scripts/llama-perplexity-batch-refs.py ../shared/testdata/llama.cpp > testdata/llama-perplexity-batch.json

llama.cpp commit 34af94cd, built as ../shared/docs/llama-cpp-reference-build.md says.
"""

import json
import os
import re
import subprocess
import sys

lp = os.environ.get("LLAMA_PERPLEXITY", os.path.expanduser("~/llama.cpp/build/bin/llama-perplexity"))
gguf_dir = sys.argv[1]
text = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "kjv_eval.txt")
types = ["bf16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_1", "Q4_0", "Q3_K_M", "Q2_K"]
out = {
    "note": "llama-perplexity (llama.cpp 34af94cd) on testdata/kjv_eval.txt at its default batching; command: "
    "llama-perplexity -m kjv-llama.TYPE.gguf -f kjv_eval.txt -c CTX -t 2 --no-warmup",
    "ctx": {},
}
for ctx in (128, 512):
    per = {}
    for typ in types:
        cmd = [lp, "-m", os.path.join(gguf_dir, f"kjv-llama.{typ}.gguf"), "-f", text, "-c", str(ctx), "-t", "2", "--no-warmup"]
        # llama.cpp's log is asynchronous: a run can end without some
        # lines; retry until the final estimate and every running value
        # are there.
        for attempt in range(5):
            p = subprocess.run(cmd, capture_output=True, text=True)
            log = p.stdout + p.stderr
            running = [float(v) for _, v in re.findall(r"\[(\d+)\]([0-9.]+),", log)]
            m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
            if m and running and len(running) == len(set(re.findall(r"\[(\d+)\][0-9.]+,", log))):
                break
        else:
            sys.exit(f"{typ} ctx {ctx}: no complete log")
        per[typ] = {"ppl": float(m.group(1)), "stderr": float(m.group(2)), "running": running}
        print(f"{typ} ctx {ctx}: {m.group(1)} ± {m.group(2)}, {len(running)} chunks", file=sys.stderr)
    out["ctx"][str(ctx)] = per
json.dump(out, sys.stdout, indent=1)
print()
