#!/usr/bin/env bash
# Records llama-perplexity --kl-divergence's report for kjv-llama Q4_K_M
# against its bf16 base (llama.cpp's files in ../shared/testdata/llama.cpp) at
# ctx 128, with -b 128 and with the default batch, into
# testdata/kld/kjv-llama.Q4_K_M.{b128,default}.txt (the report from
# "====== Perplexity statistics" on, log prefixes removed).
#
#   LLAMA_BIN=~/llama.cpp/build/bin scripts/kld-reference.sh
#
# llama.cpp 34af94cd built as ../shared/docs/llama-cpp-reference-build.md
# says, on a CPU with AVX-512 (VNNI, BF16): the kernels quantbridge emulates.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LLAMA_BIN:-$HOME/llama.cpp/build/bin}
SHARED=${QUANTBRIDGE_SHARED:-../shared}/testdata/llama.cpp
export LD_LIBRARY_PATH=$BIN
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for B in b128 default; do
  flags=(-f testdata/kjv_eval.txt -c 128 -t 2 --no-warmup)
  [ "$B" = default ] || flags+=(-b 128)
  "$BIN/llama-perplexity" -m "$SHARED/kjv-llama.bf16.gguf" "${flags[@]}" --kl-divergence-base "$W/base.kld" >/dev/null 2>&1
  for try in 1 2 3 4 5 6; do # the log is asynchronous: retry until the report is whole
    "$BIN/llama-perplexity" -m "$SHARED/kjv-llama.Q4_K_M.gguf" "${flags[@]}" --kl-divergence-base "$W/base.kld" --kl-divergence >"$W/out" 2>&1 || true
    sed -n '/====== Perplexity statistics/,$p' "$W/out" | sed 's/^[0-9.]* I //' | grep -v '^llama_\|^common_\|^main:\|^$' >"$W/report" || true
    grep -q '^Same top p:' "$W/report" && break
  done
  grep -q '^Same top p:' "$W/report" || { echo "kld-reference: no whole report for -b $B" >&2; exit 1; }
  cp "$W/report" "testdata/kld/kjv-llama.Q4_K_M.$B.txt"
  echo "testdata/kld/kjv-llama.Q4_K_M.$B.txt: $(grep 'Mean    KLD' "$W/report")"
done
