#!/usr/bin/env bash
# NAT measurements of issue 17 (docs/BENCHMARKS.md), on namespace test
# networks (internal/netns: needs root, iproute2, nftables):
#   (a) time from `vft daemon` start to reachable: public (AutoNAT says so),
#       behind an easy and a symmetric NAT (a relay reservation);
#   (b) DCUtR hole-punch success over fresh connections per NAT pairing;
#   (c) fetching 256 MiB through the relay and directly.
# Usage: bench/nat-bench.sh [runs-for-(a)=5] [attempts-for-(b)=50]
# Delay for (b) and (c): VFT_NAT_BENCH_DELAY=10ms delays every home router's
# traffic to the public segment (20 ms RTT between homes). netns.Host.Shape
# makes the delay in user space (TAP devices), so no sch_netem is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
attempts=${2:-50}
out=$(mktemp -d)
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) cores; go test -p 1"
VFT_NAT_BENCH=1 VFT_NAT_BENCH_RUNS=$runs VFT_NAT_BENCH_OUT=$out/reach.md \
	go test -p 1 -count=1 -timeout 30m -run '^TestNATBenchReachable$' ./cmd/vft >"$out/reach.log" 2>&1 || { tail -50 "$out/reach.log"; exit 1; }
VFT_NAT_BENCH=1 VFT_NAT_BENCH_ATTEMPTS=$attempts VFT_NAT_BENCH_OUT=$out/punch.md \
	go test -p 1 -count=1 -timeout 30m -run '^TestNATBench$' ./bench/natbench >"$out/punch.log" 2>&1 || { tail -50 "$out/punch.log"; exit 1; }
echo
echo "## (a) daemon start to reachable ($runs runs each)"
echo "| node | reachable when | min | median | max | runs |"
echo "|---|---|---|---|---|---|"
cat "$out/reach.md"
echo
echo "## (b) hole punching, $attempts fresh connections per pairing"
echo "| pairing | direct | median time to direct | failed with no DCUtR round |"
echo "|---|---|---|---|"
grep '(listener)' "$out/punch.md"
echo
echo "## (c) fetching through the relay and directly (easy–easy)"
echo "| path | size | time | throughput | connection |"
echo "|---|---|---|---|---|"
grep -v '(listener)' "$out/punch.md"
echo
echo "logs: $out"
