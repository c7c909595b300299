#!/usr/bin/env bash
# Times `quantbridge ppl` against llama.cpp's `llama-perplexity` on a
# synthetic llama model made by quantbridge itself (gen-synthetic: its
# vocabulary loads in llama.cpp), both tools back to back on the same file,
# text, context, chunk count and thread count, and prints throughput
# ratios, peak RSS and both perplexities.
#
#   LLAMA_PERPLEXITY=/path/to/llama-perplexity scripts/bench-ppl-vs-llama.sh
#
# Environment:
#   LLAMA_PERPLEXITY  llama-perplexity binary (unset: only quantbridge is timed)
#   PRESET            synthetic shape: 1b (TinyLlama-1.1B; default) or tiny (6.8M)
#   LAYERS            override the preset's layer count (e.g. 6 for a quicker 1B-wide run)
#   TYPES             model types (default "F16 BF16 Q8_0 Q4_K_M Q6_K MLX4"): F16 and BF16 are
#                     written by gen-synthetic, the GGUF quant types by `quantbridge convert
#                     --type` (byte-identical to llama-quantize), MLX4 by `convert --bits 4
#                     --group-size 64`; llama-perplexity then runs on the equivalent GGUF, the
#                     same weights repacked exactly by `quantbridge convert MLX_DIR OUT.gguf`
#                     (affine int4 g64 with fp16 scales and biases is Q4_1, block for block)
#   CTXS              contexts (default "512 2048")
#   CHUNKS            chunks per run (default 2)
#   THREADS           threads for both tools (default: nproc)
#   REPS              runs of each tool per row, interleaved; the best wall time counts (default 1)
#   TEXT              text file (default testdata/kjv_eval.txt)
#   WORK              scratch directory (default bench/work)
# Output: one line per run, then a table: wall seconds of each tool, the
# throughput ratio llama_wall/qb_wall (>= 1: quantbridge at least as fast),
# peak RSS and the two final perplexities with their relative difference.
set -euo pipefail
cd "$(dirname "$0")/.."

PRESET=${PRESET:-1b}
TYPES=${TYPES:-"F16 BF16 Q8_0 Q4_K_M Q6_K MLX4"}
CTXS=${CTXS:-"512 2048"}
CHUNKS=${CHUNKS:-2}
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-1}
TEXT=${TEXT:-testdata/kjv_eval.txt}
WORK=${WORK:-bench/work}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "need GNU time at $TIME (apt-get install time)" >&2; exit 1; }
mkdir -p "$WORK"

echo "== building quantbridge"
CGO_ENABLED=0 go build -o "$WORK/quantbridge" ./cmd/quantbridge
QB="$WORK/quantbridge"

tag=$PRESET${LAYERS:+-l$LAYERS}
layers=()
[ -n "${LAYERS:-}" ] && layers=(--layers "$LAYERS")
base() { # base TYPE: the gen-synthetic file of F16 or BF16
  local f="$WORK/synthetic-$tag.$1.gguf"
  if [ ! -s "$f" ]; then
    echo "== generating $f" >&2
    "$QB" gen-synthetic --preset "$PRESET" "${layers[@]}" --type "$1" -j "$THREADS" "$f" >&2
  fi
  echo "$f"
}
# model TYPE: prints "QB_MODEL LLAMA_MODEL"
model() {
  case $1 in
  F16 | BF16) local f; f=$(base "$1"); echo "$f $f" ;;
  MLX4)
    local f16 d="$WORK/synthetic-$tag.mlx4"
    f16=$(base F16)
    [ -d "$d" ] || "$QB" convert --bits 4 --group-size 64 -j "$THREADS" "$f16" "$d" >&2
    [ -s "$d.gguf" ] || "$QB" convert -j "$THREADS" "$d" "$d.gguf" >&2
    echo "$d $d.gguf" ;;
  *)
    local f16 q="$WORK/synthetic-$tag.$1.gguf"
    f16=$(base F16)
    [ -s "$q" ] || "$QB" convert --type "$1" -j "$THREADS" "$f16" "$q" >&2
    echo "$q $q" ;;
  esac
}

# run LABEL CMD...: runs CMD under GNU time; sets WALL, RSS (MiB) and PPL.
run() {
  local label=$1; shift
  local log="$WORK/$label.time" out="$WORK/$label.out"
  sync
  if ! "$TIME" -v -o "$log" "$@" >"$out" 2>&1; then
    echo "$label failed:" >&2; tail -20 "$out" >&2; exit 1
  fi
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$log")
  PPL=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$out" | tail -1)
  printf '%-36s wall %8.2f s   peak RSS %7s MiB   PPL %s\n' "$label" "$WALL" "$RSS" "$PPL"
}

declare -a ROWS
for T in $TYPES; do
  read -r QM LM <<<"$(model "$T")"
  for C in $CTXS; do
    qbest= lbest=
    for ((r = 0; r < REPS; r++)); do
      run "qb-$T-c$C" "$QB" ppl -f "$TEXT" -c "$C" --chunks "$CHUNKS" -t "$THREADS" "$QM"
      if [ -z "$qbest" ] || awk -v a="$WALL" -v b="$qbest" 'BEGIN{exit !(a<b)}'; then qbest=$WALL qrss=$RSS qppl=$PPL; fi
      if [ -n "${LLAMA_PERPLEXITY:-}" ]; then
        run "llama-$T-c$C" "$LLAMA_PERPLEXITY" -m "$LM" -f "$TEXT" -c "$C" -b "$C" --chunks "$CHUNKS" -t "$THREADS" --no-warmup
        if [ -z "$lbest" ] || awk -v a="$WALL" -v b="$lbest" 'BEGIN{exit !(a<b)}'; then lbest=$WALL lrss=$RSS lppl=$PPL; fi
      fi
    done
    if [ -n "$lbest" ]; then
      ratio=$(awk -v q="$qbest" -v l="$lbest" 'BEGIN { printf "%.2f", l/q }')
      rel=$(awk -v q="$qppl" -v l="$lppl" 'BEGIN { d=(q-l)/l; if (d<0) d=-d; printf "%.1e", d }')
      ROWS+=("$(printf '| %-6s | %5s | %8.2f | %8.2f | %5s | %7s | %7s | %s | %s | %s |' "$T" "$C" "$qbest" "$lbest" "$ratio" "$qrss" "$lrss" "$qppl" "$lppl" "$rel")")
    else
      ROWS+=("$(printf '| %-6s | %5s | %8.2f | %8s | %5s | %7s | %7s | %s | %s | %s |' "$T" "$C" "$qbest" - - "$qrss" - "$qppl" - -)")
    fi
  done
done

echo
echo "preset $PRESET${LAYERS:+ ($LAYERS layers)}, $CHUNKS chunks, $THREADS threads, $(nproc) CPUs, text $TEXT"
echo "| type   |   ctx | qb wall s | lp wall s | lp/qb | qb RSS MiB | lp RSS MiB | qb PPL | lp PPL | rel diff |"
echo "|--------|------:|----------:|----------:|------:|--------:|--------:|-------:|-------:|---------:|"
printf '%s\n' "${ROWS[@]}"
