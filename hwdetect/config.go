package hwdetect

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Config is the `[hardware]` section of the node's config.toml. The node's
// config embeds it; every key is documented here so that node.example.toml
// can copy the comments verbatim.
//
//	[hardware]
//	# GPUs never offered to jobs, by NVML index ("0") or UUID ("GPU-8f6c...").
//	# `vft hw` prints both. Use it to keep a display GPU or a GPU shared with
//	# other work out of the market.
//	exclude_gpus = []
//
//	# Manual declaration, only when detection is wrong or unavailable (no NVML,
//	# a container without /dev/nvidia*). Each key that is set replaces what was
//	# detected; keys left out keep the detected value.
//	# [hardware.override]
//	# cpu_cores = 16                 # logical cores offered to jobs
//	# memory_bytes = 68719476736     # RAM in bytes (64 GiB)
//	# [[hardware.override.gpus]]     # replaces the whole detected GPU list
//	# name = "NVIDIA GeForce RTX 4090"
//	# memory_bytes = 25769803776     # per GPU, in bytes (24 GiB)
//	# count = 1                      # identical GPUs of this kind (default 1)
//	# compute_capability = "8.9"     # optional, "major.minor"
type Config struct {
	// ExcludeGPUs lists GPUs, by NVML index ("0") or UUID ("GPU-..."), that
	// are reported but never offered to jobs.
	ExcludeGPUs []string `toml:"exclude_gpus"`
	// Override, when set, replaces the detected values it declares.
	Override *Override `toml:"override"`
}

// Override is a manual declaration of hardware. A zero field means "keep
// what was detected", so a miner only writes what detection got wrong.
type Override struct {
	// GPUs, when non-empty, replaces the detected GPU list entirely: mixing
	// declared and detected GPUs would make indexes ambiguous.
	GPUs []GPUOverride `toml:"gpus"`
	// CPUCores is the number of logical cores offered to jobs (0 = detected).
	CPUCores int `toml:"cpu_cores"`
	// MemoryBytes is the RAM in bytes (0 = detected).
	MemoryBytes uint64 `toml:"memory_bytes"`
}

// GPUOverride declares Count identical GPUs. Declared GPUs have no UUID, so
// they are addressed by index (in declaration order, counting from 0).
type GPUOverride struct {
	Name              string `toml:"name"`
	MemoryBytes       uint64 `toml:"memory_bytes"`
	Count             int    `toml:"count"`              // 0 means 1
	ComputeCapability string `toml:"compute_capability"` // optional, "8.9"
}

// maxDeclaredGPUs bounds a declaration so that a typo (count = 80) is caught.
const maxDeclaredGPUs = 64

// DefaultConfig returns the configuration used when config.toml has no
// [hardware] section: detect everything, exclude nothing.
func DefaultConfig() Config {
	// An empty (not nil) slice makes `vft config show` print the key.
	return Config{ExcludeGPUs: []string{}}
}

// Validate reports the first invalid value, naming its key as it appears in
// config.toml so that the user can find it.
func (c Config) Validate() error {
	for i, e := range c.ExcludeGPUs {
		if _, _, err := parseGPURef(e); err != nil {
			return fmt.Errorf("hardware.exclude_gpus[%d] = %q: %w", i, e, err)
		}
	}
	if c.Override == nil {
		return nil
	}
	o := c.Override
	if o.CPUCores < 0 {
		return fmt.Errorf("hardware.override.cpu_cores = %d: must be 0 (detected) or a positive core count", o.CPUCores)
	}
	total := 0
	for i, g := range o.GPUs {
		key := fmt.Sprintf("hardware.override.gpus[%d]", i)
		if strings.TrimSpace(g.Name) == "" {
			return fmt.Errorf("%s.name is empty: name the GPU model, e.g. \"NVIDIA GeForce RTX 4090\"", key)
		}
		if g.MemoryBytes == 0 {
			return fmt.Errorf("%s.memory_bytes = 0: give the memory of one GPU in bytes", key)
		}
		if g.Count < 0 {
			return fmt.Errorf("%s.count = %d: must be 1 or more (0 means 1)", key, g.Count)
		}
		if g.ComputeCapability != "" {
			if _, _, err := parseComputeCapability(g.ComputeCapability); err != nil {
				return fmt.Errorf("%s.compute_capability = %q: %w", key, g.ComputeCapability, err)
			}
		}
		total += max(g.Count, 1)
	}
	if total > maxDeclaredGPUs {
		return fmt.Errorf("hardware.override.gpus declares %d GPUs: at most %d per node", total, maxDeclaredGPUs)
	}
	return nil
}

// parseGPURef reads an exclude_gpus entry: either an index or a UUID.
func parseGPURef(s string) (index int, uuid string, err error) {
	if strings.HasPrefix(s, "GPU-") && len(s) > len("GPU-") {
		return -1, s, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, "", errors.New(`want a GPU index like "0" or an NVML UUID like "GPU-8f6c3a1e-..." (see vft hw)`)
	}
	return n, "", nil
}

// parseComputeCapability accepts "major.minor", as NVIDIA publishes it.
func parseComputeCapability(s string) (major, minor int, err error) {
	a, b, ok := strings.Cut(s, ".")
	if ok {
		major, err = strconv.Atoi(a)
		if err == nil {
			minor, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || major < 1 || minor < 0 {
		return 0, 0, errors.New(`want "major.minor", e.g. "8.9"`)
	}
	return major, minor, nil
}
