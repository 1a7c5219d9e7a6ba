//go:build gpu

package hwdetect

import (
	"context"
	"testing"
)

// TestDetectGPU runs on a machine with an NVIDIA GPU and driver:
//
//	go test -tags gpu ./hwdetect/
func TestDetectGPU(t *testing.T) {
	d, err := New(DefaultConfig(), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.Detect(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", r.Text())
	if len(r.GPUs) == 0 {
		t.Fatalf("no GPU detected: %s", r.NoGPUReason)
	}
	if !r.NVML.Loaded || r.NVML.DriverVersion == "" || r.NVML.CUDADriverVersion == "" {
		t.Errorf("NVML status %+v, want loaded with driver and CUDA versions", r.NVML)
	}
	for _, g := range r.GPUs {
		if g.UUID == "" || g.MemoryTotalBytes == 0 || g.DriverVersion == "" || g.Name == "" || g.ComputeCapability == "" || g.DevicePath == "" {
			t.Errorf("GPU %d incomplete: %+v", g.Index, g)
		}
	}
	gpus, err := d.GPUs(context.Background())
	if err != nil || len(gpus) != len(r.GPUs) {
		t.Errorf("Detector.GPUs = %d, %v; want %d", len(gpus), err, len(r.GPUs))
	}
}
