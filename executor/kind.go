package executor

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// JobSpec is what an executor kind reads of a job's spec: the kind's own
// fields (a wasm module, a native command, ...) and the common ones its
// rules depend on. The job package fills it from its Spec; a kind's
// package says what the fields mean for it (its Kind), so adding a kind
// touches no other package's rules.
type JobSpec struct {
	// Module is a WASM module's CID (kind wasm).
	Module string
	// Image is an OCI image layout's CID (kind oci; `vft image import`
	// makes one).
	Image string
	// Command is the argv a kind runs (native; oci runs it in the image).
	Command []string
	// Args follow Command (or, for wasm, the module's argv[0]).
	Args []string
	Env  map[string]string
	// GPUs and MemoryBytes are what the job needs of one worker.
	GPUs        uint32
	MemoryBytes uint64
	// Floats is how a wasm job's float operations treat NaNs: "" or
	// "portable" (canonical NaNs, the same bits on every CPU) or "native"
	// (faster; executor/wasm's FloatsNative says when they differ).
	Floats string
}

// Content is something a worker fetches by CID before a task runs,
// besides the job's inputs (which every kind mounts under /input).
type Content struct {
	// Field is the spec field that names it ("module"), for errors.
	Field string
	CID   string
	// File is where it is staged, relative to the job's staging
	// directory; Prepare finds it there.
	File string
	// MaxBytes bounds it beyond the miner's staging budget (0: no bound
	// of its own): a wasm module must fit in the job's memory.
	MaxBytes int64
}

// CheckCID names field when s is not a CID.
func CheckCID(field, s string) error {
	if _, err := cid.Decode(s); err != nil {
		return fmt.Errorf("%s %q is not a CID", field, s)
	}
	return nil
}
