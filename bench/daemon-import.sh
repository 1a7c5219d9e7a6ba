#!/bin/sh
# Import through the daemon against the SHA-256 ceiling (issue #18):
# a `vft daemon` on loopback in a fresh repo, then `vft add` of each of
# FILES (random, 512 MiB by default), each read into the page cache first
# as the ceiling's passes are; ROUNDS daemons, one after the other.
# Before each import, the SHA-256 pass over the same file with OpenSSL
# and with Go's crypto/sha256, and with DISK=1 a copy of it written past
# the page cache (`dd bs=1M oflag=direct`) into the same file system as
# the repo: the disk's own write rate, which an import cannot beat.
# SETTLE_S syncs and rests that many seconds before each timed step (the
# VM this project measures on hands freed memory back to its host).
# Prints every time and the medians.
#
#   bench/daemon-import.sh            # 3 files of 512 MiB, 3 rounds
#   FILES=5 SIZE_MB=1024 ROUNDS=2 bench/daemon-import.sh
#   FILE=/big/10GiB.bin ROUNDS=3 DISK=1 SETTLE_S=15 bench/daemon-import.sh
set -eu
cd "$(dirname "$0")/.."
files=${FILES:-3}
size=${SIZE_MB:-512}
rounds=${ROUNDS:-3}
settle=${SETTLE_S:-0}
disk=${DISK:-0}
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
pid=
go build -o "$tmp/vft" ./cmd/vft
go build -o "$tmp/hashtime" ./bench/cmd/hashtime
if [ -n "${FILE:-}" ]; then
  set -- "$FILE"
  size=$(($(stat -c %s "$FILE") / 1048576))
else
  set --
  for i in $(seq "$files"); do
    head -c "${size}M" /dev/urandom > "$tmp/f$i"
    set -- "$@" "$tmp/f$i"
  done
fi
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $# file(s) of $size MiB, $rounds rounds, settle ${settle} s"
export VFT_API_LISTEN=127.0.0.1:0 VFT_P2P_MDNS=false VFT_P2P_BOOTSTRAP= VFT_P2P_LISTEN=/ip4/127.0.0.1/tcp/0 VFT_P2P_NAT_PORTMAP=false VFT_LOG_LEVEL=warn
: > "$tmp/add"
: > "$tmp/sha"
: > "$tmp/openssl"
: > "$tmp/dd"
settle() { if [ "$settle" -gt 0 ]; then sync; sleep "$settle"; fi; }
seconds() { s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
for r in $(seq "$rounds"); do
  export VFT_PATH="$tmp/repo$r"
  "$tmp/vft" init --mode light > /dev/null
  "$tmp/vft" daemon > "$tmp/daemon$r.log" 2>&1 &
  pid=$!
  until "$tmp/vft" nodes > /dev/null 2>&1; do sleep 0.2; done
  for f in "$@"; do
    cat "$f" > /dev/null
    settle; "$tmp/hashtime" "$f" | awk '{print $3}' >> "$tmp/sha"
    if command -v openssl > /dev/null; then settle; seconds openssl dgst -sha256 "$f" >> "$tmp/openssl"; fi
    if [ "$disk" = 1 ]; then
      settle; seconds dd if="$f" of="$tmp/copy" bs=1M oflag=direct status=none >> "$tmp/dd"
      rm -f "$tmp/copy"
    fi
    settle; seconds "$tmp/vft" add "$f" >> "$tmp/add"
  done
  kill -TERM "$pid"; wait "$pid" || true; pid=
  rm -rf "$VFT_PATH"
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() { [ -s "$2" ] && printf '%-28s %s\n' "$1" "$(sort -n "$2" | tr '\n' ' ')"; return 0; }
row "vft add via the daemon (s):" "$tmp/add"
row "SHA-256, Go (s):" "$tmp/sha"
row "SHA-256, OpenSSL (s):" "$tmp/openssl"
row "dd oflag=direct copy (s):" "$tmp/dd"
a=$(median "$tmp/add")
ceiling=$tmp/sha by=Go
if [ -s "$tmp/openssl" ]; then ceiling=$tmp/openssl by=OpenSSL; fi
h=$(median "$ceiling")
echo "medians: import $a s, SHA-256 ($by) $h s: the import runs at $(echo "scale=2; $h / $a" | bc) of the ceiling"
if [ -s "$tmp/dd" ]; then
  d=$(median "$tmp/dd")
  echo "         a copy past the page cache $d s: the import runs at $(echo "scale=2; $d / $a" | bc) of the disk's rate, which is $(echo "scale=2; $h / $d" | bc) of the SHA-256 pass"
fi
