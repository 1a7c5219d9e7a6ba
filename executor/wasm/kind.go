package wasm

import (
	"fmt"

	"github.com/vft-network/vft/executor"
)

// Kind is the wasm executor kind's rules, which every node applies to
// offers (job.ExecutorKind): a job names a module by CID, runs its main
// with args, and can have no GPUs.
type Kind struct{}

// Name is "wasm".
func (Kind) Name() string { return Name }

// CheckSpec checks a wasm job's fields.
func (Kind) CheckSpec(s executor.JobSpec) error {
	if err := executor.CheckCID("module", s.Module); err != nil {
		return err
	}
	if len(s.Command) > 0 {
		return fmt.Errorf("command is set for a wasm job: the module's main runs, with args")
	}
	if s.GPUs > 0 {
		return fmt.Errorf("needs.gpus = %d for a wasm job: WASM cannot use GPUs; use executor native", s.GPUs)
	}
	return CheckFloats(s.Floats)
}

// Content is the module, which must also fit in the job's memory.
func (Kind) Content(s executor.JobSpec) []executor.Content {
	return []executor.Content{{Field: "module", CID: s.Module, File: "module.wasm", MaxBytes: int64(s.MemoryBytes)}}
}

// Prepare points the task at the staged module (none when the executor
// holds it compiled: HoldModule), named by its CID, with the job's floats.
func (Kind) Prepare(s executor.JobSpec, staged map[string]string, t *executor.Task) error {
	t.ModulePath, t.ModuleID = staged["module"], s.Module
	t.Floats = s.Floats
	return nil
}

// A wasm job's float modes (the spec's floats, executor.Task.Floats).
const (
	// FloatsPortable (the default; "" in a spec means it) canonicalises
	// every NaN a float operation makes, so results are the same bits on
	// every CPU and exact verification never depends on the hardware. It
	// costs a compare and select per float operation: up to 2× on
	// float-heavy code (docs/BENCHMARKS.md).
	FloatsPortable = "portable"
	// FloatsNative runs float operations as the CPU does them. Only the
	// bits of a NaN can differ (x86 and ARM make different ones), so exact
	// verification can disagree between miners on different hardware only
	// when a result holds a NaN. wazero cannot canonicalise and runs every
	// job this way.
	FloatsNative = "native"
)

// CheckFloats names a bad floats value; "" is the default, portable.
func CheckFloats(v string) error {
	if v == "" || v == FloatsPortable || v == FloatsNative {
		return nil
	}
	return fmt.Errorf("floats %q: use %s (the default: NaNs the same on every CPU) or %s (faster float code)",
		v, FloatsPortable, FloatsNative)
}

// nativeFloats says whether a task runs without NaN canonicalisation.
func nativeFloats(v string) bool { return v == FloatsNative }
