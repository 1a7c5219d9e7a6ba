#!/usr/bin/env bash
# Peak daemon memory while importing and fetching a large file.
#   SIZE_MB=10240 bench/rss.sh      (default 10 GiB; needs ~3x that on disk)
# Starts two daemons on loopback, `vft add`s a random file on A while
# sampling A's RSS, then `vft get`s it on B while sampling B's RSS, and
# prints the peak RSS (VmHWM) of each daemon and the throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-10240}
VFT=${VFT:-./bin/vft}
WORK=$(mktemp -d -p "${BENCH_DIR:-/tmp}" vft-rss-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

export VFT_API_LISTEN=127.0.0.1:0 VFT_P2P_MDNS=false VFT_P2P_NAT_PORTMAP=false VFT_P2P_ALLOW_PRIVATE_ADDRS=true
export VFT_P2P_LISTEN=/ip4/127.0.0.1/tcp/0 VFT_LOG_LEVEL=warn VFT_STORAGE_PROVIDE=false

start() { # name [env...]
  local name=$1; shift
  "$VFT" --repo "$WORK/$name" init >/dev/null
  env "$@" "$VFT" --repo "$WORK/$name" daemon >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  until grep -q "daemon ready" "$WORK/$name.out" 2>/dev/null; do sleep 0.1; done
}

# peak RSS of a pid while a command runs, sampled every 200 ms
sample() { # pid outfile
  local pid=$1 out=$2 peak=0
  while kill -0 "$pid" 2>/dev/null && [ ! -f "$out.stop" ]; do
    rss=$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    echo "$peak" >"$out"
    sleep 0.2
  done
}

echo "generating ${SIZE_MB} MiB of random data..."
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$WORK/data.bin"

start a
A_PID=${PIDS[0]}
BOOT=$("$VFT" --repo "$WORK/a" id --json | sed -n 's/^    "\(\/ip4\/[^"]*\)",\{0,1\}$/\1/p' | head -1)
start b VFT_P2P_BOOTSTRAP="$BOOT"
B_PID=${PIDS[1]}
idle_a=$(awk '/VmRSS/ {print $2}' /proc/$A_PID/status)

sample "$A_PID" "$WORK/a.peak" & S=$!
t0=$(date +%s%N)
CID=$("$VFT" --repo "$WORK/a" add "$WORK/data.bin")
t1=$(date +%s%N)
touch "$WORK/a.peak.stop"; wait $S || true

sample "$B_PID" "$WORK/b.peak" & S=$!
t2=$(date +%s%N)
"$VFT" --repo "$WORK/b" get "$CID" -o "$WORK/copy.bin" >/dev/null
t3=$(date +%s%N)
touch "$WORK/b.peak.stop"; wait $S || true
cmp -s "$WORK/data.bin" "$WORK/copy.bin" || { echo "copy differs" >&2; exit 1; }

awk -v size="$SIZE_MB" -v idle="$idle_a" -v pa="$(cat "$WORK/a.peak")" -v pb="$(cat "$WORK/b.peak")" \
    -v ta="$(( (t1 - t0) / 1000000 ))" -v tb="$(( (t3 - t2) / 1000000 ))" 'BEGIN {
  printf "file            %d MiB\n", size
  printf "daemon idle     %.0f MiB RSS\n", idle / 1024
  printf "add  (A)        %.1f s, %.0f MiB/s, peak RSS %.0f MiB\n", ta / 1000, size / (ta / 1000), pa / 1024
  printf "get  (A -> B)   %.1f s, %.0f MiB/s, peak RSS %.0f MiB\n", tb / 1000, size / (tb / 1000), pb / 1024
}'
