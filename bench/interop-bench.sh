#!/bin/sh
# Side-by-side benchmark of VFT storage and kubo v0.43.1 on this machine:
# import of one random file (unixfs-v1-2025 settings on both sides),
# transfer between two local nodes on loopback, and peak RSS.
#
#   bench/interop-bench.sh            # 1 GiB file
#   SIZE_MB=256 bench/interop-bench.sh
#   BENCH_DIR=/some/disk bench/interop-bench.sh   # keep the file and repos there
#   SETTLE_S=20 bench/interop-bench.sh   # seconds of rest before each import (the default; 0 for none)
#
# Every node listens on 127.0.0.1 only (see interop/internal/kubo).
set -eu
cd "$(dirname "$0")/../interop"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/interop-bench" ./cmd/interop-bench
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2" GiB RAM"}')"
"$tmp/interop-bench" "$@"
