package job

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// Native jobs get GPUs that match their needs, and two running jobs never
// share one.
func TestAllocateGPUs(t *testing.T) {
	devices := []Device{
		{UUID: "GPU-a", Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30},
		{UUID: "GPU-b", Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30},
		{UUID: "GPU-c", Name: "NVIDIA GeForce RTX 4090", MemoryBytes: 24 << 30},
	}
	w := NewWorker(nil, nil, nil, nil, nil, t.TempDir(), slog.New(slog.DiscardHandler)).
		WithDevices(func(context.Context) []Device { return devices })
	ctx := context.Background()

	got, err := w.allocateGPUs(ctx, "job1", Resources{GPUs: 2, GPUModel: "h100"})
	if err != nil || len(got) != 2 || got[0] != "GPU-a" || got[1] != "GPU-b" {
		t.Fatalf("job1 got %v, %v", got, err)
	}
	if _, err := w.allocateGPUs(ctx, "job2", Resources{GPUs: 1, GPUModel: "H100"}); err == nil || !strings.Contains(err.Error(), "0 matching GPU(s) free") {
		t.Fatalf("job2 took a GPU job1 holds: %v", err)
	}
	if got, err := w.allocateGPUs(ctx, "job3", Resources{GPUs: 1, GPUMemoryBytes: 16 << 30}); err != nil || got[0] != "GPU-c" {
		t.Fatalf("job3 got %v, %v", got, err)
	}
	w.releaseGPUs("job1")
	if got, err := w.allocateGPUs(ctx, "job2", Resources{GPUs: 1, GPUModel: "H100"}); err != nil || got[0] != "GPU-a" {
		t.Fatalf("after release, job2 got %v, %v", got, err)
	}
	if got, err := w.allocateGPUs(ctx, "cpu-job", Resources{}); err != nil || got != nil {
		t.Fatalf("a job without GPUs got %v, %v", got, err)
	}
}
