#!/usr/bin/env bash
# Times HF checkpoint → GGUF conversion on a ~1B-parameter synthetic llama
# checkpoint (TinyLlama-1.1B's shape, bf16 safetensors made by quantbridge
# itself), to BF16 (a pure copy with the converter's layout) and to Q4_K_M,
# against `cp` of the same safetensors data as the disk/page-cache baseline.
#
#   scripts/bench-hf-to-gguf.sh
#
# Environment: THREADS (default nproc), WORK (scratch, default bench/work;
# needs ~9 GB free), PRESET (1b default, or tiny), TYPES (default "BF16 Q4_K_M").
# Output: wall seconds, MB/s of input safetensors bytes, peak RSS per run.
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${PRESET:-1b}
THREADS=${THREADS:-$(nproc)}
WORK=${WORK:-bench/work}
TYPES=${TYPES:-"BF16 Q4_K_M"}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "need GNU time at $TIME (apt-get install time)" >&2; exit 1; }
mkdir -p "$WORK"
CGO_ENABLED=0 go build -o "$WORK/quantbridge" ./cmd/quantbridge
QB="$WORK/quantbridge"

HF="$WORK/synthetic-$PRESET-hf"
if [ ! -f "$HF/config.json" ]; then
  G="$WORK/synthetic-$PRESET.bf16.gguf"
  [ -s "$G" ] || "$QB" gen-synthetic --preset "$PRESET" --type BF16 -j "$THREADS" "$G"
  "$QB" convert "$G" "$HF" --to hf --type BF16 -j "$THREADS" --force
fi
BYTES=$(cat "$HF"/*.safetensors | wc -c)
echo "input: $HF ($BYTES bytes of safetensors)"

run() { # LABEL CMD...
  local label=$1; shift
  sync
  "$TIME" -v -o "$WORK/$label.time" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err" || { tail "$WORK/$label.err"; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$WORK/$label.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$WORK/$label.time")
  printf '%-22s wall %7.2f s  %8.1f MB/s  peak RSS %6s MiB\n' "$label" "$wall" "$(echo "$BYTES / $wall / 1000000" | bc -l)" "$rss"
}

# warm the page cache so every run reads from memory, as the copy does
cat "$HF"/*.safetensors > /dev/null
mkdir -p "$WORK/cp"
run "cp-safetensors" cp "$HF"/*.safetensors "$WORK/cp/"
rm -rf "$WORK/cp"
for T in $TYPES; do
  run "hf-to-gguf-$T" "$QB" convert "$HF" "$WORK/hf.$T.gguf" --type "$T" -j "$THREADS" --force
done
