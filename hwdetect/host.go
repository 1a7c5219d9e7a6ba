package hwdetect

import (
	"bufio"
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/cpu"
)

// detectCPU describes the processor. Cores are those this process may run
// on (runtime.NumCPU honours the affinity mask), which is what jobs get.
func detectCPU() (CPU, []string) {
	c := CPU{Arch: runtime.GOARCH, LogicalCores: runtime.NumCPU(), Features: cpuFeatures()}
	var warnings []string
	model, err := cpuModel()
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("CPU model: %v", err))
	}
	c.Model = model
	return c, warnings
}

// cpuFeatures lists the ISA extensions that decide which native builds
// (PyTorch, ONNX Runtime, llama.cpp) run here. x/sys/cpu is used rather than
// /proc/cpuinfo because it also checks the OS saves the AVX registers.
func cpuFeatures() []string {
	var flags []struct {
		has  bool
		name string
	}
	switch runtime.GOARCH {
	case "amd64", "386":
		x := cpu.X86
		flags = append(flags, []struct {
			has  bool
			name string
		}{
			{x.HasSSE42, "sse4_2"}, {x.HasAVX, "avx"}, {x.HasAVX2, "avx2"}, {x.HasFMA, "fma"},
			{x.HasAVX512F, "avx512f"}, {x.HasAVX512BW, "avx512bw"}, {x.HasAVX512VL, "avx512vl"},
			{x.HasAVX512VNNI, "avx512_vnni"}, {x.HasAVX512BF16, "avx512_bf16"}, {x.HasAVXVNNI, "avx_vnni"},
			{x.HasAMXTile, "amx_tile"},
		}...)
	case "arm64":
		a := cpu.ARM64
		flags = append(flags, []struct {
			has  bool
			name string
		}{
			{a.HasASIMD, "asimd"}, {a.HasFPHP, "fphp"}, {a.HasASIMDHP, "asimdhp"}, {a.HasASIMDDP, "asimddp"},
			{a.HasI8MM, "i8mm"}, {a.HasSVE, "sve"}, {a.HasSVE2, "sve2"},
		}...)
	}
	out := []string{}
	for _, f := range flags {
		if f.has {
			out = append(out, f.name)
		}
	}
	return out
}

// cpuInfoModel finds the model in /proc/cpuinfo. x86 has "model name"; ARM
// boards put it under "Model" or "Hardware", older ARM kernels "Processor".
func cpuInfoModel(data []byte) string {
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if ok && v != "" {
			if _, seen := fields[k]; !seen {
				fields[k] = v
			}
		}
	}
	for _, k := range []string{"model name", "Model", "Hardware", "Processor", "cpu model", "uarch"} {
		if v := fields[k]; v != "" {
			return v
		}
	}
	return ""
}

// parseMeminfo reads MemTotal and MemAvailable (kB) from /proc/meminfo.
// Kernels before 3.14 lack MemAvailable; MemFree+Buffers+Cached approximates it.
func parseMeminfo(data []byte) (Memory, error) {
	kb := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("meminfo %s: %w", k, err)
		}
		kb[k] = n
	}
	total, ok := kb["MemTotal"]
	if !ok || total == 0 {
		return Memory{}, fmt.Errorf("meminfo: no MemTotal")
	}
	avail, ok := kb["MemAvailable"]
	if !ok {
		avail = kb["MemFree"] + kb["Buffers"] + kb["Cached"]
	}
	return Memory{TotalBytes: total * 1024, AvailableBytes: min(avail, total) * 1024}, nil
}
