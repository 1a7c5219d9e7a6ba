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
	return nil
}

// Content is the module, which must also fit in the job's memory.
func (Kind) Content(s executor.JobSpec) []executor.Content {
	return []executor.Content{{Field: "module", CID: s.Module, File: "module.wasm", MaxBytes: int64(s.MemoryBytes)}}
}

// Prepare points the task at the staged module.
func (Kind) Prepare(_ executor.JobSpec, staged map[string]string, t *executor.Task) error {
	t.ModulePath = staged["module"]
	return nil
}
