package oci

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/vft-network/vft/executor"
)

// Names of Doctor's checks.
const (
	CheckRuntime = "OCI runtime"
	CheckRoot    = "containers need root"
	CheckCDI     = "GPUs for containers (CDI)"
)

// Doctor checks what the oci executor needs on this host: the OCI runtime
// (which one, its version), root, and the CDI specs for GPUs (which devices
// they define). runtime and cdiDirs are the configured ones ("" and nil:
// the defaults). A host without CDI GPU devices gets a warning: a node
// without GPUs needs none.
func Doctor(ctx context.Context, runtime string, cdiDirs []string) []executor.Check {
	var out []executor.Check
	rt, err := findRuntime(runtime)
	if err != nil {
		out = append(out, executor.Check{Name: CheckRuntime, Severity: executor.SeverityFail, Detail: err.Error(),
			Fix: "apt-get install crun, or remove oci from market.executors"})
	} else {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, verr := exec.CommandContext(ctx, rt, "--version").Output()
		first, _, _ := strings.Cut(strings.TrimSpace(string(v)), "\n")
		if verr != nil {
			out = append(out, executor.Check{Name: CheckRuntime, Severity: executor.SeverityFail,
				Detail: fmt.Sprintf("%s does not run: %v", rt, verr), Fix: "reinstall it: apt-get install --reinstall crun"})
		} else {
			detail := fmt.Sprintf("%s (%s)", rt, first)
			if hybridCgroups() && strings.HasSuffix(rt, "runc") {
				detail += "; not crun: this host's cgroups are in hybrid v1/v2 mode, which crun refuses"
			}
			out = append(out, executor.Check{Name: CheckRuntime, Severity: executor.SeverityOK, Detail: detail})
		}
	}
	if os.Geteuid() != 0 {
		out = append(out, executor.Check{Name: CheckRoot, Severity: executor.SeverityFail,
			Detail: "the daemon does not run as root (rootless containers are not supported)",
			Fix:    "run the daemon as root to offer container jobs, or remove oci from market.executors"})
	}
	if len(cdiDirs) == 0 {
		cdiDirs = cdi.DefaultSpecDirs
	}
	devs, problems := cdiDevices(cdiDirs, DefaultCDIKind)
	dirs := strings.Join(cdiDirs, ", ")
	switch {
	case len(devs) > 0:
		out = append(out, executor.Check{Name: CheckCDI, Severity: executor.SeverityOK, Detail: fmt.Sprintf("%s in %s", strings.Join(devs, ", "), dirs)})
	default:
		out = append(out, executor.Check{Name: CheckCDI, Severity: executor.SeverityWarn,
			Detail: fmt.Sprintf("no CDI spec for GPUs in %s: containers get no GPUs (injection without CDI is not implemented)", dirs),
			Fix:    "on a GPU miner, install the NVIDIA Container Toolkit and run `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`"})
	}
	for _, p := range problems {
		out = append(out, executor.Check{Name: CheckCDI, Severity: executor.SeverityWarn, Detail: "spec error: " + p, Fix: "fix or regenerate the spec file"})
	}
	return out
}

// Info is what a miner can advertise about its container support.
type Info struct {
	// Runtime is the OCI runtime binary and RuntimeVersion the first line
	// of its --version.
	Runtime, RuntimeVersion string
	// CDIGPUs are the GPU devices the CDI specs define
	// ("nvidia.com/gpu=GPU-…", "nvidia.com/gpu=0", "nvidia.com/gpu=all").
	CDIGPUs []string
}

// Info reports the executor's runtime and the CDI GPU devices, read now
// (a spec written after start counts).
func (e *Executor) Info(ctx context.Context) Info {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, _ := exec.CommandContext(ctx, e.cfg.Runtime, "--version").Output()
	first, _, _ := strings.Cut(strings.TrimSpace(string(v)), "\n")
	devs, _ := cdiDevices(e.cfg.CDISpecDirs, e.cfg.CDIKind)
	return Info{Runtime: e.cfg.Runtime, RuntimeVersion: first, CDIGPUs: devs}
}
