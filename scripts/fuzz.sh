#!/usr/bin/env bash
# Runs every fuzzer in the module for FUZZTIME each (default 30s), one at a
# time. `make test` already replays each fuzzer's seed corpus and the
# crashers kept under testdata/fuzz/; this explores beyond them. A failure
# leaves the crashing input in that package's testdata/fuzz/FuzzName/:
# commit it with the fix so the regression is replayed from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-30s}"
failed=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for name in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $name ($FUZZTIME)"
    if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZMINIMIZETIME:-5s}" "$pkg"; then
      echo "FAIL: $pkg $name"
      failed=$((failed + 1))
    fi
  done
done
echo "fuzzers failed: $failed"
[ "$failed" -eq 0 ]
