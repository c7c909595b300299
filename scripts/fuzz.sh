#!/usr/bin/env bash
# Runs every fuzz target of the module (each `func FuzzX(f *testing.F)` in a
# _test.go file, found by grep, so new targets are included) for DURATION
# each, one after the other, and prints a table of executions and failures.
#
#   scripts/fuzz.sh 10m          # the long campaign (docs/fuzzing.md)
#   scripts/fuzz.sh 6s           # what .ci/run does
#   scripts/fuzz.sh 1m FuzzParse # only targets whose name matches a regex
#
# A failing input is written by go test to <pkg>/testdata/fuzz/FuzzX/ (add it
# to the repository with the fix, as a regression seed). Logs go to
# $FUZZ_LOGDIR (default: a temporary directory). Exit status 1 when any
# target failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0

dur=${1:?usage: scripts/fuzz.sh DURATION [TARGET-REGEX]}
filter=${2:-.}
logdir=${FUZZ_LOGDIR:-$(mktemp -d)}
mkdir -p "$logdir"

# "pkgdir target" pairs, sorted.
targets=$(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
  sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' | sort -u)
if [ -z "$targets" ]; then
  echo "no fuzz targets found"; exit 1
fi

failed=0
printf '%-28s %-22s %12s  %s\n' TARGET PACKAGE EXECS RESULT
while read -r pkg name; do
  [[ $name =~ $filter ]] || continue
  log="$logdir/$name.log"
  corpus="$pkg/testdata/fuzz/$name"
  before=$(ls "$corpus" 2>/dev/null | wc -l)
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$dur" "./$pkg" >"$log" 2>&1
  rc=$?
  after=$(ls "$corpus" 2>/dev/null | wc -l)
  execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  if [ $rc -eq 0 ]; then
    result=ok
  elif [ "$after" -eq "$before" ] && grep -qx '    context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
    # Go's fuzz coordinator can report the end of -fuzztime itself as a
    # failure, with no failing input (go.dev/issue/75804, fixed in Go 1.27).
    result="ok (no failing input; go.dev/issue/75804 deadline report)"
  else
    result="FAIL (see $log)"
    failed=1
  fi
  printf '%-28s %-22s %12s  %s\n' "$name" "$pkg" "${execs:-0}" "$result"
done <<<"$targets"
exit $failed
