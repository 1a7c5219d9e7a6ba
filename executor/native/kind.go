package native

import (
	"fmt"

	"github.com/vft-network/vft/executor"
)

// Kind is the native executor kind's rules, which every node applies to
// offers (job.ExecutorKind): a job names a command the miner runs under
// bubblewrap, with the GPUs it needs.
type Kind struct{}

// Name is "native".
func (Kind) Name() string { return Name }

// CheckSpec checks a native job's fields.
func (Kind) CheckSpec(s executor.JobSpec) error {
	if len(s.Command) == 0 || s.Command[0] == "" {
		return fmt.Errorf("command is empty: a native job needs the program to run")
	}
	if s.Module != "" {
		return fmt.Errorf("module is set for a native job")
	}
	if s.Floats != "" {
		return fmt.Errorf("floats = %q for a native job: it is a wasm setting; the program's own code decides its floats", s.Floats)
	}
	return nil
}

// Content: a native job stages nothing but its inputs.
func (Kind) Content(executor.JobSpec) []executor.Content { return nil }

// Prepare runs the command with the job's args after it.
func (Kind) Prepare(s executor.JobSpec, _ map[string]string, t *executor.Task) error {
	t.Args = append(append([]string{}, s.Command...), s.Args...)
	return nil
}
