#!/usr/bin/env bash
# Rebuilds the importance-matrix reference set (../shared/testdata/imatrix on
# the machine that made it with llama.cpp 34af94cd; see
# testdata/imatrix/refs/README.md) from what a checkout holds, and proves it
# is that set: every file is written by quantbridge and then checked against
# the sha256 of llama.cpp's own file (testdata/imatrix/refs/SHA256SUMS).
# A file that differs by one byte fails the script, so the set it leaves is
# byte for byte the llama-quantize outputs the refdata tests compare with.
#
#   scripts/imatrix-refs.sh [OUT]      (default OUT: .refs/imatrix)
#
# Needs ../shared/testdata (kjv-llama.bf16.gguf, written by llama.cpp's
# converter) or QUANTBRIDGE_SHARED. The refdata tests read OUT when it
# exists (internal/testref.Imatrix), else ../shared/testdata/imatrix.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${1:-.refs/imatrix}
SHARED=${QUANTBRIDGE_SHARED:-$ROOT/../shared}/testdata
BF16=$SHARED/llama.cpp/kjv-llama.bf16.gguf
[ -s "$BF16" ] || { echo "imatrix-refs: $BF16 not found (set QUANTBRIDGE_SHARED)" >&2; exit 1; }
mkdir -p "$OUT/mixtral-tiny"
OUT=$(cd "$OUT" && pwd)
QB=$OUT/.quantbridge
CGO_ENABLED=0 go build -o "$QB" ./cmd/quantbridge

TYPES="IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS IQ3_XS IQ3_S IQ3_M IQ4_NL IQ4_XS TQ1_0 TQ2_0 MXFP4_MOE
Q2_K Q2_K_S Q3_K_S Q3_K_M Q3_K_L Q4_0 Q4_1 Q4_K_S Q4_K_M Q5_0 Q5_1 Q5_K_S Q5_K_M Q6_K Q8_0"
# make OUTFILE ARGS...: runs quantbridge convert ARGS OUTFILE unless OUTFILE is there already.
make() {
  local out=$1; shift
  [ -s "$out" ] && return 0
  "$QB" convert -j "$(nproc)" "$@" "$out.tmp.gguf" >/dev/null 2>"$out.err" || { cat "$out.err" >&2; exit 1; }
  mv "$out.tmp.gguf" "$out"; rm -f "$out.err"
}

cp testdata/imatrix/refs/kjv.imatrix.gguf testdata/imatrix/refs/llama-perplexity.*.log "$OUT/"
cp testdata/imatrix/refs/mixtral-tiny/mixtral-tiny.imatrix.gguf "$OUT/mixtral-tiny/"
(
  cd "$OUT" # llama-quantize records --imatrix as given: run where it ran
  for T in $TYPES; do make "kjv-llama.imatrix.$T.gguf" --imatrix kjv.imatrix.gguf --type "$T" "$BF16"; done
  for T in IQ3_S IQ3_M TQ1_0 TQ2_0 IQ4_NL IQ4_XS; do make "kjv-llama.$T.gguf" --type "$T" "$BF16"; done
  make qwen3moe-tiny.MXFP4_MOE.gguf --type MXFP4_MOE "$ROOT/testdata/arch/qwen3moe-tiny.bf16.gguf"
  make mixtral-tiny/mixtral-tiny.bf16.gguf --type BF16 "$ROOT/testdata/arch/mixtral-tiny"
  make mixtral-tiny.MXFP4_MOE.gguf --type MXFP4_MOE mixtral-tiny/mixtral-tiny.bf16.gguf
  cd mixtral-tiny
  for T in $TYPES; do make "mixtral-tiny.imatrix.$T.gguf" --imatrix mixtral-tiny.imatrix.gguf --type "$T" mixtral-tiny.bf16.gguf; done
)
rm -f "$QB"
if ! (cd "$OUT" && sha256sum --quiet -c "$ROOT/testdata/imatrix/refs/SHA256SUMS"); then
  echo "imatrix-refs: files above differ from llama.cpp's (testdata/imatrix/refs/SHA256SUMS)" >&2
  exit 1
fi
echo "imatrix-refs: $(wc -l <testdata/imatrix/refs/SHA256SUMS) files in $OUT, each identical to llama.cpp's"
