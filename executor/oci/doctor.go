package oci

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"tags.cncf.io/container-device-interface/pkg/cdi"
)

// Check is one line of Doctor's report.
type Check struct {
	OK bool
	// Line says what was found; Fix, when not OK, what to do.
	Line, Fix string
}

// Doctor checks what the oci executor needs on this host: the OCI runtime
// (which one, its version) and the CDI specs for GPUs (which devices they
// define). runtime and cdiDirs are the configured ones ("" and nil: the
// defaults). GPU lines are informative: a node without GPUs needs no CDI.
func Doctor(ctx context.Context, runtime string, cdiDirs []string) []Check {
	var out []Check
	rt, err := findRuntime(runtime)
	if err != nil {
		out = append(out, Check{Line: "OCI runtime: " + err.Error(), Fix: "apt-get install crun"})
	} else {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, verr := exec.CommandContext(ctx, rt, "--version").Output()
		first, _, _ := strings.Cut(strings.TrimSpace(string(v)), "\n")
		if verr != nil {
			out = append(out, Check{Line: fmt.Sprintf("OCI runtime %s does not run: %v", rt, verr), Fix: "reinstall it: apt-get install --reinstall crun"})
		} else {
			line := fmt.Sprintf("OCI runtime: %s (%s)", rt, first)
			if hybridCgroups() && strings.HasSuffix(rt, "runc") {
				line += "; crun is not used because this host's cgroups are in hybrid v1/v2 mode"
			}
			out = append(out, Check{OK: true, Line: line})
		}
	}
	if os.Geteuid() != 0 {
		out = append(out, Check{Line: "the daemon does not run as root: containers need root (rootless containers are not supported)",
			Fix: "run the daemon as root to offer container jobs"})
	}
	if len(cdiDirs) == 0 {
		cdiDirs = cdi.DefaultSpecDirs
	}
	devs, problems := cdiDevices(cdiDirs, DefaultCDIKind)
	dirs := strings.Join(cdiDirs, ", ")
	switch {
	case len(devs) > 0:
		out = append(out, Check{OK: true, Line: fmt.Sprintf("GPUs for containers through CDI (%s): %s", dirs, strings.Join(devs, ", "))})
	default:
		out = append(out, Check{Line: fmt.Sprintf("no CDI spec for GPUs in %s: containers get no GPUs", dirs),
			Fix: "on a GPU miner, install the NVIDIA Container Toolkit and run `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`"})
	}
	for _, p := range problems {
		out = append(out, Check{Line: "CDI spec error: " + p, Fix: "fix or regenerate the spec file"})
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
