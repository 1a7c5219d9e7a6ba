package oci

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	cdispecs "tags.cncf.io/container-device-interface/specs-go"
)

// ErrNoGPUPath: a task asks for GPUs that neither a CDI spec nor NVML
// makes available to containers.
var ErrNoGPUPath = errors.New("GPU not available to containers")

// GPUNodes maps a GPU's NVML UUID to its device node, /dev/nvidia<minor>
// (NVML's minor number, which need not equal its index). The node's
// hardware detector satisfies it.
type GPUNodes interface {
	DeviceNode(uuid string) (string, error)
}

// gpuControlNodes are shared by all GPUs: CUDA needs them besides
// /dev/nvidiaN; each is bound where the host has it.
var gpuControlNodes = []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"}

// driverLibraries are the sonames of the driver's user-space libraries a
// CUDA program loads (the compute set of the NVIDIA Container Toolkit):
// they must match the kernel driver, so they come from the host, never
// from the image.
var driverLibraries = []string{
	"libnvidia-ml.so.1", "libcuda.so.1", "libcudadebugger.so.1", "libnvidia-ptxjitcompiler.so.1",
	"libnvidia-nvvm.so.4", "libnvidia-gpucomp.so", "libnvidia-allocator.so.1", "libnvidia-cfg.so.1", "libnvidia-opencl.so.1",
}

// gpuTools are the driver's programs a container gets where the host has
// them (nvidia-smi, so that a job can log what it sees).
var gpuTools = []string{"/usr/bin/nvidia-smi"}

// gpuHost is what injection without CDI reads of the host. Tests point
// root at a directory of stand-in device nodes and libraries.
type gpuHost struct {
	// root prefixes every host path ("" or "/": the real host).
	root string
	// libs lists the driver libraries' paths as the dynamic loader knows
	// them (`ldconfig -p`), relative to root.
	libs func() ([]string, error)
}

func realGPUHost() gpuHost { return gpuHost{root: "/", libs: ldconfigLibraries} }

func (h gpuHost) path(p string) string { return filepath.Join(h.root, p) }

// ldconfigLibraries reads `ldconfig -p` for the driver libraries of this
// machine's architecture.
func ldconfigLibraries() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bin, err := exec.LookPath("ldconfig")
	if err != nil {
		bin = "/sbin/ldconfig"
	}
	out, err := exec.CommandContext(ctx, bin, "-p").Output()
	if err != nil {
		return nil, fmt.Errorf("ldconfig -p: %w", err)
	}
	return parseLdconfig(out, runtime.GOARCH), nil
}

// parseLdconfig picks the driver libraries for goarch out of `ldconfig -p`
// lines like "\tlibcuda.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcuda.so.1".
func parseLdconfig(out []byte, goarch string) []string {
	abi := map[string]string{"amd64": "x86-64", "arm64": "AArch64"}[goarch]
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimSpace(sc.Text()), " (")
		if !ok {
			continue
		}
		flags, path, ok := strings.Cut(rest, ") => ")
		if !ok || abi != "" && !strings.Contains(flags, abi) {
			continue
		}
		if slices.ContainsFunc(driverLibraries, func(l string) bool { return name == l || strings.HasPrefix(name, l+".") }) &&
			!slices.Contains(paths, path) {
			paths = append(paths, path)
		}
	}
	return paths
}

// nvmlEdits builds, for GPUs no CDI spec names, the edits the NVIDIA
// toolkit would: each GPU's device node (from NVML's minor number), the
// control nodes the host has, the driver's libraries and nvidia-smi
// bound read-only at the paths the host has them. Device types and
// numbers, and the device cgroup rules, come from the host nodes when
// the CDI library applies the edits.
func nvmlEdits(gpus GPUNodes, host gpuHost, uuids []string) (*cdi.ContainerEdits, error) {
	if gpus == nil {
		return nil, fmt.Errorf("this node gives no NVML GPUs to containers")
	}
	edits := &cdispecs.ContainerEdits{}
	for _, uuid := range uuids {
		node, err := gpus.DeviceNode(uuid)
		if err != nil {
			return nil, fmt.Errorf("GPU %s: %w", uuid, err)
		}
		if _, err := os.Stat(host.path(node)); err != nil {
			return nil, fmt.Errorf("GPU %s: device node %s: %w", uuid, node, err)
		}
		edits.DeviceNodes = append(edits.DeviceNodes, &cdispecs.DeviceNode{Path: node, HostPath: host.path(node)})
	}
	for _, node := range gpuControlNodes {
		if _, err := os.Stat(host.path(node)); err == nil {
			edits.DeviceNodes = append(edits.DeviceNodes, &cdispecs.DeviceNode{Path: node, HostPath: host.path(node)})
		}
	}
	libs, err := host.libs()
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(libs, func(p string) bool { return filepath.Base(p) == "libcuda.so.1" }) {
		return nil, fmt.Errorf("the driver library libcuda.so.1 is not known to the dynamic loader (ldconfig -p)")
	}
	ro := []string{"ro", "nosuid", "nodev", "bind"}
	for _, lib := range libs {
		edits.Mounts = append(edits.Mounts, &cdispecs.Mount{HostPath: host.path(lib), ContainerPath: lib, Options: ro})
	}
	for _, tool := range gpuTools {
		if _, err := os.Stat(host.path(tool)); err == nil {
			edits.Mounts = append(edits.Mounts, &cdispecs.Mount{HostPath: host.path(tool), ContainerPath: tool, Options: ro})
		}
	}
	// What the toolkit's spec sets too: the container's view is its
	// device nodes, whatever a library reads of the environment.
	edits.Env = []string{"NVIDIA_VISIBLE_DEVICES=void"}
	return &cdi.ContainerEdits{ContainerEdits: edits}, nil
}

// GPU paths, as Doctor names them.
const (
	gpuPathCDI  = "CDI"
	gpuPathNVML = "NVML fallback"
)

// injectGPUs gives the task its GPUs: through the CDI specs when they
// name every one (the toolkit knows the driver best), else through the
// device nodes and libraries found from NVML. It says which it used.
func injectGPUs(spec *specs.Spec, cdiDirs []string, kind string, gpus GPUNodes, host gpuHost, uuids []string) (string, error) {
	if len(uuids) == 0 {
		return "", nil
	}
	err := gpuDevices(spec, cdiDirs, kind, uuids)
	if err == nil {
		return gpuPathCDI, nil
	}
	if !errors.Is(err, errUnresolved) {
		return "", err
	}
	edits, ferr := nvmlEdits(gpus, host, uuids)
	if ferr == nil {
		ferr = edits.Apply(spec)
	}
	if ferr != nil {
		return "", fmt.Errorf("%w: %w; without CDI: %v", ErrNoGPUPath, err, ferr)
	}
	return gpuPathNVML, nil
}

// nvmlFallbackStatus says whether injection without CDI can work on host:
// the GPU device nodes and driver libraries it found, or what is missing.
func nvmlFallbackStatus(host gpuHost) (nodes, libs []string, missing string) {
	nodes, _ = filepath.Glob(host.path("/dev/nvidia[0-9]*"))
	for i, n := range nodes {
		nodes[i] = "/dev/" + filepath.Base(n)
	}
	if len(nodes) == 0 {
		return nil, nil, "no /dev/nvidiaN device node (no NVIDIA GPU, or its driver is not loaded)"
	}
	libs, err := host.libs()
	if err != nil {
		return nodes, nil, err.Error()
	}
	if !slices.ContainsFunc(libs, func(p string) bool { return filepath.Base(p) == "libcuda.so.1" }) {
		return nodes, libs, "libcuda.so.1 is not known to the dynamic loader (ldconfig -p)"
	}
	return nodes, libs, ""
}
