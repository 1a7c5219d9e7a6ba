package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/vft-network/vft/executor"
)

// standInGPUs answers DeviceNode as NVML would: /dev/nvidia<minor>.
type standInGPUs map[string]string

func (g standInGPUs) DeviceNode(uuid string) (string, error) {
	if n, ok := g[uuid]; ok {
		return n, nil
	}
	return "", fmt.Errorf("no GPU with UUID %s", uuid)
}

const standInLibDir = "/usr/lib/x86_64-linux-gnu"

// standInHost is a host root with stand-ins for one GPU whose NVML minor
// number is 1 (/dev/nvidia1, a char device 1:3, /dev/null's numbers),
// /dev/nvidiactl (1:5, /dev/zero's), the driver's libcuda.so.1 and
// libnvidia-ml.so.1 as ldconfig would list them, and nvidia-smi. withLibs
// false leaves the libraries out.
func standInHost(t *testing.T, withLibs bool) gpuHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mknod of the stand-in GPU devices needs root")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	for name, minor := range map[string]uint32{"nvidia1": 3, "nvidiactl": 5} {
		p := filepath.Join(root, "dev", name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, minor))); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o666); err != nil { // whatever the umask: the golden config shows the mode
			t.Fatal(err)
		}
	}
	var libs []string
	if withLibs {
		os.MkdirAll(filepath.Join(root, standInLibDir), 0o755)
		for _, lib := range []string{"libcuda.so.1", "libnvidia-ml.so.1"} {
			p := filepath.Join(standInLibDir, lib)
			if err := os.WriteFile(filepath.Join(root, p), []byte("stand-in "+lib), 0o644); err != nil {
				t.Fatal(err)
			}
			libs = append(libs, p)
		}
	}
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/nvidia-smi"), []byte("#!/bin/sh\necho stand-in nvidia-smi\n"), 0o755)
	return gpuHost{root: root, libs: func() ([]string, error) { return libs, nil }}
}

func TestParseLdconfig(t *testing.T) {
	out := []byte(`1234 libs found in cache ` + "`/etc/ld.so.cache'" + `
	libnvidia-ml.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libnvidia-ml.so.1
	libnvidia-ml.so.1 (libc6) => /lib/i386-linux-gnu/libnvidia-ml.so.1
	libnvidia-gpucomp.so.550.54.15 (libc6,x86-64) => /lib/x86_64-linux-gnu/libnvidia-gpucomp.so.550.54.15
	libcuda.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcuda.so.1
	libcuda.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libcuda.so
	libcudart.so.12 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudart.so.12
	libc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
	libcuda.so.1 (libc6,AArch64) => /lib/aarch64-linux-gnu/libcuda.so.1
`)
	cases := []struct {
		goarch string
		want   []string
	}{
		{"amd64", []string{"/lib/x86_64-linux-gnu/libnvidia-ml.so.1", "/lib/x86_64-linux-gnu/libnvidia-gpucomp.so.550.54.15", "/lib/x86_64-linux-gnu/libcuda.so.1"}},
		{"arm64", []string{"/lib/aarch64-linux-gnu/libcuda.so.1"}},
	}
	for _, tc := range cases {
		t.Run(tc.goarch, func(t *testing.T) {
			if got := parseLdconfig(out, tc.goarch); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// Without a CDI spec, the GPU's device node (by NVML minor number, not
// index), the control nodes the host has, the driver's libraries and
// nvidia-smi reach the container: the golden config shows them all.
func TestNVMLFallbackGolden(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the golden config lists amd64's seccomp architectures")
	}
	host := standInHost(t, true)
	spec := buildSpec(goldenParams())
	via, err := injectGPUs(spec, []string{t.TempDir()}, DefaultCDIKind, standInGPUs{"GPU-1111": "/dev/nvidia1"}, host, []string{"GPU-1111"})
	if err != nil || via != gpuPathNVML {
		t.Fatalf("injectGPUs: %q, %v", via, err)
	}
	got, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(bytes.ReplaceAll(got, []byte(host.root), []byte("/HOST")), '\n')
	golden := filepath.Join("testdata", "config.nvml.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestNVMLFallbackGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("runtime config differs from %s (rerun with -update if the change is intended):\n%s", golden, got)
	}
}

// A CDI spec that names the GPU wins over the fallback.
func TestCDIPreferredOverNVML(t *testing.T) {
	dir, _, _ := testCDISpec(t)
	host := standInHost(t, true)
	spec := buildSpec(goldenParams())
	via, err := injectGPUs(spec, []string{dir}, DefaultCDIKind, standInGPUs{"GPU-1111": "/dev/nvidia1"}, host, []string{"GPU-1111"})
	if err != nil || via != gpuPathCDI {
		t.Fatalf("injectGPUs: %q, %v", via, err)
	}
	if slices.ContainsFunc(spec.Linux.Devices, func(d specsDevice) bool { return d.Path == "/dev/nvidia1" }) {
		t.Fatalf("the fallback's device was added too: %+v", spec.Linux.Devices)
	}
}

func TestNVMLFallbackRefuses(t *testing.T) {
	host := standInHost(t, true)
	noLibs := standInHost(t, false)
	gpus := standInGPUs{"GPU-1111": "/dev/nvidia1", "GPU-3333": "/dev/nvidia3"}
	cases := []struct {
		name    string
		gpus    GPUNodes
		host    gpuHost
		uuid    string
		mention string
	}{
		{"no NVML GPUs given", nil, host, "GPU-1111", "no NVML GPUs"},
		{"GPU unknown to NVML", gpus, host, "GPU-2222", "GPU-2222"},
		{"device node absent", gpus, host, "GPU-3333", "/dev/nvidia3"},
		{"no driver libraries", gpus, noLibs, "GPU-1111", "libcuda.so.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := buildSpec(goldenParams())
			_, err := injectGPUs(spec, []string{t.TempDir()}, DefaultCDIKind, tc.gpus, tc.host, []string{tc.uuid})
			if !errors.Is(err, ErrNoGPUPath) || !errors.Is(err, ErrNoCDI) || !strings.Contains(err.Error(), tc.mention) ||
				!strings.Contains(err.Error(), "nvidia-ctk cdi generate") {
				t.Fatalf("injectGPUs: %v, want ErrNoGPUPath mentioning %q and the CDI fix", err, tc.mention)
			}
			if slices.ContainsFunc(spec.Linux.Devices, func(d specsDevice) bool { return strings.HasPrefix(d.Path, "/dev/nvidia") }) {
				t.Fatalf("a refused injection left devices: %+v", spec.Linux.Devices)
			}
		})
	}
}

// The container sees the stand-in GPU node, the control node and the
// libraries, read-only, and no other GPU.
func TestRunWithNVMLGPU(t *testing.T) {
	e := newTestExecutor(t)
	e.cfg.GPUs = standInGPUs{"GPU-1111": "/dev/nvidia1"}
	e.cfg.gpuHost = standInHost(t, true)
	task := shTask(t, busyboxImage(t), "ls -l /dev/nvidia1 /dev/nvidiactl; ls /dev/nvidia0 2>/dev/null && echo LEAK; "+
		"cat "+standInLibDir+"/libcuda.so.1; echo; echo x > "+standInLibDir+"/libcuda.so.1 || echo read-only; echo $NVIDIA_VISIBLE_DEVICES")
	task.GPUs = []string{"GPU-1111"}
	res, err := e.Run(context.Background(), task)
	if err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, res.Stderr)
	}
	out := string(res.Stdout)
	if !strings.Contains(out, "1,   3") || !strings.Contains(out, "1,   5") || strings.Contains(out, "LEAK") ||
		!strings.Contains(out, "stand-in libcuda.so.1\nread-only\nvoid\n") {
		t.Fatalf("inside the container:\n%s\nstderr: %s", out, res.Stderr)
	}
}

func TestDoctorSaysGPUPath(t *testing.T) {
	cdiDir, _, _ := testCDISpec(t)
	withLibs, noLibs := standInHost(t, true), standInHost(t, false)
	noGPU := gpuHost{root: t.TempDir(), libs: func() ([]string, error) { t.Fatal("ldconfig read on a host without GPUs"); return nil, nil }}
	cases := []struct {
		name     string
		cdiDir   string
		host     gpuHost
		severity executor.Severity
		detail   string
		fix      string
		access   string // what the heartbeat says (gpu_access)
	}{
		{"CDI", cdiDir, withLibs, executor.SeverityOK, "CDI: nvidia.com/gpu=GPU-1111", "", "cdi"},
		{"NVML fallback", t.TempDir(), withLibs, executor.SeverityOK, "NVML fallback: no CDI spec for GPUs", "nvidia-ctk cdi generate", "nvml"},
		{"GPU without libraries", t.TempDir(), noLibs, executor.SeverityWarn, "none: no CDI spec for GPUs", "libcuda1", ""},
		{"no GPU", t.TempDir(), noGPU, executor.SeverityWarn, "no /dev/nvidiaN device node", "nvidia-ctk cdi generate", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := gpuChecks([]string{tc.cdiDir}, tc.host)
			c := lines[0]
			if c.Name != CheckCDI || c.Severity != tc.severity || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Fix, tc.fix) {
				t.Fatalf("check %+v, want %v mentioning %q, fix %q", c, tc.severity, tc.detail, tc.fix)
			}
			if got := gpuAccess([]string{tc.cdiDir}, DefaultCDIKind, tc.host); got != tc.access {
				t.Fatalf("gpu_access %q, want %q: the heartbeat and the doctor disagree", got, tc.access)
			}
		})
	}
}

type specsDevice = specs.LinuxDevice
