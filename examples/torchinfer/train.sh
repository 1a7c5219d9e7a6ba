#!/usr/bin/env bash
# Retrains the torchinfer model in the example's own Python/PyTorch root file
# system (the one scripts/build-torch-image.sh builds and caches), in a
# chroot, and rewrites weights.pt and data/x.npy, data/labels.npy. Needs root.
# The committed files came from this script; after retraining, the
# weights' CID changes: update job.toml (or let `make demo-ai` add them).
set -euo pipefail
cd "$(dirname "$0")"
CACHE=${VFT_TORCH_CACHE:-${HOME:-/root}/.cache/vft/torch-image}
[ -s "$CACHE/rootfs.tar" ] || ../../scripts/build-torch-image.sh >/dev/null
ROOT=$(mktemp -d -t vft-torch-train-XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
tar -xf "$CACHE/rootfs.tar" -C "$ROOT"
mkdir -p "$ROOT/app" "$ROOT/out"
cp app/*.py "$ROOT/app/"
# Its own mount and PID namespaces with /proc (torch reads /proc/cpuinfo)
# and the host's /dev (the image has none: the container runtime makes it).
unshare --mount --pid --fork --mount-proc="$ROOT/proc" sh -c 'mount --rbind /dev "$1/dev" && exec chroot "$1" /usr/bin/env -i PATH=/usr/bin:/bin PYTHONDONTWRITEBYTECODE=1 python3 /app/train.py /out' sh "$ROOT"
cp "$ROOT/out/weights.pt" weights.pt
mkdir -p data
cp "$ROOT/out/x.npy" "$ROOT/out/labels.npy" data/
echo "train.sh: wrote weights.pt ($(stat -c %s weights.pt) bytes), data/x.npy, data/labels.npy"
