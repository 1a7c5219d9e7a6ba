//go:build !(cgo && linux)

package hwdetect

import (
	"context"
	"log/slog"
	"runtime"
)

// stubSource stands in for NVML where go-nvml cannot be built (it needs cgo)
// or has nothing to find (NVIDIA's NVML GPUs are served on Linux here).
type stubSource struct{ status NVMLStatus }

// NVML stands for the NVIDIA library, which builds without cgo cannot use.
type NVML interface{}

func gpuSourceFor(opts Options, _ *slog.Logger) gpuSource {
	if opts.source != nil {
		return opts.source
	}
	if runtime.GOOS != "linux" {
		return stubSource{NVMLStatus{
			Error: "GPU detection unavailable on " + runtime.GOOS + ": NVML is used on Linux only",
			Fix:   "run GPU miners on Linux, or declare GPUs in [hardware.override]",
		}}
	}
	return stubSource{NVMLStatus{
		Error: "built without cgo: GPU detection unavailable",
		Fix:   "use a vft binary built with CGO_ENABLED=1",
	}}
}

func (s stubSource) probe(ctx context.Context) (gpuProbe, error) {
	if err := ctx.Err(); err != nil {
		return gpuProbe{}, err
	}
	return gpuProbe{nvml: s.status}, nil
}

func (stubSource) close() error { return nil }
