#!/usr/bin/env bash
# The container measurements of docs/BENCHMARKS.md, on a devnet of 3 miners
# (`vft devnet --executors wasm,native,oci`) on this machine:
#  1. `vft image import` of the PyTorch docker-archive vs `skopeo copy
#     docker-archive:... oci:DIR` of the same file;
#  2. cold vs warm start of a busybox and of the PyTorch job: submit to
#     verified result (3 miners), bytes each miner fetched;
#  3. runtime overhead: a trivial command as a native (bubblewrap) job and
#     as an oci (crun) job, RUNS times each; the executor's own task
#     durations from the miners' logs.
# Needs root, crun, bubblewrap, skopeo, busybox-static, and the PyTorch
# archive (scripts/build-torch-image.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."

VFT=${VFT:-./bin/vft}
RUNS=${RUNS:-5}
WORK=$(mktemp -d -t vft-cbench-XXXXXX)
DEVNET_PID=
cleanup() {
  if [ -n "$DEVNET_PID" ]; then kill -INT "$DEVNET_PID" 2>/dev/null || true; wait "$DEVNET_PID" 2>/dev/null || true; fi
  rm -rf "$WORK" examples/torchinfer/.bench-job.toml
}
trap cleanup EXIT INT TERM
json() { node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const v = eval(process.argv[2]); console.log(Array.isArray(v) ? v.join("\n") : v)' "$1" "$2"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

ARCHIVE=$(scripts/build-torch-image.sh)
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r); $(crun --version | head -1); $(bwrap --version)"
echo "date: $(date -u +%FT%TZ)"

# The busybox image: the same files as the tests' (executor/oci/ocitest).
mkdir -p "$WORK/bb/bin"
cp "$(command -v busybox)" "$WORK/bb/bin/busybox"
for a in sh echo cat tr true; do ln -s busybox "$WORK/bb/bin/$a"; done
tar --numeric-owner --owner=0 --group=0 -C "$WORK/bb" -cf "$WORK/bb.tar" .
go run ./internal/cmd/rootfs2image -rootfs "$WORK/bb.tar" -o "$WORK/busybox.tar" -tag vft.example/busybox:1 -env PATH=/bin -cmd sh 2>/dev/null

"$VFT" devnet --miners 3 --executors wasm,native,oci --dir "$WORK/net" >"$WORK/devnet.out" 2>"$WORK/devnet.err" &
DEVNET_PID=$!
for _ in $(seq 1 900); do grep -q "^devnet ready" "$WORK/devnet.out" 2>/dev/null && break; sleep 0.2; done
grep -q "^devnet ready" "$WORK/devnet.out" || { cat "$WORK/devnet.err" >&2; exit 1; }
INFO=$WORK/net/devnet.json
SUB=$(json "$INFO" 'j.nodes.find(n => n.name == "submitter").repo')
MINERS=$(json "$INFO" 'j.nodes.filter(n => n.mode == "miner").map(n => n.repo)')

echo
echo "## 1. import: $ARCHIVE ($(stat -c %s "$ARCHIVE") bytes)"
t=$(now); TORCH=$("$VFT" --repo "$SUB" image import "$ARCHIVE" 2>/dev/null | tail -1); echo "vft image import: $(since "$t") s -> $TORCH"
t=$(now); skopeo copy -q "docker-archive:$ARCHIVE" "oci:$WORK/skopeo-layout:torch" >/dev/null; echo "skopeo copy docker-archive: oci:: $(since "$t") s ($(du -sb "$WORK/skopeo-layout" | cut -f1) bytes)"
BUSYBOX=$("$VFT" --repo "$SUB" image import "$WORK/busybox.tar" 2>/dev/null | tail -1)
WEIGHTS=$("$VFT" --repo "$SUB" add examples/torchinfer/weights.pt | tail -1)

stored() { for m in $MINERS; do "$VFT" --repo "$m" repo stat --json | json /dev/stdin 'j.bytes'; done | paste -sd' '; }
run() { # run LABEL SPEC: submit, wait, print seconds and the bytes each miner stored
  local before after t
  before=$(stored); t=$(now)
  "$VFT" --repo "$SUB" job submit "$2" --wait -o "$WORK/out-$RANDOM" >"$WORK/job.log" 2>&1 || { cat "$WORK/job.log" >&2; exit 1; }
  local took; took=$(since "$t"); after=$(stored)
  echo "$1: $took s; bytes fetched per miner: $(paste <(tr ' ' '\n' <<<"$after") <(tr ' ' '\n' <<<"$before") | awk '{printf "%d ", $1-$2}')"
}
spec() { # spec FILE EXECUTOR IMAGE COMMAND
  { echo "executor = \"$2\""; [ -n "$3" ] && echo "image = \"$3\""; echo "command = [\"sh\", \"-c\", \"$4\"]"
    echo 'redundancy = 3'; echo 'timeout = "2m"'; echo 'reward = 5000'; echo "seed = $RANDOM"; } >"$1"
}

echo
echo "## 2. cold vs warm (submit to verified result on 3 miners)"
spec "$WORK/bb.toml" oci "$BUSYBOX" "echo hello | tr a-z A-Z > /output/hi.txt"
run "busybox cold" "$WORK/bb.toml"
run "busybox warm" "$WORK/bb.toml"
sed -e "s|^image = .*|image = \"$TORCH\"|" -e "s|\"baf[a-z0-9]*:model\"|\"$WEIGHTS:model\"|" examples/torchinfer/job.toml >examples/torchinfer/.bench-job.toml
run "pytorch cold" examples/torchinfer/.bench-job.toml
run "pytorch warm" examples/torchinfer/.bench-job.toml

echo
echo "## 3. runtime overhead: a trivial command, $RUNS jobs x 3 miners each"
sleep 1 # the PyTorch job's log lines are all in an earlier second than START
START=$(date -u +%FT%T) # the miners' log times are UTC RFC 3339
spec "$WORK/native.toml" native "" "echo hi > /output/hi.txt"
spec "$WORK/oci.toml" oci "$BUSYBOX" "echo hi > /output/hi.txt"
for kind in native oci; do
  t=$(now)
  for _ in $(seq 1 "$RUNS"); do
    sed -i "s/^seed = .*/seed = $RANDOM/" "$WORK/$kind.toml"
    "$VFT" --repo "$SUB" job submit "$WORK/$kind.toml" --wait -o "$WORK/o-$RANDOM" >"$WORK/job.log" 2>&1 || { cat "$WORK/job.log" >&2; exit 1; }
  done
  echo "$kind: $RUNS jobs, submit to verified result $(awk -v s="$(since "$t")" -v n="$RUNS" 'BEGIN { printf "%.2f", s / n }') s each"
done
for kind in native oci; do
  # The worker's "task ran" duration: the executor's whole run (sandbox
  # set-up, the command, tear-down), in nanoseconds.
  cat "$WORK"/net/miner*.log | grep '"msg":"task ran"' | grep "\"executor\":\"$kind\"" | grep -v '"err":"' |
    awk -v start="$START" '{ t = $0; sub(/^.*"time":"/, "", t); if (substr(t, 1, 19) >= start) print }' |
    sed 's/.*"duration":\([0-9]*\).*/\1/' | sort -n |
    awk -v k="$kind" '{ d[NR] = $1; s += $1 } END { if (NR) printf "%s task duration: n=%d, mean %.1f ms, median %.1f ms, min %.1f ms, max %.1f ms\n", k, NR, s / NR / 1e6, d[int((NR + 1) / 2)] / 1e6, d[1] / 1e6, d[NR] / 1e6 }'
done
