#!/usr/bin/env bash
# Times `quantbridge convert` against llama.cpp's `llama-quantize` on a
# synthetic llama F16 GGUF made by quantbridge itself, at equal thread
# counts, and checks that both write the same bytes.
#
#   LLAMA_QUANTIZE=/path/to/llama-quantize scripts/bench-vs-llama-quantize.sh
#
# Environment:
#   LLAMA_QUANTIZE  llama-quantize binary (unset: only quantbridge is timed)
#   PRESET          synthetic shape: 1b (TinyLlama-1.1B, ~2.2 GB F16; default) or tiny (6.8M)
#   TYPES           file types to compare (default "Q4_K_M Q8_0")
#   THREADS         threads for both tools (default: nproc)
#   WORK            scratch directory (default: bench/work; ~4x the model size free)
# Output: one line per tool and type (wall seconds, peak RSS MiB) and a
# summary table with the wall-time ratio quantbridge/llama-quantize and
# whether `cmp` found the outputs identical.
set -euo pipefail
cd "$(dirname "$0")/.."

PRESET=${PRESET:-1b}
TYPES=${TYPES:-"Q4_K_M Q8_0"}
THREADS=${THREADS:-$(nproc)}
WORK=${WORK:-bench/work}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "need GNU time at $TIME (apt-get install time)" >&2; exit 1; }
mkdir -p "$WORK"

echo "== building quantbridge"
CGO_ENABLED=0 go build -o "$WORK/quantbridge" ./cmd/quantbridge
QB="$WORK/quantbridge"

IN="$WORK/synthetic-$PRESET.f16.gguf"
if [ ! -s "$IN" ]; then
  echo "== generating $IN"
  "$QB" gen-synthetic --preset "$PRESET" --type F16 -j "$THREADS" "$IN"
fi
ls -l "$IN"

# run LABEL CMD...: runs CMD under GNU time; prints and records wall seconds and peak RSS.
run() {
  local label=$1; shift
  local log="$WORK/$label.time"
  sync
  if ! "$TIME" -v -o "$log" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err"; then
    echo "$label failed:" >&2; tail -20 "$WORK/$label.err" >&2; exit 1
  fi
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$log")
  printf '%-28s wall %8.2f s   peak RSS %7s MiB\n' "$label" "$wall" "$rss"
  eval "WALL_${label//[^A-Za-z0-9]/_}=$wall RSS_${label//[^A-Za-z0-9]/_}=$rss"
}

declare -a ROWS
for T in $TYPES; do
  QOUT="$WORK/qb.$T.gguf"
  run "quantbridge-$T" "$QB" convert "$IN" "$QOUT" --type "$T" -j "$THREADS" --force
  qw=$(eval echo "\$WALL_quantbridge_${T//[^A-Za-z0-9]/_}")
  qr=$(eval echo "\$RSS_quantbridge_${T//[^A-Za-z0-9]/_}")
  if [ -n "${LLAMA_QUANTIZE:-}" ]; then
    LOUT="$WORK/llama.$T.gguf"
    rm -f "$LOUT"
    run "llama-quantize-$T" "$LLAMA_QUANTIZE" "$IN" "$LOUT" "$T" "$THREADS"
    lw=$(eval echo "\$WALL_llama_quantize_${T//[^A-Za-z0-9]/_}")
    lr=$(eval echo "\$RSS_llama_quantize_${T//[^A-Za-z0-9]/_}")
    if cmp -s "$QOUT" "$LOUT"; then same=identical; else same="DIFFERENT ($(cmp "$QOUT" "$LOUT" 2>&1 | head -1))"; fi
    ratio=$(awk -v a="$qw" -v b="$lw" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "n/a" }')
    ROWS+=("$(printf '| %-7s | %8.2f | %8.2f | %5s | %7s | %7s | %s |' "$T" "$qw" "$lw" "$ratio" "$qr" "$lr" "$same")")
  else
    ROWS+=("$(printf '| %-7s | %8.2f | %8s | %5s | %7s | %7s | %s |' "$T" "$qw" "-" "-" "$qr" "-" "not compared (LLAMA_QUANTIZE unset)")")
  fi
done

echo
echo "preset $PRESET, $THREADS threads, $(nproc) CPUs, input $(stat -c %s "$IN") bytes"
echo "| type    | qb wall s | lq wall s | ratio | qb RSS MiB | lq RSS MiB | cmp |"
echo "|---------|----------:|----------:|------:|--------:|--------:|-----|"
printf '%s\n' "${ROWS[@]}"
