//go:build gpu

package oci

import (
	"archive/tar"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vft-network/vft/hwdetect"
)

// TestRealGPUContainer runs on a machine with an NVIDIA GPU, its driver,
// crun or runc, and busybox-static:
//
//	go test -tags gpu -run RealGPUContainer -v ./executor/oci/
//
// A container given one GPU sees exactly that one: nvidia-smi -L inside
// lists its UUID and no other, once through the CDI spec that
// `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` writes (skipped
// without one) and once through the NVML fallback (no CDI spec: the device
// node from NVML's minor number and the driver's libraries from ldconfig).
// The image is busybox plus the host's nvidia-smi and the C libraries it
// links (the driver's libraries come from the host, as in production).
func TestRealGPUContainer(t *testing.T) {
	det, err := hwdetect.New(hwdetect.DefaultConfig(), nil, hwdetect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	gpus, err := det.GPUs(context.Background())
	if err != nil || len(gpus) == 0 {
		t.Fatalf("no GPU detected (%v): run this on a GPU machine", err)
	}
	nodes := standInGPUs{} // here the real ones, from NVML
	for _, g := range gpus {
		nodes[g.UUID] = g.DevicePath
	}
	image := writeLayout(t, imageOf(t, "", busyboxLayer(t), hostBinaryLayer(t, "nvidia-smi")))
	for _, path := range []struct {
		name    string
		cdiDirs []string
		gpus    GPUNodes
	}{
		{gpuPathCDI, []string{"/etc/cdi", "/var/run/cdi"}, nil},
		{"NVML", []string{t.TempDir()}, nodes},
	} {
		t.Run(path.name, func(t *testing.T) {
			if devs, _ := cdiDevices(path.cdiDirs, DefaultCDIKind); path.gpus == nil && len(devs) == 0 {
				t.Skip("no CDI spec: run nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml to check this path")
			}
			e := newTestExecutor(t)
			e.cfg.CDISpecDirs, e.cfg.GPUs = path.cdiDirs, path.gpus
			for _, g := range gpus {
				t.Run(g.UUID, func(t *testing.T) {
					task := shTask(t, image, "/usr/bin/nvidia-smi -L")
					task.GPUs = []string{g.UUID}
					task.Limits.MemoryBytes = 1 << 30
					res, err := e.Run(context.Background(), task)
					if err != nil {
						t.Fatalf("Run: %v\nstdout: %s\nstderr: %s", err, res.Stdout, res.Stderr)
					}
					lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
					if len(lines) != 1 || !strings.Contains(lines[0], g.UUID) {
						t.Fatalf("the container lists %q, want only %s", res.Stdout, g.UUID)
					}
					t.Logf("container sees: %s", lines[0])
				})
			}
		})
	}
}

// hostBinaryLayer holds the host's program at /usr/bin and the libraries
// ldd says it needs (but the NVIDIA ones), at their host paths.
func hostBinaryLayer(t *testing.T, program string) v1.Layer {
	t.Helper()
	bin, err := exec.LookPath(program)
	if err != nil {
		t.Fatalf("%s not found", program)
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	paths := []string{bin}
	for _, m := range regexp.MustCompile(`(/\S+)`).FindAllString(string(out), -1) {
		if !strings.Contains(m, "nvidia") {
			paths = append(paths, m)
		}
	}
	var entries []entry
	dirs := map[string]bool{}
	for i, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		body, err := os.ReadFile(real)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p, "/")
		if i == 0 {
			name = "usr/bin/" + program
		}
		for d := filepath.Dir(name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			entries = append([]entry{dir(d)}, entries...)
		}
		entries = append(entries, entry{name: name, typ: tar.TypeReg, mode: 0o755, body: body})
	}
	return layerOf(t, entries...)
}
