package hwdetect

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is what a node knows about its hardware. It is a plain value: the
// CLI prints it (`vft hw --json`), the heartbeat derives capabilities from it.
type Report struct {
	DetectedAt time.Time `json:"detected_at"`
	// GPUs holds every GPU found or declared, excluded ones included (flagged),
	// so that `vft hw` shows what the machine has. Jobs use UsableGPUs.
	GPUs []GPU `json:"gpus"`
	// NoGPUReason says why GPUs is empty, with what to do about it.
	NoGPUReason string     `json:"no_gpu_reason,omitempty"`
	NVML        NVMLStatus `json:"nvml"`
	CPU         CPU        `json:"cpu"`
	Memory      Memory     `json:"memory"`
	Disk        Disk       `json:"disk"`
	// Overridden names the values taken from [hardware.override]:
	// "gpus", "cpu_cores", "memory_bytes".
	Overridden []string `json:"overridden,omitempty"`
	// Warnings are problems that did not stop detection (a GPU lost during
	// enumeration, an exclude_gpus entry that matches nothing, ...).
	Warnings []string `json:"warnings,omitempty"`
}

// NVMLStatus tells whether NVML could be used, and if not, why.
type NVMLStatus struct {
	Loaded            bool   `json:"loaded"`
	Version           string `json:"version,omitempty"`
	DriverVersion     string `json:"driver_version,omitempty"`
	CUDADriverVersion string `json:"cuda_driver_version,omitempty"`
	Error             string `json:"error,omitempty"` // why NVML is unusable
	Fix               string `json:"fix,omitempty"`   // what the user can do
}

// MIGMode is a GPU's Multi-Instance GPU mode.
type MIGMode string

const (
	MIGEnabled     MIGMode = "enabled"
	MIGDisabled    MIGMode = "disabled"
	MIGUnsupported MIGMode = "unsupported"
)

// GPU is one physical GPU. A field NVML could not read is left zero and its
// JSON name is a key of Unavailable, so 0% utilisation and "unknown" differ.
type GPU struct {
	Index                    int     `json:"index"`
	Name                     string  `json:"name"`
	UUID                     string  `json:"uuid,omitempty"`
	MemoryTotalBytes         uint64  `json:"memory_total_bytes"`
	MemoryFreeBytes          uint64  `json:"memory_free_bytes"`
	MemoryUsedBytes          uint64  `json:"memory_used_bytes"`
	UtilizationGPUPercent    uint32  `json:"utilization_gpu_percent"`
	UtilizationMemoryPercent uint32  `json:"utilization_memory_percent"`
	TemperatureC             uint32  `json:"temperature_c"`
	PowerDrawMilliwatts      uint32  `json:"power_draw_mw"`
	PowerLimitMilliwatts     uint32  `json:"power_limit_mw"`
	DriverVersion            string  `json:"driver_version,omitempty"`
	CUDADriverVersion        string  `json:"cuda_driver_version,omitempty"`
	ComputeCapability        string  `json:"compute_capability,omitempty"`
	MIGMode                  MIGMode `json:"mig_mode,omitempty"`
	PCIBusID                 string  `json:"pci_bus_id,omitempty"`
	// DevicePath is the device node a sandbox must expose for this GPU,
	// /dev/nvidia<minor>: the minor number need not equal the index.
	DevicePath string `json:"device_path,omitempty"`
	// Excluded GPUs are listed in [hardware] exclude_gpus: shown, never used.
	Excluded bool `json:"excluded"`
	// Unavailable maps a field's JSON name to the NVML error that hid it.
	Unavailable map[string]string `json:"unavailable,omitempty"`
}

// CPU describes the processor as the process sees it.
type CPU struct {
	Model        string   `json:"model"`
	Arch         string   `json:"arch"`
	LogicalCores int      `json:"logical_cores"`
	Features     []string `json:"features"` // ISA extensions, e.g. "avx2"
}

// Memory is system RAM in bytes.
type Memory struct {
	TotalBytes     uint64 `json:"total_bytes"`
	AvailableBytes uint64 `json:"available_bytes"`
}

// Disk is the file system holding the repo.
type Disk struct {
	Path       string `json:"path"`
	TotalBytes uint64 `json:"total_bytes"`
	FreeBytes  uint64 `json:"free_bytes"` // available to this (unprivileged) user
	// MeasuredAt is the nearest existing parent of Path when Path does not
	// exist yet (before `vft init`): the file system the repo will be on.
	MeasuredAt string `json:"measured_at,omitempty"`
}

// UsableGPUs returns the GPUs jobs may be assigned: all but the excluded.
func (r Report) UsableGPUs() []GPU {
	return usable(r.GPUs)
}

func usable(gpus []GPU) []GPU {
	out := make([]GPU, 0, len(gpus))
	for _, g := range gpus {
		if !g.Excluded {
			out = append(out, g)
		}
	}
	return out
}

// Text returns the human form printed by `vft hw`.
func (r Report) Text() string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}

// WriteText writes the human form: one line per GPU, then CPU, memory, disk.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, g := range r.GPUs {
		b.WriteString(g.line())
		b.WriteByte('\n')
	}
	if len(r.GPUs) == 0 {
		fmt.Fprintf(&b, "GPUs    none: %s\n", r.NoGPUReason)
	}
	if r.NVML.Loaded {
		fmt.Fprintf(&b, "NVML    %s  driver %s  CUDA %s\n", orDash(r.NVML.Version), orDash(r.NVML.DriverVersion), orDash(r.NVML.CUDADriverVersion))
	}
	c := r.CPU
	fmt.Fprintf(&b, "CPU     %s  %s  %d logical cores  %s\n", orDash(c.Model), c.Arch, c.LogicalCores, strings.Join(c.Features, " "))
	fmt.Fprintf(&b, "Memory  %s total, %s available\n", gib(r.Memory.TotalBytes), gib(r.Memory.AvailableBytes))
	where := r.Disk.Path
	if r.Disk.MeasuredAt != "" {
		where += fmt.Sprintf(" (not created yet; on the disk of %s)", r.Disk.MeasuredAt)
	}
	fmt.Fprintf(&b, "Disk    %s  %s free of %s\n", where, gib(r.Disk.FreeBytes), gib(r.Disk.TotalBytes))
	if len(r.Overridden) > 0 {
		fmt.Fprintf(&b, "from [hardware.override]: %s\n", strings.Join(r.Overridden, ", "))
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// line renders one GPU like
// "GPU 0  NVIDIA H100 80GB HBM3  80.0 GiB (79.2 free)  util 3%  41°C  68/700 W  cc 9.0  MIG off  GPU-...".
// Unreadable values print as "?" rather than a misleading zero.
func (g GPU) line() string {
	known := func(field, s string) string {
		if _, bad := g.Unavailable[field]; bad {
			return "?"
		}
		return s
	}
	mem := fmt.Sprintf("%s (%.1f free)", gib(g.MemoryTotalBytes), float64(g.MemoryFreeBytes)/(1<<30))
	if _, bad := g.Unavailable["memory_total_bytes"]; bad {
		mem = "? GiB"
	}
	mig := map[MIGMode]string{MIGEnabled: "on", MIGDisabled: "off", MIGUnsupported: "n/a"}[g.MIGMode]
	s := fmt.Sprintf("GPU %d  %s  %s  util %s%%  %s°C  %s/%s W  cc %s  MIG %s  %s",
		g.Index, orDash(g.Name), mem,
		known("utilization_gpu_percent", fmt.Sprint(g.UtilizationGPUPercent)),
		known("temperature_c", fmt.Sprint(g.TemperatureC)),
		known("power_draw_mw", fmt.Sprint(watts(g.PowerDrawMilliwatts))),
		known("power_limit_mw", fmt.Sprint(watts(g.PowerLimitMilliwatts))),
		orDash(g.ComputeCapability), orDash(mig), orDash(g.UUID))
	if g.Excluded {
		s += "  (excluded)"
	}
	return s
}

func watts(mw uint32) uint32 { return (mw + 500) / 1000 }

func gib(n uint64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
