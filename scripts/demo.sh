#!/usr/bin/env bash
# make demo: starts a local VFT network of separate `vft daemon` processes,
# shows them discover each other through the DHT (miner1 starts the network;
# every other node is given only its address) and build the network table
# from heartbeats, then runs the main job: a neural-network inference
# offered by the submitter, run by three miners, accepted when two agree.
set -euo pipefail
cd "$(dirname "$0")/.."

VFT=${VFT:-./bin/vft}
MINERS=${MINERS:-4}
WORK=$(mktemp -d -t vft-demo-XXXXXX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Loopback only: no multicast, no router port mapping, kernel-chosen ports.
export VFT_API_LISTEN=127.0.0.1:0
export VFT_P2P_LISTEN=/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1
export VFT_P2P_MDNS=false
export VFT_CHAIN_SETTLE=false
export VFT_P2P_NAT_PORTMAP=false
export VFT_P2P_RENDEZVOUS=vft/1/demo
export VFT_P2P_DISCOVERY_INTERVAL=2s
export VFT_LOG_FORMAT=json
export VFT_HEARTBEAT_INTERVAL=5s

names=()
for i in $(seq 1 "$MINERS"); do names+=("miner$i"); done
names+=("submitter")

start_node() { # name mode
  local name=$1 mode=$2
  "$VFT" --repo "$WORK/$name" init --mode "$mode" >/dev/null
  "$VFT" --repo "$WORK/$name" daemon >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    grep -q "daemon ready" "$WORK/$name.out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: $name did not start; its log:" >&2
  cat "$WORK/$name.log" >&2
  exit 1
}

echo "== VFT demo: a local mesh of $((MINERS + 1)) daemons in $WORK"
start_node miner1 miner
BOOT=$("$VFT" --repo "$WORK/miner1" id --json | sed -n 's/^    "\(\/ip4\/[^"]*\)",\{0,1\}$/\1/p' | paste -sd, -)
echo "   miner1 started the network at $BOOT"
export VFT_P2P_BOOTSTRAP=$BOOT
for name in "${names[@]:1}"; do
  mode=miner; [ "$name" = submitter ] && mode=light
  start_node "$name" "$mode"
  echo "   $name ($mode) started, knowing only miner1"
done

want=$(( ${#names[@]} - 1 ))
echo "== waiting for every node to find the other $want through the DHT"
start=$(date +%s%N)
for _ in $(seq 1 300); do
  complete=1
  for name in "${names[@]}"; do
    n=$("$VFT" --repo "$WORK/$name" peers --json | grep -c '"id"' || true)
    [ "$n" -ge "$want" ] || complete=0
  done
  [ $complete = 1 ] && break
  sleep 0.2
done
took=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')

for name in "${names[@]}"; do
  echo
  echo "-- $name: $("$VFT" --repo "$WORK/$name" id --json | grep '"peer_id"' | cut -d'"' -f4)"
  "$VFT" --repo "$WORK/$name" peers
done
echo
if [ $complete = 1 ]; then
  echo "== full mesh: every node is connected to all $want others (took ${took}s)"
  echo "   only miner1's address was given out; the rest came from the DHT."
else
  echo "== mesh incomplete after 60s; logs are in $WORK" >&2
  trap - EXIT
  exit 1
fi

echo
echo "== the network table the submitter built from signed heartbeats (no registration)"
for _ in $(seq 1 100); do
  n=$("$VFT" --repo "$WORK/submitter" nodes --json | grep -c '"peer_id"' || true)
  [ "$n" -ge "$MINERS" ] && break
  sleep 0.2
done
"$VFT" --repo "$WORK/submitter" nodes

echo
echo "== the submitter offers a job: neural-network inference (examples/nninfer) on 3 miners, exact verification (2 of 3 must agree)"
"$VFT" --repo "$WORK/submitter" job submit \
  --wasm bin/examples/nninfer.wasm --input examples/nninfer/testdata/ \
  --redundancy 3 --verify exact --timeout 1m --reward 5000 \
  --wait -o "$WORK/result"
echo
echo "-- predictions (first lines of result/predictions.json):"
head -n 12 "$WORK/result/predictions.json"
if cmp -s "$WORK/result/predictions.json" examples/nninfer/expected/blobs/predictions.json; then
  echo "== the verified result equals the expected output (examples/nninfer/expected/blobs)"
else
  echo "== the result differs from examples/nninfer/expected/blobs/predictions.json" >&2
  exit 1
fi
