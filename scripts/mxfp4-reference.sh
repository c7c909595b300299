#!/bin/sh
# Regenerates testdata/arch/mxfp4-reference.json: what llama.cpp (34af94cd,
# built in ~/llama.cpp/build/bin) makes of the MoE fixtures with the
# MXFP4_MOE file type. The GGUFs themselves go to
# ../shared/testdata/imatrix/ (not kept in the repository; the tests compare
# sha256 sums).
#
#   qwen3moe-tiny: llama-quantize on testdata/arch/qwen3moe-tiny.bf16.gguf
#                  (written by llama.cpp's convert_hf_to_gguf.py), then
#                  llama-perplexity -c 128 -b 128 -t 2 --no-warmup on
#                  kjv_eval.txt.
#   mixtral-tiny:  llama-quantize on the BF16 GGUF quantbridge converts from
#                  testdata/arch/mixtral-tiny (the python converter needs
#                  torch, which this machine lacks).
set -eu
cd "$(dirname "$0")/.."
BIN=${LLAMA_BIN:-$HOME/llama.cpp/build/bin}
OUT=${OUT:-../shared/testdata/imatrix}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export LD_LIBRARY_PATH="$BIN"

go build -o "$TMP/qb" ./cmd/quantbridge
"$TMP/qb" convert --type BF16 testdata/arch/mixtral-tiny "$TMP/mixtral-tiny.bf16.gguf"

"$BIN/llama-quantize" testdata/arch/qwen3moe-tiny.bf16.gguf "$OUT/qwen3moe-tiny.MXFP4_MOE.gguf" MXFP4_MOE 2 >"$TMP/q1.log" 2>&1
"$BIN/llama-quantize" "$TMP/mixtral-tiny.bf16.gguf" "$OUT/mixtral-tiny.MXFP4_MOE.gguf" MXFP4_MOE 2 >"$TMP/q2.log" 2>&1

# llama-perplexity's log is asynchronous: retry until the final line is there.
for i in 1 2 3 4 5 6 7 8; do
	"$BIN/llama-perplexity" -m "$OUT/qwen3moe-tiny.MXFP4_MOE.gguf" -f ../shared/testdata/text/kjv_eval.txt \
		-c 128 -b 128 -t 2 --no-warmup >"$TMP/ppl.log" 2>&1 || true
	grep -q "Final estimate" "$TMP/ppl.log" && break
done

python3 - "$OUT" "$TMP/ppl.log" <<'EOF' >testdata/arch/mxfp4-reference.json
import hashlib, json, re, sys
out, log = sys.argv[1], open(sys.argv[2]).read()
def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()
m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
running = [float(v) for v in re.findall(r"\[\d+\]([0-9.]+),", log)]
print(json.dumps({
    "about": "scripts/mxfp4-reference.sh: llama.cpp 34af94cd llama-quantize MXFP4_MOE and llama-perplexity -c 128 -b 128 -t 2 on kjv_eval.txt",
    "qwen3moe-tiny": {"source": "testdata/arch/qwen3moe-tiny.bf16.gguf", "sha256": sha(out + "/qwen3moe-tiny.MXFP4_MOE.gguf"),
                      "llama_perplexity_ctx128": {"ppl": float(m.group(1)), "stderr": float(m.group(2)), "running": running}},
    "mixtral-tiny": {"source": "quantbridge convert --type BF16 testdata/arch/mixtral-tiny", "sha256": sha(out + "/mixtral-tiny.MXFP4_MOE.gguf")},
}, indent=1))
EOF
