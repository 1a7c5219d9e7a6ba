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
	CheckCDI     = "GPUs for containers"
	CheckUserNS  = "container user namespace"
)

// Doctor checks what the oci executor needs on this host: the OCI runtime
// (which one, its version), root, and how GPUs reach a container: CDI
// (which devices the specs define), the NVML fallback (device nodes and
// driver libraries found on the host), or none. runtime and cdiDirs are
// the configured ones ("" and nil: the defaults). A host with no path for
// GPUs gets a warning: a node without GPUs needs none.
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
	return append(out, gpuChecks(cdiDirs, realGPUHost())...)
}

// UserNamespaceCheck says whose ids a container runs with
// (executor.oci.user_namespace and host_id_base), and whether this kernel
// allows it.
func UserNamespaceCheck(enabled bool, base uint32) executor.Check {
	c := executor.Check{Name: CheckUserNS}
	if !enabled {
		c.Severity, c.Detail = executor.SeverityWarn, "off: a container's root is the host's root (without capabilities)"
		c.Fix = "set executor.oci.user_namespace = true where the kernel allows user namespaces"
		return c
	}
	if err := CheckHostIDBase(base); err != nil {
		c.Severity, c.Detail, c.Fix = executor.SeverityFail, err.Error(), fmt.Sprintf("set executor.oci.host_id_base to a free range, e.g. %d", DefaultHostIDBase)
		return c
	}
	if err := userNamespaceSupported(); err != nil {
		c.Severity, c.Detail, c.Fix = executor.SeverityFail, err.Error(), "sysctl -w user.max_user_namespaces=15000"
		return c
	}
	c.Severity = executor.SeverityOK
	c.Detail = fmt.Sprintf("a container's ids 0-%d are host ids %d-%d", IDRangeSize-1, base, uint64(base)+IDRangeSize-1)
	return c
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

// cdiGenerate is how to give a GPU miner CDI specs.
const cdiGenerate = "install the NVIDIA Container Toolkit and run `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`"

// gpuChecks says which path GPUs take into containers on host: CDI when a
// spec defines GPU devices, else the NVML fallback when the host has GPU
// device nodes and libcuda.so.1, else none, with how to fix it.
func gpuChecks(cdiDirs []string, host gpuHost) []executor.Check {
	if len(cdiDirs) == 0 {
		cdiDirs = cdi.DefaultSpecDirs
	}
	var out []executor.Check
	devs, problems := cdiDevices(cdiDirs, DefaultCDIKind)
	dirs := strings.Join(cdiDirs, ", ")
	nodes, libs, missing := nvmlFallbackStatus(host)
	switch {
	case len(devs) > 0:
		out = append(out, executor.Check{Name: CheckCDI, Severity: executor.SeverityOK,
			Detail: fmt.Sprintf("%s: %s in %s", gpuPathCDI, strings.Join(devs, ", "), dirs)})
	case missing == "":
		out = append(out, executor.Check{Name: CheckCDI, Severity: executor.SeverityOK,
			Detail: fmt.Sprintf("%s: no CDI spec for GPUs in %s; containers get %s, the control nodes and %d driver libraries (%s) found on the host",
				gpuPathNVML, dirs, strings.Join(nodes, ", "), len(libs), strings.Join(libs, ", ")),
			Fix: "CDI is preferred (the toolkit knows the driver's files best): " + cdiGenerate})
	case len(nodes) > 0:
		out = append(out, executor.Check{Name: CheckCDI, Severity: executor.SeverityWarn,
			Detail: fmt.Sprintf("none: no CDI spec for GPUs in %s, and the NVML fallback cannot serve %s: %s", dirs, strings.Join(nodes, ", "), missing),
			Fix:    cdiGenerate + "; or install the driver's user-space libraries (apt-get install libcuda1 libnvidia-ml1)"})
	default:
		out = append(out, executor.Check{Name: CheckCDI, Severity: executor.SeverityWarn,
			Detail: fmt.Sprintf("none: no CDI spec for GPUs in %s and %s: containers get no GPUs", dirs, missing),
			Fix:    "on a GPU miner, " + cdiGenerate})
	}
	for _, p := range problems {
		out = append(out, executor.Check{Name: CheckCDI, Severity: executor.SeverityWarn, Detail: "spec error: " + p, Fix: "fix or regenerate the spec file"})
	}
	return out
}

// GPUAccess says how containers get GPUs on this host, for the node's
// heartbeat: "cdi" when a CDI spec defines GPU devices, "nvml" when the
// executor injects the device nodes and driver libraries itself, "" when
// containers get no GPUs. It reads the spec directories and runs
// `ldconfig -p`: call it at start, not per message.
func (e *Executor) GPUAccess() string {
	host := e.cfg.gpuHost
	if host.libs == nil {
		host = realGPUHost()
	}
	return gpuAccess(e.cfg.CDISpecDirs, e.cfg.CDIKind, host)
}

// gpuAccess is the path GPUs take into containers on host, as Doctor's
// gpuChecks decides it.
func gpuAccess(cdiDirs []string, kind string, host gpuHost) string {
	if len(cdiDirs) == 0 {
		cdiDirs = cdi.DefaultSpecDirs
	}
	if devs, _ := cdiDevices(cdiDirs, kind); len(devs) > 0 {
		return "cdi"
	}
	if nodes, _, missing := nvmlFallbackStatus(host); len(nodes) > 0 && missing == "" {
		return "nvml"
	}
	return ""
}
