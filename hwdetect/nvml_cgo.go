//go:build cgo && linux

package hwdetect

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVML is the NVIDIA management library a Detector reads GPUs through.
type NVML = nvml.Interface

// gpuSourceFor is opts' GPU probe: NVML, the system's unless opts names one.
func gpuSourceFor(opts Options, log *slog.Logger) gpuSource {
	switch {
	case opts.source != nil:
		return opts.source
	case opts.NVML != nil:
		return newNVMLSource(opts.NVML, log)
	}
	// nvml.New only records the library name; dlopen happens in Init.
	return newNVMLSource(nvml.New(), log)
}

// nvmlSource keeps NVML initialised between probes, because Init costs
// hundreds of milliseconds on a multi-GPU machine and heartbeats probe often.
type nvmlSource struct {
	lib nvml.Interface
	log *slog.Logger

	mu      sync.Mutex
	inited  bool
	closed  bool
	lastErr string // last Init failure, logged once rather than per probe
}

func newNVMLSource(lib nvml.Interface, log *slog.Logger) *nvmlSource {
	return &nvmlSource{lib: lib, log: log}
}

func (s *nvmlSource) probe(ctx context.Context) (gpuProbe, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return gpuProbe{nvml: NVMLStatus{Error: "GPU detection closed"}}, nil
	}
	if !s.inited {
		// A failed Init is retried on the next probe: the driver may be
		// loaded after the daemon started.
		if ret := s.lib.Init(); ret != nvml.SUCCESS {
			st := initFailure(ret)
			if st.Error != s.lastErr {
				s.log.Info("no NVIDIA GPU detection", "reason", st.Error, "fix", st.Fix)
				s.lastErr = st.Error
			}
			return gpuProbe{nvml: st}, nil
		}
		s.inited, s.lastErr = true, ""
	}
	return s.enumerate(ctx)
}

func (s *nvmlSource) enumerate(ctx context.Context) (gpuProbe, error) {
	var p gpuProbe
	p.nvml.Loaded = true
	var err error
	if p.nvml.Version, err = nvmlString(s.lib.SystemGetNVMLVersion()); err != nil {
		p.warnings = append(p.warnings, fmt.Sprintf("NVML version: %v", err))
	}
	if p.nvml.DriverVersion, err = nvmlString(s.lib.SystemGetDriverVersion()); err != nil {
		p.warnings = append(p.warnings, fmt.Sprintf("driver version: %v", err))
	}
	if v, ret := s.lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		p.nvml.CUDADriverVersion = cudaVersion(v)
	} else {
		p.warnings = append(p.warnings, fmt.Sprintf("CUDA driver version: %v", ret))
	}

	n, ret := s.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		p.nvml.Error = fmt.Sprintf("NVML cannot count GPUs: %v", ret)
		p.nvml.Fix = "check that nvidia-smi works; reboot if the driver was just upgraded"
		return p, nil
	}
	for i := range n {
		if err := ctx.Err(); err != nil {
			return gpuProbe{}, err
		}
		dev, ret := s.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			// GPU_IS_LOST or INVALID_ARGUMENT: it fell off the bus or was
			// hot-removed after DeviceGetCount. Offer the others.
			w := fmt.Sprintf("GPU %d skipped: %v", i, ret)
			s.log.Warn("GPU skipped", "index", i, "err", ret)
			p.warnings = append(p.warnings, w)
			continue
		}
		g, lost := readGPU(i, dev)
		if lost != nil {
			s.log.Warn("GPU skipped", "index", i, "err", lost)
			p.warnings = append(p.warnings, fmt.Sprintf("GPU %d skipped: %v", i, lost))
			continue
		}
		g.DriverVersion, g.CUDADriverVersion = p.nvml.DriverVersion, p.nvml.CUDADriverVersion
		p.gpus = append(p.gpus, g)
	}
	return p, nil
}

// readGPU reads every field it can. A field NVML cannot give (NOT_SUPPORTED
// on consumer cards, NO_PERMISSION in containers) stays zero and is noted;
// only a lost GPU aborts, since it must not be offered to jobs.
func readGPU(index int, dev nvml.Device) (GPU, error) {
	g := GPU{Index: index}
	var lost error
	// note records ret against the fields one NVML call fills.
	note := func(ret nvml.Return, fields ...string) bool {
		if ret == nvml.SUCCESS {
			return true
		}
		if ret == nvml.ERROR_GPU_IS_LOST && lost == nil {
			lost = fmt.Errorf("%s: %w", fields[0], ret)
		}
		if g.Unavailable == nil {
			g.Unavailable = map[string]string{}
		}
		for _, f := range fields {
			g.Unavailable[f] = ret.Error()
		}
		return false
	}

	var ret nvml.Return
	g.Name, ret = dev.GetName()
	note(ret, "name")
	g.UUID, ret = dev.GetUUID()
	note(ret, "uuid")
	if m, ret := dev.GetMemoryInfo(); note(ret, "memory_total_bytes", "memory_free_bytes", "memory_used_bytes") {
		g.MemoryTotalBytes, g.MemoryFreeBytes, g.MemoryUsedBytes = m.Total, m.Free, m.Used
	}
	if u, ret := dev.GetUtilizationRates(); note(ret, "utilization_gpu_percent", "utilization_memory_percent") {
		g.UtilizationGPUPercent, g.UtilizationMemoryPercent = u.Gpu, u.Memory
	}
	g.TemperatureC, ret = dev.GetTemperature(nvml.TEMPERATURE_GPU)
	note(ret, "temperature_c")
	g.PowerDrawMilliwatts, ret = dev.GetPowerUsage()
	note(ret, "power_draw_mw")
	g.PowerLimitMilliwatts, ret = dev.GetEnforcedPowerLimit()
	note(ret, "power_limit_mw")
	if major, minor, ret := dev.GetCudaComputeCapability(); note(ret, "compute_capability") {
		g.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
	}
	switch cur, _, ret := dev.GetMigMode(); {
	case ret == nvml.ERROR_NOT_SUPPORTED:
		g.MIGMode = MIGUnsupported // a fact about the GPU, not a failure
	case !note(ret, "mig_mode"):
	case cur == nvml.DEVICE_MIG_ENABLE:
		g.MIGMode = MIGEnabled
	default:
		g.MIGMode = MIGDisabled
	}
	if pci, ret := dev.GetPciInfo(); note(ret, "pci_bus_id") {
		g.PCIBusID = cString(pci.BusId[:])
	}
	if minor, ret := dev.GetMinorNumber(); note(ret, "device_path") {
		g.DevicePath = fmt.Sprintf("/dev/nvidia%d", minor)
	}
	return g, lost
}

// initFailure turns an Init error into what the user should read and do.
func initFailure(ret nvml.Return) NVMLStatus {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return NVMLStatus{Error: "NVML not loadable: libnvidia-ml.so.1 not found", Fix: "install the NVIDIA driver (nvidia-driver package) and reboot"}
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return NVMLStatus{Error: "NVIDIA driver not loaded (NVML: ERROR_DRIVER_NOT_LOADED)", Fix: "load the kernel module (sudo modprobe nvidia) or reboot after installing the driver"}
	case nvml.ERROR_NO_PERMISSION:
		return NVMLStatus{Error: "no permission to use the NVIDIA driver (NVML: ERROR_NO_PERMISSION)", Fix: "give this user access to /dev/nvidia* (or pass the devices into the container)"}
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		return NVMLStatus{Error: "NVIDIA driver and libnvidia-ml.so.1 versions differ (NVML: ERROR_LIB_RM_VERSION_MISMATCH)", Fix: "reboot after the driver upgrade"}
	case nvml.ERROR_FUNCTION_NOT_FOUND:
		return NVMLStatus{Error: "libnvidia-ml.so.1 is too old (NVML: ERROR_FUNCTION_NOT_FOUND)", Fix: "upgrade the NVIDIA driver"}
	default:
		return NVMLStatus{Error: fmt.Sprintf("NVML init failed: %v", ret), Fix: "check that nvidia-smi works"}
	}
}

func (s *nvmlSource) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if !s.inited {
		return nil
	}
	s.inited = false
	if ret := s.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvml shutdown: %w", ret)
	}
	return nil
}

func nvmlString(s string, ret nvml.Return) (string, error) {
	if ret != nvml.SUCCESS {
		return "", error(ret)
	}
	return s, nil
}

// cString reads a NUL-terminated C char array, as NVML fills PCI bus ids.
func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
