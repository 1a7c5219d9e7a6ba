//go:build gpu

package native

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/hwdetect"
)

// hostGPUs maps the UUIDs of the host's GPUs to their device nodes, as the
// node does (node.gpuNodes).
type hostGPUs map[string]string

func (h hostGPUs) DeviceNode(uuid string) (string, error) {
	if node, ok := h[uuid]; ok {
		return node, nil
	}
	return "", fmt.Errorf("no GPU %s", uuid)
}

// TestRealGPU runs on a machine with an NVIDIA GPU, its driver and
// nvidia-smi:
//
//	go test -tags gpu -run RealGPU -v ./executor/native/
//
// A task given one GPU sees exactly that one (nvidia-smi -L inside the
// sandbox), under its cgroup memory limit, which an address-space limit
// would not allow (the driver maps far more than it uses).
func TestRealGPU(t *testing.T) {
	det, err := hwdetect.New(hwdetect.DefaultConfig(), nil, hwdetect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	gpus, err := det.GPUs(context.Background())
	if err != nil || len(gpus) == 0 {
		t.Fatalf("no GPU detected (%v): run this on a GPU machine", err)
	}
	nodes := hostGPUs{}
	for _, g := range gpus {
		nodes[g.UUID] = g.DevicePath
	}
	smi, err := exec.LookPath("nvidia-smi")
	if err != nil {
		t.Fatal("nvidia-smi not found")
	}
	e := cgroupExecutor(t)
	e.cfg.GPUs = nodes
	for _, g := range gpus {
		t.Run(g.UUID, func(t *testing.T) {
			res, err := e.Run(context.Background(), executor.Task{GPUs: []string{g.UUID}, Args: []string{smi, "-L"},
				OutputDir: t.TempDir(), Limits: executor.Limits{MemoryBytes: 1 << 30}})
			if err != nil {
				t.Fatalf("Run: %v\nstdout: %s\nstderr: %s", err, res.Stdout, res.Stderr)
			}
			lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], g.UUID) {
				t.Fatalf("the sandbox lists %q, want only %s", res.Stdout, g.UUID)
			}
			t.Logf("sandbox sees: %s (peak memory %d MiB)", lines[0], res.PeakMemoryBytes>>20)
		})
	}
}
