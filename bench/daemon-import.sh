#!/bin/sh
# Import through the daemon against the SHA-256 ceiling (issue #18):
# a `vft daemon` on loopback in a fresh repo, then `vft add` of each of
# FILES (random, 512 MiB by default), each read into the page cache first
# as the ceiling's pass is; ROUNDS daemons, one after the other. Prints
# every time and the medians.
#
#   bench/daemon-import.sh            # 3 files of 512 MiB, 3 rounds
#   FILES=5 SIZE_MB=1024 ROUNDS=2 bench/daemon-import.sh
set -eu
cd "$(dirname "$0")/.."
files=${FILES:-3}
size=${SIZE_MB:-512}
rounds=${ROUNDS:-3}
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
pid=
go build -o "$tmp/vft" ./cmd/vft
go build -o "$tmp/hashtime" ./bench/cmd/hashtime
for i in $(seq "$files"); do head -c "${size}M" /dev/urandom > "$tmp/f$i"; done
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $files files of $size MiB, $rounds rounds"
export VFT_API_LISTEN=127.0.0.1:0 VFT_P2P_MDNS=false VFT_P2P_BOOTSTRAP= VFT_P2P_LISTEN=/ip4/127.0.0.1/tcp/0 VFT_P2P_NAT_PORTMAP=false VFT_LOG_LEVEL=warn
: > "$tmp/add"
: > "$tmp/sha"
for r in $(seq "$rounds"); do
  export VFT_PATH="$tmp/repo$r"
  "$tmp/vft" init --mode light > /dev/null
  "$tmp/vft" daemon > "$tmp/daemon$r.log" 2>&1 &
  pid=$!
  until "$tmp/vft" nodes > /dev/null 2>&1; do sleep 0.2; done
  for i in $(seq "$files"); do
    cat "$tmp/f$i" > /dev/null
    "$tmp/hashtime" "$tmp/f$i" | awk '{print $3}' >> "$tmp/sha"
    s=$(date +%s.%N); "$tmp/vft" add "$tmp/f$i" > /dev/null; e=$(date +%s.%N)
    echo "$e - $s" | bc >> "$tmp/add"
  done
  kill -TERM "$pid"; wait "$pid" || true; pid=
  rm -rf "$VFT_PATH"
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "vft add via the daemon (s): $(sort -n "$tmp/add" | tr '\n' ' ')"
echo "SHA-256 pass (s):           $(sort -n "$tmp/sha" | tr '\n' ' ')"
a=$(median "$tmp/add"); h=$(median "$tmp/sha")
echo "medians: import $a s, SHA-256 $h s: the import runs at $(echo "scale=2; $h / $a" | bc) of the ceiling"
