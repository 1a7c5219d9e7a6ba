#!/usr/bin/env bash
# make demo: the whole flow on this machine. `vft devnet` starts a Solana
# localnet (LiteSVM), a VFT token, 4 miner daemons of which one is
# dishonest, and a submitter, as separate processes that find each other
# through the DHT. The submitter offers a neural-network inference with
# exact verification (3 workers, 2 must agree); the cheater is caught by
# commit-reveal and the verdict, the honest miners are paid on chain.
set -euo pipefail
cd "$(dirname "$0")/.."

VFT=${VFT:-./bin/vft}
MINERS=${MINERS:-4}
CHEATERS=${CHEATERS:-1}
WORK=$(mktemp -d -t vft-demo-XXXXXX)
DEVNET_PID=

cleanup() {
  if [ -n "$DEVNET_PID" ]; then
    kill -INT "$DEVNET_PID" 2>/dev/null || true
    wait "$DEVNET_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # exit, so that the EXIT trap cleans up once and nothing goes on

# json FILE EXPR: evaluates a JavaScript expression over the JSON in FILE
# (as j). Node.js is already required by the local Solana runtime.
json() { node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const v = eval(process.argv[2]); console.log(Array.isArray(v) ? v.join("\n") : v)' "$1" "$2"; }

echo "== VFT demo: starting a devnet ($MINERS miners, $CHEATERS dishonest, 1 submitter) in $WORK"
"$VFT" devnet --miners "$MINERS" --cheaters "$CHEATERS" --dir "$WORK/net" >"$WORK/devnet.out" 2>"$WORK/devnet.err" &
DEVNET_PID=$!
for _ in $(seq 1 900); do
  grep -q "^devnet ready" "$WORK/devnet.out" 2>/dev/null && break
  if ! kill -0 "$DEVNET_PID" 2>/dev/null; then
    echo "demo: the devnet did not start:" >&2
    cat "$WORK/devnet.err" >&2
    DEVNET_PID=
    exit 1
  fi
  sleep 0.2
done
grep -q "^devnet ready" "$WORK/devnet.out" || { echo "demo: the devnet did not start in 3 minutes" >&2; cat "$WORK/devnet.err" >&2; exit 1; }
sed 's/^/   /' "$WORK/devnet.err"
grep -v "^devnet ready" "$WORK/devnet.out" | sed 's/^/   /'

INFO=$WORK/net/devnet.json
SUB=$(json "$INFO" 'j.nodes.find(n => n.name == "submitter").repo')
names=$(json "$INFO" 'j.nodes.map(n => n.name)')
name_of() { json "$INFO" "(j.nodes.find(n => n.peer_id == '$1') || {name: '$1'}).name"; }

balances() {
  printf '   %-10s %-46s %s\n' NODE WALLET "VFT TOKENS (base units)"
  for n in $names; do
    repo=$(json "$INFO" "j.nodes.find(n => n.name == '$n').repo")
    "$VFT" --repo "$repo" wallet balance --json >"$WORK/bal.json"
    printf '   %-10s %-46s %s\n' "$n" "$(json "$WORK/bal.json" 'j.address')" "$(json "$WORK/bal.json" 'j.tokens')"
  done
}

echo
echo "== the network table the submitter built from signed heartbeats"
for _ in $(seq 1 150); do
  n=$("$VFT" --repo "$SUB" nodes --json | grep -c '"peer_id"' || true)
  [ "$n" -ge "$MINERS" ] && break
  sleep 0.2
done
"$VFT" --repo "$SUB" nodes | sed 's/^/   /'

echo
echo "== balances before"
balances

caught=""
for attempt in 1 2 3; do
  echo
  echo "== job $attempt: neural-network inference (examples/nninfer), exact verification: 3 miners, 2 must agree"
  "$VFT" --repo "$SUB" job submit examples/nninfer/job.toml --wait -o "$WORK/result$attempt" 2>&1 | sed 's/^/   /'
  id=$("$VFT" --repo "$SUB" job list --json | json /dev/stdin 'j[0].id')
  "$VFT" --repo "$SUB" job status "$id" --json >"$WORK/status.json"
  if ! cmp -s "$WORK/result$attempt/predictions.json" examples/nninfer/expected/blobs/predictions.json; then
    echo "demo: the accepted result differs from examples/nninfer/expected/blobs/predictions.json" >&2
    exit 1
  fi
  echo "   the verified result equals the expected predictions (examples/nninfer/expected/blobs):"
  # The whole result, one prediction a line: its point is the predictions,
  # and the pretty-printed file is too long to read on a terminal.
  json "$WORK/result$attempt/predictions.json" '[j.inputs + " inputs, " + j.hidden + " hidden units, " + j.classes + " classes; " + j.predictions.length + " predictions:"].concat(j.predictions.map((p, i) => "  #" + String(i + 1).padStart(2) + "  class " + p.class + "  probs " + p.probs.map(x => x.toFixed(6)).join(" ")))' | sed 's/^/     /'
  for p in $(json "$WORK/status.json" 'j.verdict.agreed'); do
    echo "   agreed:    $(name_of "$p") ($p)"
  done
  for p in $(json "$WORK/status.json" 'j.verdict.dissented'); do
    echo "   CAUGHT:    $(name_of "$p") ($p): $(json "$WORK/status.json" "j.verdict.reasons['$p']")"
    caught="$caught $(name_of "$p")"
  done
  echo "   settlement on Solana (memo vft:1:<job>:<result>):"
  json "$WORK/status.json" 'j.payouts.map(p => "     paid " + p.amount + " to " + p.recipient + "  tx " + p.signature)'
  [ -n "$caught" ] && break
  echo "   (the unpredictable draw picked only honest miners this time; offering another job)"
done

echo
echo "== balances after"
balances
echo
if [ -n "$caught" ]; then
  echo "== done: the dishonest miner(s)$caught returned a wrong result, were named in the signed verdict, earned nothing, and are excluded from this submitter's jobs."
else
  echo "== done: the dishonest miner was not drawn in 3 jobs (each job picks 3 of $MINERS miners at random)."
fi
