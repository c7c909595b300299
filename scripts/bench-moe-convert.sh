#!/usr/bin/env bash
# MoE conversion and evaluation at scale against llama.cpp: a synthetic
# Mixtral-shaped checkpoint (scripts/make-synthetic-moe.py: 8 layers, hidden
# 1024, 8 experts of width 2816, 1.17 GB bf16), converted HF → GGUF BF16 and
# → Q4_K_M by quantbridge, the BF16 GGUF → Q4_K_M by both quantbridge and
# llama-quantize (outputs compared with cmp), then ppl against
# llama-perplexity on the Q4_K_M file. Wall time and peak RSS of each.
#
#   LLAMA_CPP=~/llama.cpp/build/bin THREADS=2 scripts/bench-moe-convert.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/qb-moe-bench}; T=${THREADS:-2}; L=${LLAMA_CPP:-$HOME/llama.cpp/build/bin}
mkdir -p "$W"
go build -o "$W/quantbridge" ./cmd/quantbridge
[ -f "$W/hf/model.safetensors" ] || python3 scripts/make-synthetic-moe.py "$W/hf"
t() { /usr/bin/time -f "  %e s wall, %M KB peak RSS" "$@" 2>&1 | tail -2; }
echo "quantbridge HF → GGUF BF16";        t "$W/quantbridge" convert --type BF16 -j "$T" "$W/hf" "$W/bf16.gguf"
echo "quantbridge HF → GGUF Q4_K_M";      t "$W/quantbridge" convert --type Q4_K_M -j "$T" "$W/hf" "$W/q4km-hf.gguf"
echo "quantbridge BF16 GGUF → Q4_K_M";    t "$W/quantbridge" convert --type Q4_K_M -j "$T" "$W/bf16.gguf" "$W/q4km.gguf"
echo "llama-quantize BF16 GGUF → Q4_K_M"; t "$L/llama-quantize" "$W/bf16.gguf" "$W/q4km-ref.gguf" Q4_K_M "$T"
cmp "$W/q4km.gguf" "$W/q4km-ref.gguf" && cmp "$W/q4km-hf.gguf" "$W/q4km-ref.gguf" && echo "Q4_K_M files identical"
echo "quantbridge ppl (ctx 512, 2 chunks)"
t "$W/quantbridge" ppl -c 512 --chunks 2 -t "$T" -f testdata/kjv_eval.txt "$W/q4km.gguf"
echo "llama-perplexity (ctx 512, 2 chunks)"
t "$L/llama-perplexity" -m "$W/q4km.gguf" -f testdata/kjv_eval.txt -c 512 -b 512 --chunks 2 -t "$T" --no-warmup
