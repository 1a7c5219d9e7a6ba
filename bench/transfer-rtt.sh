#!/usr/bin/env bash
# Node-to-node transfer over a link with a round-trip time (issue #18):
# `vft get` between two `vft daemon`s vs `ipfs cat` between two kubo
# v0.43.1 daemons, same file (CIDv1, raw leaves, 1 MiB chunks), same run,
# with the getter daemon's peak RSS. The two hosts are namespaces on the
# public segment of internal/netns, each sending with a delay (a 20 ms round
# trip by default; no sch_netem needed). As root, with iproute2 and nftables.
#
#   bench/transfer-rtt.sh                      # 256 MiB, 10 ms each way, 1 run
#   MIB=1024 RUNS=3 DELAY=10ms bench/transfer-rtt.sh
#   VFT_IPFS_BIN=/path/to/ipfs bench/transfer-rtt.sh   # skip building kubo
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/vft" ./cmd/vft
ipfs=${VFT_IPFS_BIN:-}
if [ -z "$ipfs" ]; then
	(cd interop && go build -o "$tmp/ipfs" github.com/ipfs/kubo/cmd/ipfs)
	ipfs=$tmp/ipfs
fi
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), kubo $("$ipfs" version --number)"
VFT_RTT_BENCH=1 VFT_BIN=$tmp/vft VFT_IPFS_BIN=$ipfs VFT_RTT_BENCH_MIB=${MIB:-256} \
	VFT_RTT_BENCH_RUNS=${RUNS:-1} VFT_RTT_BENCH_DELAY=${DELAY:-10ms} VFT_RTT_BENCH_OUT=$tmp/rows.md \
	go test -p 1 -count=1 -timeout 60m -run '^TestTransferRTT$' -v ./bench/rttbench >"$tmp/log" 2>&1 || { tail -60 "$tmp/log"; exit 1; }
grep -E 'run [0-9]+:|MiB, ' "$tmp/log" | sed 's/^ *rttbench_test.go:[0-9]*: /# /'
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| transfer | median | throughput | getter peak RSS | vft vs kubo | runs (s) |"
echo "|---|---|---|---|---|---|"
cat "$tmp/rows.md"
