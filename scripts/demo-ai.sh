#!/usr/bin/env bash
# make demo-ai: a PyTorch inference job verified across 3 miners on the
# devnet. Stages: build (or reuse) the Debian python3-torch image, start
# `vft devnet --executors wasm,oci` (3 miners, a submitter), import the
# image and add the model weights as content on the submitter, submit
# examples/torchinfer (redundancy 3, verify = "tolerance") and wait; then
# the same job again, warm: the miners fetch nothing and unpack nothing.
# Needs root (the oci executor), crun or runc, mmdebstrap for the first run.
set -euo pipefail
cd "$(dirname "$0")/.."

VFT=${VFT:-./bin/vft}
MINERS=${MINERS:-3}
EX=examples/torchinfer
WORK=$(mktemp -d -t vft-demo-ai-XXXXXX)
SPEC=$EX/.demo-job.toml # next to job.toml: its relative inputs resolve from there
DEVNET_PID=

cleanup() {
  if [ -n "$DEVNET_PID" ]; then
    kill -INT "$DEVNET_PID" 2>/dev/null || true
    wait "$DEVNET_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK" "$SPEC"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # exit, so that the EXIT trap cleans up once and nothing goes on

[ "$(id -u)" -eq 0 ] || { echo "demo-ai: the oci executor needs root: run it as root (sudo make demo-ai)" >&2; exit 1; }
command -v crun >/dev/null || command -v runc >/dev/null || { echo "demo-ai: install crun: apt-get install crun" >&2; exit 1; }
json() { node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const v = eval(process.argv[2]); console.log(Array.isArray(v) ? v.join("\n") : v)' "$1" "$2"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T0=$(now)

echo "== 1. the image: Debian bookworm python3 + python3-torch + python3-numpy (scripts/build-torch-image.sh)"
t=$(now)
ARCHIVE=$(scripts/build-torch-image.sh)
echo "   $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)), $(since "$t") s"

echo
echo "== 2. a devnet: $MINERS miners offering wasm and oci, 1 submitter"
"$VFT" devnet --miners "$MINERS" --executors wasm,oci --dir "$WORK/net" >"$WORK/devnet.out" 2>"$WORK/devnet.err" &
DEVNET_PID=$!
for _ in $(seq 1 900); do
  grep -q "^devnet ready" "$WORK/devnet.out" 2>/dev/null && break
  if ! kill -0 "$DEVNET_PID" 2>/dev/null; then
    echo "demo-ai: the devnet did not start:" >&2; cat "$WORK/devnet.err" >&2; DEVNET_PID=; exit 1
  fi
  sleep 0.2
done
grep -q "^devnet ready" "$WORK/devnet.out" || { echo "demo-ai: the devnet did not start in 3 minutes" >&2; cat "$WORK/devnet.err" >&2; exit 1; }
sed 's/^/   /' "$WORK/devnet.err"
INFO=$WORK/net/devnet.json
SUB=$(json "$INFO" 'j.nodes.find(n => n.name == "submitter").repo')
MINER_REPOS=$(json "$INFO" 'j.nodes.filter(n => n.mode == "miner").map(n => n.name + "=" + n.repo)')

echo
echo "== 3. content: the image and the weights, added on the submitter"
t=$(now)
IMAGE=$("$VFT" --repo "$SUB" image import "$ARCHIVE" 2>"$WORK/import.err" | tail -1)
echo "   image    $IMAGE  (vft image import, $(since "$t") s)"
WEIGHTS=$("$VFT" --repo "$SUB" add "$EX/weights.pt" | tail -1)
echo "   weights  $WEIGHTS  (vft add $EX/weights.pt)"
# job.toml names the committed weights by CID; a retrained weights.pt has another.
sed -e "s|^image = .*|image = \"$IMAGE\"|" -e "s|\"baf[a-z0-9]*:model\"|\"$WEIGHTS:model\"|" "$EX/job.toml" >"$SPEC"

stored() { # the bytes each miner's store holds
  for m in $MINER_REPOS; do "$VFT" --repo "${m#*=}" repo stat --json | json /dev/stdin 'j.bytes'; done
}
run_job() { # run_job N LABEL
  local before after t id
  before=($(stored))
  t=$(now)
  echo
  echo "== $1. the job ($2): python3 /input/app/infer.py in the image on 3 miners, verify = tolerance"
  "$VFT" --repo "$SUB" job submit "$SPEC" --wait -o "$WORK/result$1" 2>&1 | sed 's/^/   /'
  local took; took=$(since "$t")
  after=($(stored))
  id=$("$VFT" --repo "$SUB" job list --json | json /dev/stdin 'j[0].id')
  "$VFT" --repo "$SUB" job status "$id" --json >"$WORK/status.json"
  echo "   $(json "$WORK/status.json" '"state " + j.state + ", verdict: " + (j.verdict.agreed || []).length + " miners agreed"')"
  local i=0
  for m in $MINER_REPOS; do
    echo "   ${m%%=*} stored $(( ${after[$i]} - ${before[$i]} )) new bytes"
    i=$((i + 1))
  done
  echo "   submit to verified result: $took s"
  eval "TOOK$1=$took"
}
run_job 4 "cold: each miner fetches the image and weights by CID and unpacks the image"
ls -l "$WORK/result4" | sed 's/^/   /'
# The result, read with Node.js (already needed by the localnet): .npy is
# a short header, then the raw little-endian array.
node - "$WORK/result4" "$EX/data/labels.npy" <<'JS' | sed 's/^/   /'
const fs = require("fs");
function npy(path) {
  const b = fs.readFileSync(path);
  const hlen = b.readUInt16LE(8), header = b.toString("latin1", 10, 10 + hlen);
  const descr = /'descr': *'([^']*)'/.exec(header)[1], shape = /'shape': *\(([^)]*)\)/.exec(header)[1];
  const data = b.buffer.slice(b.byteOffset + 10 + hlen, b.byteOffset + b.length);
  const arr = descr === "<f4" ? new Float32Array(data) : Array.from(new BigInt64Array(data), Number);
  return { descr, shape: shape.split(",").filter(s => s.trim()).map(Number), arr };
}
const [dir, labelsPath] = process.argv.slice(2);
const logits = npy(dir + "/logits.npy"), classes = npy(dir + "/classes.npy"), labels = npy(labelsPath);
const right = classes.arr.filter((c, i) => c === labels.arr[i]).length;
console.log(`logits.npy ${logits.descr} (${logits.shape.join("x")}); classes.npy: accuracy against data/labels.npy ${(right / labels.arr.length).toFixed(3)}`);
console.log(`first 10 predicted classes [${classes.arr.slice(0, 10)}], labels [${labels.arr.slice(0, 10)}]`);
console.log(`logits of sample 0: [${Array.from(logits.arr.slice(0, 10), x => x.toFixed(3)).join(", ")}]`);
JS
run_job 5 "warm: the image and weights are cached on every miner"
echo
echo "== done in $(since "$T0") s: cold job $TOOK4 s, warm job $TOOK5 s"
