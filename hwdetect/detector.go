// Package hwdetect finds out what hardware a node can offer: NVIDIA GPUs
// through NVML (loaded at run time, so a machine without the driver is a
// normal CPU-only node), the CPU, memory and the repo's disk.
//
// Nothing here fails because hardware is missing: a Report always comes
// back, and says why a part could not be detected.
package hwdetect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// gpuSource enumerates GPUs. The NVML implementation needs cgo on Linux;
// other builds get a stub that explains why there are no GPUs.
type gpuSource interface {
	// probe never fails for lack of GPUs: that is reported in the result.
	probe(ctx context.Context) (gpuProbe, error)
	close() error
}

type gpuProbe struct {
	nvml     NVMLStatus
	gpus     []GPU
	warnings []string
}

// Options adjust a Detector for tests; the zero value is what a node runs.
type Options struct {
	// NVML replaces the system's libnvidia-ml.so.1 (tests pass go-nvml's
	// mock); used only in cgo builds on Linux, since go-nvml needs cgo.
	NVML NVML
	// source replaces the whole GPU probe (this package's tests).
	source gpuSource
}

// Detector detects hardware. It is safe for concurrent use; NVML is loaded
// on the first detection and released by Close.
type Detector struct {
	cfg  Config
	log  *slog.Logger
	gpu  gpuSource
	host hostProbe

	closeOnce sync.Once
	closeErr  error
}

// hostProbe holds the OS look-ups, replaceable in tests.
type hostProbe struct {
	lookPath func(file string) (string, error)
	cpu      func() (CPU, []string)
	memory   func() (Memory, error)
	disk     func(dir string) (Disk, error)
	now      func() time.Time
}

// New returns a Detector for cfg. It loads nothing yet: a node that never
// asks about GPUs never opens the NVIDIA library.
func New(cfg Config, log *slog.Logger, opts Options) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hwdetect: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "hwdetect")
	return &Detector{
		cfg: cfg,
		log: log,
		gpu: gpuSourceFor(opts, log),
		host: hostProbe{
			lookPath: exec.LookPath,
			cpu:      detectCPU,
			memory:   detectMemory,
			disk:     diskUsage,
			now:      time.Now,
		},
	}, nil
}

// Detect reports the hardware, with the repo's file system as the disk.
// It fails only when ctx ends; anything undetectable is explained in the
// report instead.
func (d *Detector) Detect(ctx context.Context, repoDir string) (Report, error) {
	r := Report{DetectedAt: d.host.now().UTC()}
	p, err := d.gpu.probe(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("detect GPUs: %w", err)
	}
	r.NVML, r.GPUs, r.Warnings = p.nvml, p.gpus, p.warnings

	var cpuWarn []string
	r.CPU, cpuWarn = d.host.cpu()
	r.Warnings = append(r.Warnings, cpuWarn...)
	if r.Memory, err = d.host.memory(); err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("memory: %v", err))
	}
	if r.Disk, err = d.repoDisk(repoDir); err != nil {
		r.Disk.Path = repoDir
		r.Warnings = append(r.Warnings, fmt.Sprintf("disk: %v", err))
	}
	d.applyConfig(&r)
	if r.GPUs == nil {
		r.GPUs = []GPU{} // `vft hw --json` prints [], not null
	}
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("detect hardware: %w", err)
	}
	return r, nil
}

// repoDisk measures the file system of dir or, when dir does not exist
// yet (`vft hw` before `vft init`), of its nearest existing parent: the
// disk the repo will be created on.
func (d *Detector) repoDisk(dir string) (Disk, error) {
	disk, err := d.host.disk(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return disk, err
	}
	for at := filepath.Dir(dir); ; at = filepath.Dir(at) {
		parent, perr := d.host.disk(at)
		if perr == nil {
			parent.Path, parent.MeasuredAt = dir, at
			return parent, nil
		}
		if !errors.Is(perr, fs.ErrNotExist) || at == filepath.Dir(at) {
			return disk, err
		}
	}
}

// GPUs returns the GPUs jobs may use: detected (or declared) minus
// exclude_gpus. An empty list with a nil error is a CPU-only node.
func (d *Detector) GPUs(ctx context.Context) ([]GPU, error) {
	p, err := d.gpu.probe(ctx)
	if err != nil {
		return nil, fmt.Errorf("detect GPUs: %w", err)
	}
	r := Report{NVML: p.nvml, GPUs: p.gpus}
	d.applyConfig(&r)
	return r.UsableGPUs(), nil
}

// Close releases NVML. It is safe to call more than once.
func (d *Detector) Close() error {
	d.closeOnce.Do(func() {
		if err := d.gpu.close(); err != nil {
			d.closeErr = fmt.Errorf("hwdetect: close: %w", err)
		}
	})
	return d.closeErr
}

// applyConfig applies [hardware.override] and exclude_gpus, in that order,
// so an index in exclude_gpus refers to the list the user sees in `vft hw`.
func (d *Detector) applyConfig(r *Report) {
	if o := d.cfg.Override; o != nil {
		if len(o.GPUs) > 0 {
			if len(r.GPUs) > 0 {
				r.Warnings = append(r.Warnings, fmt.Sprintf("[hardware.override] gpus replaces %d detected GPUs", len(r.GPUs)))
			}
			r.GPUs = declaredGPUs(o.GPUs)
			r.Overridden = append(r.Overridden, "gpus")
		}
		if o.CPUCores > 0 {
			r.CPU.LogicalCores = o.CPUCores
			r.Overridden = append(r.Overridden, "cpu_cores")
		}
		if o.MemoryBytes > 0 {
			r.Memory.TotalBytes = o.MemoryBytes
			r.Memory.AvailableBytes = min(r.Memory.AvailableBytes, o.MemoryBytes)
			r.Overridden = append(r.Overridden, "memory_bytes")
		}
	}
	for _, ref := range d.cfg.ExcludeGPUs {
		if !excludeGPU(r.GPUs, ref) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("[hardware] exclude_gpus entry %q matches no GPU", ref))
		}
	}
	if len(r.GPUs) == 0 && r.NoGPUReason == "" {
		r.NoGPUReason = noGPUReason(r.NVML)
	}
}

// excludeGPU flags the GPUs ref names and reports whether there was one.
func excludeGPU(gpus []GPU, ref string) bool {
	index, uuid, err := parseGPURef(ref)
	if err != nil { // Validate ran in New; kept for safety
		return false
	}
	found := false
	for i := range gpus {
		if (uuid != "" && strings.EqualFold(gpus[i].UUID, uuid)) || (uuid == "" && gpus[i].Index == index) {
			gpus[i].Excluded = true
			found = true
		}
	}
	return found
}

// declaredGPUs expands [[hardware.override.gpus]]. Live values (utilisation,
// temperature, power) are marked unavailable so they do not print as zeros;
// free memory is assumed to be all of it.
func declaredGPUs(decl []GPUOverride) []GPU {
	const why = "declared in [hardware.override]"
	var out []GPU
	for _, g := range decl {
		for range max(g.Count, 1) {
			unknown := map[string]string{}
			for _, f := range []string{"uuid", "utilization_gpu_percent", "utilization_memory_percent",
				"temperature_c", "power_draw_mw", "power_limit_mw", "mig_mode", "pci_bus_id", "device_path"} {
				unknown[f] = why
			}
			out = append(out, GPU{
				Index:             len(out),
				Name:              g.Name,
				MemoryTotalBytes:  g.MemoryBytes,
				MemoryFreeBytes:   g.MemoryBytes,
				ComputeCapability: g.ComputeCapability,
				Unavailable:       unknown,
			})
		}
	}
	return out
}

func noGPUReason(s NVMLStatus) string {
	switch {
	case s.Error != "" && s.Fix != "":
		return s.Error + " — " + s.Fix
	case s.Error != "":
		return s.Error
	default:
		return "NVML reports no GPU — check that nvidia-smi lists one"
	}
}

// cudaVersion formats NVML's CUDA driver version (12040) as "12.4".
func cudaVersion(v int) string {
	return strconv.Itoa(v/1000) + "." + strconv.Itoa(v%1000/10)
}
