package oci

import (
	"fmt"

	"github.com/vft-network/vft/executor"
)

// Kind is the oci executor kind's rules (job.ExecutorKind): a job names an
// OCI image layout by CID and, optionally, the command to run in it (else
// the image's entrypoint and command run), with the GPUs it needs.
type Kind struct{}

// Name is "oci".
func (Kind) Name() string { return Name }

// CheckSpec checks an oci job's fields.
func (Kind) CheckSpec(s executor.JobSpec) error {
	if err := executor.CheckCID("image", s.Image); err != nil {
		return fmt.Errorf("%w (import one with `vft image import PATH`)", err)
	}
	if s.Module != "" {
		return fmt.Errorf("module is set for an oci job: it runs a command in its image")
	}
	if s.Floats != "" {
		return fmt.Errorf("floats = %q for an oci job: it is a wasm setting; the program's own code decides its floats", s.Floats)
	}
	if len(s.Command) == 0 && len(s.Args) > 0 {
		// Docker would append them to the entrypoint; a job says what runs.
		return fmt.Errorf("args without command for an oci job: give the whole command (command = [...]), or neither to run the image's entrypoint")
	}
	return nil
}

// Content is the image layout, a directory. It is checked blob by blob
// against its digests when it is unpacked (Executor.Prepare or Run).
func (Kind) Content(s executor.JobSpec) []executor.Content {
	return []executor.Content{{Field: "image", CID: s.Image, File: "image"}}
}

// Prepare points the task at the staged image and sets its command: the
// spec's command and args, or nothing, which runs the image's entrypoint
// and command.
func (Kind) Prepare(s executor.JobSpec, staged map[string]string, t *executor.Task) error {
	t.Image = staged["image"]
	t.Args = nil
	if len(s.Command) > 0 {
		t.Args = append(append([]string{}, s.Command...), s.Args...)
	}
	return nil
}
