package hwdetect

import (
	"context"
	"fmt"
	"strings"
)

// Severity grades a Check. A warning leaves the node working with less
// (CPU-only, no native jobs); a failure means jobs will not run. Info is
// said for the record only (a miner's check on a node that mines nothing).
type Severity string

const (
	SeverityOK   Severity = "ok"
	SeverityInfo Severity = "info"
	SeverityWarn Severity = "warn"
	SeverityFail Severity = "fail"
)

// Check is one line of `vft doctor`.
type Check struct {
	Name     string   `json:"name"`
	OK       bool     `json:"ok"`
	Severity Severity `json:"severity"`
	Detail   string   `json:"detail"`
	Fix      string   `json:"fix,omitempty"`
}

// DiskWarnBytes is the free space under which the repo's disk is flagged:
// job inputs, outputs and cached models need room.
const DiskWarnBytes = 10 << 30

// Checks answers the hardware part of `vft doctor`: NVML, visible GPUs,
// bubblewrap for native jobs, and free space on the repo's disk.
func (d *Detector) Checks(ctx context.Context, repoDir string) []Check {
	r, err := d.Detect(ctx, repoDir)
	if err != nil {
		return []Check{{Name: "hardware", Severity: SeverityFail, Detail: err.Error()}}
	}
	return []Check{
		nvmlCheck(r.NVML),
		gpusCheck(r),
		d.bwrapCheck(),
		diskCheck(r, repoDir),
	}
}

func ok(name, detail string) Check {
	return Check{Name: name, OK: true, Severity: SeverityOK, Detail: detail}
}

func nvmlCheck(s NVMLStatus) Check {
	if !s.Loaded {
		return Check{Name: "nvml", Severity: SeverityWarn, Detail: s.Error, Fix: s.Fix}
	}
	return ok("nvml", fmt.Sprintf("NVML %s, driver %s, CUDA %s", orDash(s.Version), orDash(s.DriverVersion), orDash(s.CUDADriverVersion)))
}

func gpusCheck(r Report) Check {
	const name = "gpus visible"
	use := r.UsableGPUs()
	switch {
	case len(r.GPUs) == 0:
		why, fix := r.NVML.Error, r.NVML.Fix
		if why == "" {
			why = "NVML reports no GPU"
		}
		if fix == "" {
			fix = "check that nvidia-smi lists the GPUs, or declare them in [hardware.override]"
		}
		return Check{Name: name, Severity: SeverityWarn, Detail: "no GPU, CPU and WASM jobs only: " + why, Fix: fix}
	case len(use) == 0:
		return Check{Name: name, Severity: SeverityWarn, Detail: fmt.Sprintf("all %d GPUs are excluded", len(r.GPUs)), Fix: "remove entries from [hardware] exclude_gpus"}
	}
	names := make([]string, len(use))
	for i, g := range use {
		names[i] = fmt.Sprintf("%d %s", g.Index, g.Name)
	}
	detail := fmt.Sprintf("%d usable: %s", len(use), strings.Join(names, ", "))
	if n := len(r.GPUs) - len(use); n > 0 {
		detail += fmt.Sprintf(" (%d excluded)", n)
	}
	return ok(name, detail)
}

func (d *Detector) bwrapCheck() Check {
	const name = "bwrap present"
	p, err := d.host.lookPath("bwrap")
	if err != nil {
		return Check{Name: name, Severity: SeverityWarn, Detail: "bubblewrap not found: native jobs disabled, WASM jobs still run", Fix: "apt-get install bubblewrap"}
	}
	return ok(name, p)
}

func diskCheck(r Report, repoDir string) Check {
	const name = "repo disk space"
	if r.Disk.TotalBytes == 0 {
		return Check{Name: name, Severity: SeverityFail, Detail: "cannot read free space of " + repoDir, Fix: "create the repo with vft init, or point --repo at an existing directory"}
	}
	detail := fmt.Sprintf("%s free of %s in %s", gib(r.Disk.FreeBytes), gib(r.Disk.TotalBytes), r.Disk.Path)
	if r.Disk.FreeBytes < DiskWarnBytes {
		return Check{Name: name, Severity: SeverityWarn, Detail: detail, Fix: fmt.Sprintf("free space on that disk (at least %s), run vft repo gc, or move the repo with --repo", gib(DiskWarnBytes))}
	}
	return ok(name, detail)
}
