package hwdetect

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeSource stands in for NVML in tests that must also run without cgo.
type fakeSource struct {
	p      gpuProbe
	closes int
}

func (f *fakeSource) probe(ctx context.Context) (gpuProbe, error) {
	if err := ctx.Err(); err != nil {
		return gpuProbe{}, err
	}
	p := f.p
	p.gpus = append([]GPU(nil), f.p.gpus...) // the detector edits the slice it gets
	return p, nil
}

func (f *fakeSource) close() error { f.closes++; return nil }

func withSource(s gpuSource) Options { return Options{source: s} }

// fakeHost makes a Detector independent of the machine running the test.
func fakeHost(d *Detector) {
	d.host = hostProbe{
		lookPath: func(string) (string, error) { return "/usr/bin/bwrap", nil },
		cpu: func() (CPU, []string) {
			return CPU{Model: "Test CPU", Arch: "amd64", LogicalCores: 8, Features: []string{"avx", "avx2"}}, nil
		},
		memory: func() (Memory, error) { return Memory{TotalBytes: 32 << 30, AvailableBytes: 20 << 30}, nil },
		disk: func(dir string) (Disk, error) {
			return Disk{Path: dir, TotalBytes: 500 << 30, FreeBytes: 100 << 30}, nil
		},
		now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
}

func twoGPUProbe() gpuProbe {
	return gpuProbe{
		nvml: NVMLStatus{Loaded: true, Version: "12.550.54.15", DriverVersion: "550.54.15", CUDADriverVersion: "12.4"},
		gpus: []GPU{
			{Index: 0, Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-aaaa", MemoryTotalBytes: 80 << 30, MIGMode: MIGDisabled},
			{Index: 1, Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-bbbb", MemoryTotalBytes: 80 << 30, MIGMode: MIGEnabled},
		},
	}
}

func newTestDetector(t *testing.T, cfg Config, p gpuProbe) (*Detector, *fakeSource) {
	t.Helper()
	src := &fakeSource{p: p}
	d, err := New(cfg, nil, withSource(src))
	if err != nil {
		t.Fatal(err)
	}
	fakeHost(d)
	t.Cleanup(func() { d.Close() })
	return d, src
}

func TestDetectAppliesConfig(t *testing.T) {
	tests := []struct {
		name           string
		cfg            Config
		probe          gpuProbe
		wantUsable     []int // indexes
		wantCores      int
		wantMem        uint64
		wantOverridden string
		wantReason     string
	}{
		{"detected", DefaultConfig(), twoGPUProbe(), []int{0, 1}, 8, 32 << 30, "", ""},
		{"exclude uuid case-insensitive", Config{ExcludeGPUs: []string{"GPU-AAAA"}}, twoGPUProbe(), []int{1}, 8, 32 << 30, "", ""},
		{"exclude index", Config{ExcludeGPUs: []string{"1"}}, twoGPUProbe(), []int{0}, 8, 32 << 30, "", ""},
		{"override cpu and memory only", Config{Override: &Override{CPUCores: 4, MemoryBytes: 16 << 30}}, twoGPUProbe(), []int{0, 1}, 4, 16 << 30, "cpu_cores,memory_bytes", ""},
		{"override gpus without nvml",
			Config{Override: &Override{GPUs: []GPUOverride{{Name: "RTX 4090", MemoryBytes: 24 << 30}, {Name: "RTX 3090", MemoryBytes: 24 << 30, Count: 2}}}},
			gpuProbe{nvml: NVMLStatus{Error: "built without cgo"}}, []int{0, 1, 2}, 8, 32 << 30, "gpus", ""},
		{"no nvml", DefaultConfig(), gpuProbe{nvml: NVMLStatus{Error: "NVML not loadable: libnvidia-ml.so.1 not found", Fix: "install the NVIDIA driver"}},
			nil, 8, 32 << 30, "", "NVML not loadable: libnvidia-ml.so.1 not found — install the NVIDIA driver"},
		{"nvml without gpus", DefaultConfig(), gpuProbe{nvml: NVMLStatus{Loaded: true}}, nil, 8, 32 << 30, "", "NVML reports no GPU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := newTestDetector(t, tt.cfg, tt.probe)
			r, err := d.Detect(context.Background(), "/repo")
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, g := range r.UsableGPUs() {
				got = append(got, g.Index)
			}
			if !equalInts(got, tt.wantUsable) {
				t.Errorf("usable %v, want %v", got, tt.wantUsable)
			}
			if r.CPU.LogicalCores != tt.wantCores || r.Memory.TotalBytes != tt.wantMem || r.Memory.AvailableBytes > r.Memory.TotalBytes {
				t.Errorf("cores %d memory %+v, want %d cores %d bytes", r.CPU.LogicalCores, r.Memory, tt.wantCores, tt.wantMem)
			}
			if o := strings.Join(r.Overridden, ","); o != tt.wantOverridden {
				t.Errorf("overridden %q, want %q", o, tt.wantOverridden)
			}
			if !strings.HasPrefix(r.NoGPUReason, tt.wantReason) || (tt.wantReason == "") != (r.NoGPUReason == "") {
				t.Errorf("reason %q, want %q", r.NoGPUReason, tt.wantReason)
			}
			gpus, err := d.GPUs(context.Background())
			if err != nil || len(gpus) != len(tt.wantUsable) {
				t.Errorf("GPUs() = %d, %v; want %d", len(gpus), err, len(tt.wantUsable))
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDetectCanceled(t *testing.T) {
	d, _ := newTestDetector(t, DefaultConfig(), twoGPUProbe())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Detect(ctx, "/repo"); !errors.Is(err, context.Canceled) {
		t.Errorf("Detect on a canceled context = %v, want context.Canceled", err)
	}
}

func TestCloseTwice(t *testing.T) {
	d, src := newTestDetector(t, DefaultConfig(), twoGPUProbe())
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if src.closes != 1 {
		t.Errorf("source closed %d times, want 1", src.closes)
	}
}

func TestReportJSON(t *testing.T) {
	d, _ := newTestDetector(t, Config{ExcludeGPUs: []string{"1"}}, twoGPUProbe())
	r, err := d.Detect(context.Background(), "/repo")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"detected_at":"2026-01-02T03:04:05Z"`, `"memory_total_bytes":85899345920`, `"mig_mode":"enabled"`,
		`"excluded":true`, `"logical_cores":8`, `"cuda_driver_version":"12.4"`, `"free_bytes":107374182400`, `"features":["avx","avx2"]`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s:\n%s", key, b)
		}
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.UsableGPUs()) != 1 {
		t.Errorf("round trip: %v, usable %d", err, len(back.UsableGPUs()))
	}
}

func TestReportText(t *testing.T) {
	d, _ := newTestDetector(t, Config{ExcludeGPUs: []string{"GPU-bbbb"}}, twoGPUProbe())
	r, _ := d.Detect(context.Background(), "/repo")
	text := r.Text()
	for _, want := range []string{
		"GPU 0  NVIDIA H100 80GB HBM3  80.0 GiB (0.0 free)  util 0%  0°C  0/0 W  cc -  MIG off  GPU-aaaa\n",
		"MIG on  GPU-bbbb  (excluded)\n",
		"NVML    12.550.54.15  driver 550.54.15  CUDA 12.4\n",
		"CPU     Test CPU  amd64  8 logical cores  avx avx2\n",
		"Memory  32.0 GiB total, 20.0 GiB available\n",
		"Disk    /repo  100.0 GiB free of 500.0 GiB\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}

	d, _ = newTestDetector(t, Config{Override: &Override{GPUs: []GPUOverride{{Name: "RTX 4090", MemoryBytes: 24 << 30, ComputeCapability: "8.9"}}}}, gpuProbe{})
	r, _ = d.Detect(context.Background(), "/repo")
	if line := strings.SplitN(r.Text(), "\n", 2)[0]; line != "GPU 0  RTX 4090  24.0 GiB (24.0 free)  util ?%  ?°C  ?/? W  cc 8.9  MIG -  -" {
		t.Errorf("declared GPU line %q", line)
	}

	d, _ = newTestDetector(t, DefaultConfig(), gpuProbe{nvml: NVMLStatus{Error: "built without cgo: GPU detection unavailable"}})
	r, _ = d.Detect(context.Background(), "/repo")
	if text := r.Text(); !strings.HasPrefix(text, "GPUs    none: built without cgo: GPU detection unavailable\n") {
		t.Errorf("CPU-only text:\n%s", text)
	}
}

func TestCudaVersion(t *testing.T) {
	for in, want := range map[int]string{12040: "12.4", 11080: "11.8", 12000: "12.0", 13010: "13.1"} {
		if got := cudaVersion(in); got != want {
			t.Errorf("cudaVersion(%d) = %q, want %q", in, got, want)
		}
	}
}
