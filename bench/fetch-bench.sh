#!/usr/bin/env bash
# Fetch from 1 vs 3 providers when the link is the limit (issues #18, #16;
# docs/BENCHMARKS.md): three provider processes, each in its own network
# namespace (internal/netns: needs root, iproute2, nftables, tc) with its
# outgoing traffic held to MBIT by tc tbf, and a fetching process whose
# link is not limited; default fetch (streams) and bitswap only.
# Usage: bench/fetch-bench.sh [MiB=256] [Mbit/s per provider=200] [runs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-256}
mbit=${2:-200}
runs=${3:-3}
out=$(mktemp -d)
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) cores; $(uptime)"
VFT_FETCH_BENCH=1 VFT_FETCH_BENCH_MB=$mib VFT_FETCH_BENCH_MBIT=$mbit VFT_FETCH_BENCH_RUNS=$runs VFT_FETCH_BENCH_OUT=$out/fetch.md \
	go test -p 1 -count=1 -v -timeout 30m -run '^TestFetchBench$' ./bench/fetchbench >"$out/fetch.log" 2>&1 || { tail -50 "$out/fetch.log"; exit 1; }
grep -E 'provider\(s\), run' "$out/fetch.log" | sed 's/^ *fetchbench_test.go:[0-9]*: /# /'
echo "# $(uptime)"
echo "| fetch | providers | size | median time | rate |"
echo "|---|---|---|---|---|"
cat "$out/fetch.md"
