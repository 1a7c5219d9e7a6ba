//go:build cgo && linux

package hwdetect

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

const gib64 = uint64(1) << 30

// mockGPU returns a device that answers every call readGPU makes.
func mockGPU(name, uuid, busID string, minor int, memGiB uint64, ccMajor, ccMinor int) *mock.Device {
	var bus [32]int8
	for i, c := range busID {
		bus[i] = int8(c)
	}
	return &mock.Device{
		GetNameFunc: func() (string, nvml.Return) { return name, nvml.SUCCESS },
		GetUUIDFunc: func() (string, nvml.Return) { return uuid, nvml.SUCCESS },
		GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
			return nvml.Memory{Total: memGiB * gib64, Free: memGiB*gib64 - gib64, Used: gib64}, nvml.SUCCESS
		},
		GetUtilizationRatesFunc: func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: 3, Memory: 1}, nvml.SUCCESS
		},
		GetTemperatureFunc: func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
			if s != nvml.TEMPERATURE_GPU {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return 41, nvml.SUCCESS
		},
		GetPowerUsageFunc:            func() (uint32, nvml.Return) { return 68_000, nvml.SUCCESS },
		GetEnforcedPowerLimitFunc:    func() (uint32, nvml.Return) { return 700_000, nvml.SUCCESS },
		GetCudaComputeCapabilityFunc: func() (int, int, nvml.Return) { return ccMajor, ccMinor, nvml.SUCCESS },
		GetMigModeFunc: func() (int, int, nvml.Return) {
			return nvml.DEVICE_MIG_DISABLE, nvml.DEVICE_MIG_DISABLE, nvml.SUCCESS
		},
		GetPciInfoFunc:     func() (nvml.PciInfo, nvml.Return) { return nvml.PciInfo{BusId: bus}, nvml.SUCCESS },
		GetMinorNumberFunc: func() (int, nvml.Return) { return minor, nvml.SUCCESS },
	}
}

const (
	uuid0 = "GPU-11111111-2222-3333-4444-555555555555"
	uuid1 = "GPU-66666666-7777-8888-9999-000000000000"
)

// mockNVML is a two-GPU machine: an H100 and an RTX 4090.
func mockNVML(devs ...*mock.Device) *mock.Interface {
	if devs == nil {
		devs = []*mock.Device{
			mockGPU("NVIDIA H100 80GB HBM3", uuid0, "00000000:01:00.0", 2, 80, 9, 0),
			mockGPU("NVIDIA GeForce RTX 4090", uuid1, "00000000:41:00.0", 0, 24, 8, 9),
		}
	}
	return &mock.Interface{
		InitFunc:                       func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:                   func() nvml.Return { return nvml.SUCCESS },
		SystemGetNVMLVersionFunc:       func() (string, nvml.Return) { return "12.550.54.15", nvml.SUCCESS },
		SystemGetDriverVersionFunc:     func() (string, nvml.Return) { return "550.54.15", nvml.SUCCESS },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return 12040, nvml.SUCCESS },
		DeviceGetCountFunc:             func() (int, nvml.Return) { return len(devs), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			if i < 0 || i >= len(devs) {
				return nil, nvml.ERROR_INVALID_ARGUMENT
			}
			return devs[i], nvml.SUCCESS
		},
	}
}

func detectWith(t *testing.T, cfg Config, lib nvml.Interface) Report {
	t.Helper()
	d, err := New(cfg, nil, Options{NVML: lib})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	r, err := d.Detect(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	return r
}

func TestNVMLTwoGPUs(t *testing.T) {
	r := detectWith(t, DefaultConfig(), mockNVML())
	if len(r.GPUs) != 2 || len(r.Warnings) != 0 {
		t.Fatalf("got %d GPUs, warnings %q; want 2, none", len(r.GPUs), r.Warnings)
	}
	want := GPU{
		Index: 0, Name: "NVIDIA H100 80GB HBM3", UUID: uuid0,
		MemoryTotalBytes: 80 * gib64, MemoryFreeBytes: 79 * gib64, MemoryUsedBytes: gib64,
		UtilizationGPUPercent: 3, UtilizationMemoryPercent: 1, TemperatureC: 41,
		PowerDrawMilliwatts: 68_000, PowerLimitMilliwatts: 700_000,
		DriverVersion: "550.54.15", CUDADriverVersion: "12.4", ComputeCapability: "9.0",
		MIGMode: MIGDisabled, PCIBusID: "00000000:01:00.0", DevicePath: "/dev/nvidia2",
	}
	if g := r.GPUs[0]; !reflect.DeepEqual(g, want) {
		t.Errorf("GPU 0 =\n%+v\nwant\n%+v", g, want)
	}
	if g := r.GPUs[1]; g.Index != 1 || g.UUID != uuid1 || g.ComputeCapability != "8.9" {
		t.Errorf("GPU 1 = %+v", g)
	}
	if !r.NVML.Loaded || r.NVML.CUDADriverVersion != "12.4" || r.NVML.Version != "12.550.54.15" || r.NoGPUReason != "" {
		t.Errorf("NVML = %+v, reason %q", r.NVML, r.NoGPUReason)
	}
	line := strings.SplitN(r.Text(), "\n", 2)[0]
	wantLine := "GPU 0  NVIDIA H100 80GB HBM3  80.0 GiB (79.0 free)  util 3%  41°C  68/700 W  cc 9.0  MIG off  " + uuid0
	if line != wantLine {
		t.Errorf("text line\n got %q\nwant %q", line, wantLine)
	}
}

func TestNVMLInitFailureIsCPUOnly(t *testing.T) {
	tests := []struct {
		ret        nvml.Return
		wantReason string
	}{
		{nvml.ERROR_LIBRARY_NOT_FOUND, "libnvidia-ml.so.1 not found — install the NVIDIA driver"},
		{nvml.ERROR_DRIVER_NOT_LOADED, "driver not loaded"},
		{nvml.ERROR_NO_PERMISSION, "no permission"},
		{nvml.ERROR_UNKNOWN, "NVML init failed"},
	}
	for _, tt := range tests {
		t.Run(tt.ret.Error(), func(t *testing.T) {
			lib := mockNVML()
			lib.InitFunc = func() nvml.Return { return tt.ret }
			r := detectWith(t, DefaultConfig(), lib)
			if len(r.GPUs) != 0 || r.NVML.Loaded {
				t.Fatalf("GPUs %d, loaded %v; want CPU-only", len(r.GPUs), r.NVML.Loaded)
			}
			if !strings.Contains(r.NoGPUReason, tt.wantReason) || r.NVML.Fix == "" {
				t.Errorf("reason %q (fix %q), want it to contain %q and a fix", r.NoGPUReason, r.NVML.Fix, tt.wantReason)
			}
			if r.CPU.LogicalCores <= 0 {
				t.Errorf("CPU part missing: %+v", r.CPU)
			}
		})
	}
}

func TestNVMLFieldNotSupported(t *testing.T) {
	dev := mockGPU("Tesla T4", uuid0, "00000000:01:00.0", 0, 16, 7, 5)
	dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NO_PERMISSION }
	dev.GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
	r := detectWith(t, DefaultConfig(), mockNVML(dev))
	if len(r.GPUs) != 1 {
		t.Fatalf("got %d GPUs, want 1", len(r.GPUs))
	}
	g := r.GPUs[0]
	for _, f := range []string{"power_draw_mw", "utilization_gpu_percent", "utilization_memory_percent"} {
		if _, ok := g.Unavailable[f]; !ok {
			t.Errorf("%s not noted as unavailable: %v", f, g.Unavailable)
		}
	}
	if g.Unavailable["power_draw_mw"] != "ERROR_NOT_SUPPORTED" {
		t.Errorf("power_draw_mw noted as %q", g.Unavailable["power_draw_mw"])
	}
	if _, ok := g.Unavailable["mig_mode"]; ok || g.MIGMode != MIGUnsupported {
		t.Errorf("MIG = %q (noted %v), want unsupported and not an error", g.MIGMode, ok)
	}
	if g.PowerLimitMilliwatts != 700_000 || g.MemoryTotalBytes != 16*gib64 || g.UUID != uuid0 {
		t.Errorf("other fields lost: %+v", g)
	}
	if line := g.line(); !strings.Contains(line, "util ?%") || !strings.Contains(line, "?/700 W") || !strings.Contains(line, "MIG n/a") {
		t.Errorf("text %q does not mark unknown values", line)
	}
}

func TestNVMLGPULost(t *testing.T) {
	tests := []struct {
		name string
		edit func(lib *mock.Interface, devs []*mock.Device)
	}{
		{"handle lookup", func(lib *mock.Interface, devs []*mock.Device) {
			lib.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
				if i == 1 {
					return nil, nvml.ERROR_GPU_IS_LOST
				}
				return devs[i], nvml.SUCCESS
			}
		}},
		{"count larger than devices", func(lib *mock.Interface, devs []*mock.Device) {
			lib.DeviceGetCountFunc = func() (int, nvml.Return) { return 3, nvml.SUCCESS }
			lib.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
				if i >= 1 {
					return nil, nvml.ERROR_INVALID_ARGUMENT
				}
				return devs[i], nvml.SUCCESS
			}
		}},
		{"lost while reading", func(lib *mock.Interface, devs []*mock.Device) {
			devs[1].GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_GPU_IS_LOST }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			devs := []*mock.Device{
				mockGPU("NVIDIA H100 80GB HBM3", uuid0, "00000000:01:00.0", 0, 80, 9, 0),
				mockGPU("NVIDIA H100 80GB HBM3", uuid1, "00000000:02:00.0", 1, 80, 9, 0),
			}
			lib := mockNVML(devs...)
			tt.edit(lib, devs)
			r := detectWith(t, DefaultConfig(), lib)
			if len(r.GPUs) != 1 || r.GPUs[0].UUID != uuid0 {
				t.Fatalf("GPUs = %+v, want only %s", r.GPUs, uuid0)
			}
			if len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "GPU 1 skipped") {
				t.Errorf("warnings %q, want GPU 1 skipped", r.Warnings)
			}
		})
	}
}

func TestNVMLExclusionAndOverride(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantUsable []string // names or UUIDs of usable GPUs
		wantWarn   string
	}{
		{"by uuid", Config{ExcludeGPUs: []string{uuid0}}, []string{uuid1}, ""},
		{"by index", Config{ExcludeGPUs: []string{"1"}}, []string{uuid0}, ""},
		{"all", Config{ExcludeGPUs: []string{"0", uuid1}}, nil, ""},
		{"no match", Config{ExcludeGPUs: []string{"7"}}, []string{uuid0, uuid1}, `"7" matches no GPU`},
		{"override replaces", Config{Override: &Override{GPUs: []GPUOverride{{Name: "RTX 3090", MemoryBytes: 24 * gib64, Count: 2}}}},
			[]string{"RTX 3090", "RTX 3090"}, "replaces 2 detected GPUs"},
		{"override then exclude index", Config{ExcludeGPUs: []string{"0"}, Override: &Override{GPUs: []GPUOverride{{Name: "RTX 3090", MemoryBytes: 24 * gib64, Count: 2}}}},
			[]string{"RTX 3090"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lib := mockNVML()
			r := detectWith(t, tt.cfg, lib)
			var got []string
			for _, g := range r.UsableGPUs() {
				got = append(got, cmpOr(g.UUID, g.Name))
			}
			if strings.Join(got, ",") != strings.Join(tt.wantUsable, ",") {
				t.Errorf("usable %q, want %q", got, tt.wantUsable)
			}
			if tt.wantWarn != "" && !strings.Contains(strings.Join(r.Warnings, "\n"), tt.wantWarn) {
				t.Errorf("warnings %q, want %q", r.Warnings, tt.wantWarn)
			}

			d, _ := New(tt.cfg, nil, Options{NVML: lib})
			defer d.Close()
			gpus, err := d.GPUs(context.Background())
			if err != nil || len(gpus) != len(tt.wantUsable) {
				t.Errorf("Detector.GPUs = %d GPUs, %v; want %d", len(gpus), err, len(tt.wantUsable))
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestNVMLInitRetriedAndShutdownOnce(t *testing.T) {
	lib := mockNVML()
	fail := true
	lib.InitFunc = func() nvml.Return {
		if fail {
			return nvml.ERROR_DRIVER_NOT_LOADED
		}
		return nvml.SUCCESS
	}
	d, err := New(DefaultConfig(), nil, Options{NVML: lib})
	if err != nil {
		t.Fatal(err)
	}
	if len(lib.InitCalls()) != 0 {
		t.Fatal("New loaded NVML; it should wait for the first detection")
	}
	ctx := context.Background()
	if g, _ := d.GPUs(ctx); len(g) != 0 {
		t.Fatalf("GPUs before the driver loads: %d", len(g))
	}
	fail = false // the driver was loaded after the daemon started
	if g, _ := d.GPUs(ctx); len(g) != 2 {
		t.Fatalf("GPUs after the driver loads: %d, want 2", len(g))
	}
	d.GPUs(ctx)
	if n := len(lib.InitCalls()); n != 2 {
		t.Errorf("Init called %d times, want 2 (one failure, then kept)", n)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(lib.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times, want 1", n)
	}
	if g, err := d.GPUs(ctx); err != nil || len(g) != 0 {
		t.Errorf("GPUs after Close = %d, %v; want none, no error", len(g), err)
	}
}

// TestNVMLConcurrentDetect runs detections in parallel, as the API and the
// heartbeat do; run with -race to check the lazy Init.
func TestNVMLConcurrentDetect(t *testing.T) {
	lib := mockNVML()
	d, err := New(DefaultConfig(), nil, Options{NVML: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if r, err := d.Detect(context.Background(), dir); err != nil || len(r.GPUs) != 2 {
				t.Errorf("Detect = %d GPUs, %v", len(r.GPUs), err)
			}
		})
	}
	wg.Wait()
	if n := len(lib.InitCalls()); n != 1 {
		t.Errorf("Init called %d times, want 1", n)
	}
}
