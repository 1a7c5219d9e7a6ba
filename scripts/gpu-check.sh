#!/usr/bin/env bash
# gpu-check.sh: the checks only a machine with an NVIDIA GPU can run.
#
#   make gpu-tests          # builds bin/vft and bin/gpu/*.test (any machine)
#   scripts/gpu-check.sh    # runs them (on the GPU machine; needs the NVIDIA
#                           # driver, nvidia-smi and bubblewrap)
#
# It runs the prebuilt binaries, so the GPU machine needs no Go toolchain:
# NVML detection of every GPU (hwdetect), then a native task per GPU that
# must see exactly its own GPU inside the sandbox under a cgroup memory
# limit (executor/native), then a container per GPU that must see exactly
# its own GPU, through the CDI spec (skipped without one: `nvidia-ctk cdi
# generate --output=/etc/cdi/nvidia.yaml`) and through the NVML fallback
# (executor/oci: needs crun or runc and busybox-static), then `vft hw` and
# `vft doctor`.
set -euo pipefail
cd "$(dirname "$0")/.."

for f in bin/vft bin/gpu/hwdetect.test bin/gpu/native.test bin/gpu/oci.test; do
	[ -x "$f" ] || { echo "gpu-check: $f missing: run \`make gpu-tests\` first" >&2; exit 2; }
done
command -v bwrap >/dev/null || echo "gpu-check: bwrap not found (apt-get install bubblewrap): the native check will fail" >&2

status=0
echo "== NVML detection"
(cd hwdetect && ../bin/gpu/hwdetect.test -test.run 'TestDetectGPU' -test.v -test.count=1) || status=1
echo "== a native task per GPU sees only its own"
(cd executor/native && ../../bin/gpu/native.test -test.run 'TestRealGPU' -test.v -test.count=1) || status=1
echo "== a container per GPU sees only its own (CDI, then the NVML fallback)"
ls /etc/cdi/*.yaml /etc/cdi/*.json /var/run/cdi/* >/dev/null 2>&1 || echo "gpu-check: no CDI spec: the CDI path is skipped (nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml)" >&2
(cd executor/oci && ../../bin/gpu/oci.test -test.run 'TestRealGPUContainer' -test.v -test.count=1) || status=1
echo "== vft hw"
bin/vft hw || status=1
echo "== vft doctor (no repo: the repo checks fail, the hardware lines are what counts)"
bin/vft --repo "$(mktemp -d)/repo" doctor || true
exit $status
