#!/usr/bin/env bash
# The market with miner processes (issue #22): `vft devnet` (the Solana
# localnet, a VFT token, MINERS miner daemons and a submitter, separate
# processes on loopback that found each other through the DHT), then a
# trivial k = 3 WASM job (examples/wordcount, exact verification, paid on
# the localnet) JOBS times in a row and CONCURRENT at once. Each job's own
# history (`vft job status --json`) gives the figures:
#   offer -> assigned   "offered" to "assigned" (the window closed and
#                       k workers were chosen and sent their assignments)
#   offer -> verified   to "settling" (k results in, the verdict decided)
#   offer -> done       to "done" (the localnet confirmed the payments)
# Warm-up jobs first, until every miner has compiled the module once
# (cached on disk afterwards): that is what a job on a new module costs,
# not the market.
#
#   bench/market-procs.sh                         # 4 miners, 30 in a row, 8 at once
#   MINERS=4 JOBS=12 CONCURRENT=8 bench/market-procs.sh
#   MINERS=49 JOBS=100 bench/market-procs.sh      # 50 nodes, each its own process (up to 64 miners)
set -euo pipefail
cd "$(dirname "$0")/.."
miners=${MINERS:-4}
jobs=${JOBS:-30}
concurrent=${CONCURRENT:-8}
work=$(mktemp -d -t vft-market-XXXXXX)
devnet=
cleanup() {
  if [ -n "$devnet" ]; then kill -INT "$devnet" 2>/dev/null || true; wait "$devnet" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # exit, so that the EXIT trap cleans up once and nothing goes on

make -s build examples > /dev/null
vft=./bin/vft
json() { node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const v = eval(process.argv[2]); console.log(Array.isArray(v) ? v.join("\n") : v)' "$1" "$2"; }

"$vft" devnet --miners "$miners" --dir "$work/net" > "$work/devnet.out" 2> "$work/devnet.err" &
devnet=$!
for _ in $(seq 1 900); do
  grep -q "^devnet ready" "$work/devnet.out" 2>/dev/null && break
  kill -0 "$devnet" 2>/dev/null || { cat "$work/devnet.err" >&2; devnet=; exit 1; }
  sleep 0.2
done
grep -q "^devnet ready" "$work/devnet.out" || { echo "market-procs: the devnet did not start in 3 minutes" >&2; exit 1; }
sub=$(json "$work/net/devnet.json" 'j.nodes.find(n => n.name == "submitter").repo')
for _ in $(seq 1 150); do
  [ "$("$vft" --repo "$sub" nodes --json | grep -c '"peer_id"' || true)" -ge "$miners" ] && break
  sleep 0.2
done

submit() { "$vft" --repo "$sub" job submit examples/wordcount/job.toml --json "$@" 2> "$work/submit.err" || { cat "$work/submit.err" >&2; return 1; }; }
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $miners miner processes, k = 3, $jobs jobs in a row, $concurrent at once"
# Warm-up until every miner has run the module once. The fair choice
# spreads jobs over all miners, so a large devnet takes a few per miner.
: > "$work/warm.workers"
for _ in $(seq $((miners * 3 > 20 ? miners * 3 : 20))); do
  rm -rf "$work/warm"
  submit --wait -o "$work/warm" > "$work/submit.json"
  json "$work/submit.json" 'j.workers' >> "$work/warm.workers"
  [ "$(sort -u "$work/warm.workers" | wc -l)" -ge "$miners" ] && break
done

# Jobs in a row: the next one is offered when the last is done.
: > "$work/seq.ids"
for i in $(seq "$jobs"); do
  rm -rf "$work/out"
  submit --wait -o "$work/out" > "$work/submit.json"
  json "$work/submit.json" 'j.id' >> "$work/seq.ids"
done

# Jobs at once: submitted in parallel (each `vft job submit` adds the
# module and input through the daemon first), then each waited for.
pids=()
for i in $(seq "$concurrent"); do
  "$vft" --repo "$sub" job submit examples/wordcount/job.toml --json > "$work/conc$i.json" 2> "$work/conc$i.err" &
  pids+=($!)
done
wait "${pids[@]}"
for i in $(seq "$concurrent"); do json "$work/conc$i.json" 'j.id'; done > "$work/conc.ids"
for id in $(cat "$work/conc.ids"); do
  until "$vft" --repo "$sub" job status "$id" --json > "$work/status.json" && [ "$(json "$work/status.json" 'j.state')" = done ]; do
    case "$(json "$work/status.json" 'j.state')" in failed|cancelled) echo "job $id ended $(json "$work/status.json" 'j.state')" >&2; exit 1;; esac
    sleep 0.1
  done
done

# history FILE -> "assigned_ms verified_ms done_ms offered_unix_ms done_unix_ms"
stages() {
  json "$1" '(() => { const t = s => { const h = j.history.find(h => h.state == s); return h ? Date.parse(h.at) : NaN; };
    const o = t("offered"); return [t("assigned") - o, t("settling") - o, t("done") - o, o, t("done")].join(" "); })()'
}
report() { # FILE-OF-IDS LABEL
  : > "$work/$2.stages"
  for id in $(cat "$1"); do
    "$vft" --repo "$sub" job status "$id" --json > "$work/status.json"
    stages "$work/status.json" >> "$work/$2.stages"
  done
  node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(l => l.split(" ").map(Number));
    const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)]; };
    const col = i => rows.map(r => r[i]);
    for (const [name, i] of [["offer -> assigned", 0], ["offer -> verified", 1], ["offer -> done (paid)", 2]])
      console.log(`${process.argv[2]}: ${name}: p50 ${pct(col(i), 50)} ms, p90 ${pct(col(i), 90)} ms, p99 ${pct(col(i), 99)} ms, max ${Math.max(...col(i))} ms`);
    if (process.argv[2] == "at once") {
      const span = (Math.max(...col(4)) - Math.min(...col(3))) / 1000;
      console.log(`at once: ${rows.length} jobs from the first offer to the last done in ${span.toFixed(2)} s: ${(rows.length / span).toFixed(2)} jobs/s`);
    }' "$work/$2.stages" "$2"
}
report "$work/seq.ids" "in a row"
report "$work/conc.ids" "at once"
