package oci

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/vft-network/vft/executor"
)

// testCDISpec writes a CDI spec like the one `nvidia-ctk cdi generate`
// writes, for one GPU named by UUID, with a stand-in device node (a char
// device 1:3, the numbers of /dev/null) and a stand-in driver library.
func testCDISpec(t *testing.T) (dir, node, lib string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mknod of the stand-in GPU device needs root")
	}
	dir, host := t.TempDir(), t.TempDir()
	node = filepath.Join(host, "nvidia0")
	if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	lib = filepath.Join(host, "libcuda.so.1")
	if err := os.WriteFile(lib, []byte("stand-in"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := `cdiVersion: "0.5.0"
kind: nvidia.com/gpu
devices:
- name: GPU-1111
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
      hostPath: ` + node + `
containerEdits:
  env:
  - NVIDIA_VISIBLE_DEVICES=void
  mounts:
  - hostPath: ` + lib + `
    containerPath: /usr/lib/x86_64-linux-gnu/libcuda.so.1
    options: [ro, nosuid, nodev, bind]
`
	if err := os.WriteFile(filepath.Join(dir, "nvidia.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, node, lib
}

func TestCDIInjectsTheAssignedGPU(t *testing.T) {
	dir, node, lib := testCDISpec(t)
	spec := buildSpec(goldenParams())
	if err := gpuDevices(spec, []string{dir}, DefaultCDIKind, []string{"GPU-1111"}); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(spec.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/nvidia0" })
	if i < 0 || spec.Linux.Devices[i].Type != "c" || spec.Linux.Devices[i].Major != 1 || spec.Linux.Devices[i].Minor != 3 {
		t.Fatalf("devices %+v, want /dev/nvidia0 c 1:3 (from %s)", spec.Linux.Devices, node)
	}
	allowed := slices.ContainsFunc(spec.Linux.Resources.Devices, func(r specs.LinuxDeviceCgroup) bool {
		return r.Allow && r.Type == "c" && r.Major != nil && *r.Major == 1 && r.Minor != nil && *r.Minor == 3
	})
	if !allowed {
		t.Fatalf("device cgroup %+v does not allow c 1:3", spec.Linux.Resources.Devices)
	}
	if !slices.Contains(spec.Process.Env, "NVIDIA_VISIBLE_DEVICES=void") {
		t.Errorf("env %v", spec.Process.Env)
	}
	if !slices.ContainsFunc(spec.Mounts, func(m specs.Mount) bool {
		return m.Source == lib && m.Destination == "/usr/lib/x86_64-linux-gnu/libcuda.so.1"
	}) {
		t.Errorf("driver library not mounted: %+v", spec.Mounts)
	}
}

func TestCDIMissingGPU(t *testing.T) {
	dir, _, _ := testCDISpec(t)
	cases := []struct {
		name, dir, mention string
	}{
		{"GPU not in the spec", dir, "nvidia.com/gpu=GPU-1111"},
		{"no spec at all", t.TempDir(), "no CDI devices are defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := gpuDevices(buildSpec(goldenParams()), []string{tc.dir}, DefaultCDIKind, []string{"GPU-2222"})
			if !errors.Is(err, ErrNoCDI) || !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml") {
				t.Fatalf("gpuDevices: %v", err)
			}
		})
	}
}

func TestDoctorListsCDIDevices(t *testing.T) {
	dir, _, _ := testCDISpec(t)
	if _, err := findRuntime(""); err == nil {
		e := newTestExecutor(t)
		e.cfg.CDISpecDirs = []string{dir}
		if info := e.Info(t.Context()); info.RuntimeVersion == "" || len(info.CDIGPUs) != 1 || info.CDIGPUs[0] != "nvidia.com/gpu=GPU-1111" {
			t.Errorf("Info: %+v", info)
		}
	}
	lines := Doctor(t.Context(), "", []string{dir})
	last := lines[len(lines)-1]
	if last.Name != CheckCDI || last.Severity != executor.SeverityOK || !strings.Contains(last.Detail, "nvidia.com/gpu=GPU-1111") {
		t.Fatalf("Doctor: %+v", lines)
	}
}
