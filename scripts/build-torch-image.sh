#!/usr/bin/env bash
# The PyTorch image of examples/torchinfer, built from Debian packages:
# mmdebstrap installs python3, python3-torch (1.13) and python3-numpy from
# Debian bookworm into a root file system tarball (docs, man pages, locales
# and libtorch's test binaries left out), internal/cmd/rootfs2image turns it
# into a one-layer docker-archive with go-containerregistry, and, when a
# repo is given, `vft image import` adds it to that node and prints its CID.
#
#   scripts/build-torch-image.sh                 # build (or reuse) the archive, print its path
#   scripts/build-torch-image.sh --repo REPO     # ... and import it through REPO's daemon, print the CID
#
# The archive is cached in $VFT_TORCH_CACHE (default ~/.cache/vft/torch-image):
# a second run builds nothing. Remove the directory to rebuild. mmdebstrap
# needs root (or unshare) and the Debian mirror; apt-get install mmdebstrap.
set -euo pipefail
cd "$(dirname "$0")/.."

VFT=${VFT:-./bin/vft}
CACHE=${VFT_TORCH_CACHE:-${HOME:-/root}/.cache/vft/torch-image}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
REPO=
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) REPO=${2:?--repo needs a directory}; shift 2 ;;
    --repo=*) REPO=${1#--repo=}; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build-torch-image: unknown argument $1 (use --repo REPO)" >&2; exit 2 ;;
  esac
done

ARCHIVE=$CACHE/torch-image.tar
mkdir -p "$CACHE"
if [ -s "$ARCHIVE" ]; then
  echo "build-torch-image: cached $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)); remove $CACHE to rebuild" >&2
else
  start=$(date +%s)
  if [ ! -s "$CACHE/rootfs.tar" ]; then
  command -v mmdebstrap >/dev/null || { echo "build-torch-image: mmdebstrap is missing: apt-get install mmdebstrap" >&2; exit 1; }
  echo "build-torch-image: mmdebstrap $SUITE: python3 python3-torch python3-numpy (a few minutes: about 330 packages)" >&2
  mode=root
  [ "$(id -u)" -eq 0 ] || mode=unshare
  # --skip=output/dev: no device nodes in the tarball (a miner refuses an
  # image that carries them; the runtime provides /dev).
  # SOURCE_DATE_EPOCH: mmdebstrap clamps file times to it, so two builds
  # from the same packages give the same layer.
  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} mmdebstrap \
    --mode=$mode --variant=essential --format=tar --skip=output/dev \
    --include=python3-minimal,python3-torch,python3-numpy \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/usr/lib/libtorch-test/*' \
    --dpkgopt='path-exclude=/usr/include/*' \
    --aptopt='APT::Install-Recommends "false"' \
    "$SUITE" "$CACHE/rootfs.tar.part" "$MIRROR" >&2
  mv "$CACHE/rootfs.tar.part" "$CACHE/rootfs.tar"
  fi
  go run ./internal/cmd/rootfs2image -rootfs "$CACHE/rootfs.tar" -o "$ARCHIVE.part" \
    -tag vft.example/torchinfer:1 -env PATH=/usr/local/bin:/usr/bin:/bin -env PYTHONDONTWRITEBYTECODE=1 -cmd python3 >&2
  mv "$ARCHIVE.part" "$ARCHIVE"
  # rootfs.tar stays: examples/torchinfer/train.sh runs the training in it.
  echo "build-torch-image: built $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)) in $(( $(date +%s) - start )) s" >&2
fi

if [ -z "$REPO" ]; then
  echo "$ARCHIVE"
  exit 0
fi
# Importing the same archive again gives the same CID; the daemon only
# pins what it already has.
"$VFT" --repo "$REPO" image import "$ARCHIVE"
