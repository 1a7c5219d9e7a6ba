// Package executor defines how a node runs one task of a job in a sandbox.
//
// The job market hands an Executor a Task (a module, read-only inputs, an
// empty output directory, limits) and imports the output directory as the
// job's result. Implementations live in subpackages: wasm (wazero, WASI
// preview 1), native (bubblewrap) and noop (a scriptable stand-in for
// protocol tests).
//
// An executor kind is one package: its runner (Executor), its rules
// (a Kind value the job package declares as job.ExecutorKind: what its
// spec fields mean, what a worker fetches, how a task is built) and its
// `vft doctor` checks. node/kinds.go registers each kind with one line.
//
// A failed run never crashes the node: Run returns an error that wraps one of
// the sentinel values below and carries a reason a user can act on, so the job
// layer can fail the job with err.Error() and branch on errors.Is.
package executor

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Run wraps them with context; test with errors.Is.
var (
	// ErrTimeout: the task ran past Limits.Timeout (or its context ended).
	ErrTimeout = errors.New("task exceeded its time limit")
	// ErrMemoryLimit: the module asked for more memory than Limits.MemoryBytes.
	ErrMemoryLimit = errors.New("task exceeded its memory limit")
	// ErrOutputLimit: the task wrote more than Limits.MaxOutputBytes under /output.
	ErrOutputLimit = errors.New("task exceeded its output size limit")
	// ErrProcessLimit: the task ran more processes than its executor allows.
	ErrProcessLimit = errors.New("task exceeded its process limit")
	// ErrDiskLimit: the task filled the scratch space it was given.
	ErrDiskLimit = errors.New("task exceeded its scratch space limit")
	// ErrNotWASM: the module is not a valid WebAssembly binary.
	ErrNotWASM = errors.New("module is not a valid WebAssembly binary")
	// ErrTrap: the module trapped (unreachable, out-of-bounds access, a
	// Go panic, ...).
	ErrTrap = errors.New("task trapped")
	// ErrExit: the module exited with a non-zero exit code.
	ErrExit = errors.New("task exited with a non-zero code")
	// ErrBadMount: an input or output path is unusable or escapes its mount point.
	ErrBadMount = errors.New("bad mount")
	// ErrBadTask: the task itself is malformed (no module, both Module and
	// ModulePath set, ...).
	ErrBadTask = errors.New("bad task")
	// ErrClosed: Run was called after Close.
	ErrClosed = errors.New("executor is closed")
)

// Task is one execution of a module for a job.
type Task struct {
	// JobID identifies the job in logs; it does not influence the run.
	JobID string
	// Seed feeds every source of randomness the sandbox offers, so that the
	// same Task gives bit-for-bit identical output on every honest worker.
	Seed uint64

	// Module is the module binary; ModulePath names a file holding it.
	// At most one of them is set (wasm needs one; native takes a program
	// file in ModulePath or a command in Args).
	Module     []byte
	ModulePath string
	// ModuleID, when set, is the content address (CID) the caller fetched
	// and checked the module by. The wasm executor on Wasmtime, when it
	// holds the module of that address compiled, runs it without reading,
	// checking and hashing the file again (megabytes per task). Only the
	// node's own code sets it.
	ModuleID string

	// Image is a host directory holding an OCI image layout (oci-layout,
	// index.json, blobs/sha256), already fetched from storage by the
	// caller; the oci executor runs Args in it and verifies its blobs
	// before use. Other executors leave it empty.
	Image string

	// Inputs are mounted read-only under /input.
	Inputs []Mount
	// OutputDir is a host directory mounted writable at /output. It is
	// created if missing and must be empty: its whole content is the result.
	OutputDir string

	// Args are the program's arguments. wasm passes them after argv[0]
	// ("task"); native runs ModulePath with them or, without ModulePath,
	// runs Args[0] (looked up in the sandbox's PATH) with the rest.
	Args []string
	// Env is the whole environment of the task; nothing is inherited.
	Env map[string]string

	// Limits; a zero field means the executor's default.
	Limits Limits

	// Floats is the job spec's floats (wasm only; "" is "portable"): with
	// "native" the executor runs the module without NaN canonicalisation,
	// so a NaN's bits may differ between CPUs.
	Floats string

	// GPUs are the NVML UUIDs ("GPU-…") of the GPUs assigned to the task.
	// Only the native executor gives a task GPUs; wasm refuses a task with any.
	GPUs []string

	// Started, when set, is called once when the task's time limit starts:
	// after the executor's own setup (compiling a module, unpacking an
	// image), which does not count against it. A worker tells its
	// submitter then, so that the report deadline runs from there.
	Started func()
}

// NotifyStarted calls t.Started, if set: executors call it as the task's
// time limit starts.
func (t Task) NotifyStarted() {
	if t.Started != nil {
		t.Started()
	}
}

// Mount maps a host file or directory into the task's /input tree.
type Mount struct {
	// Host is the file or directory on the host.
	Host string
	// Guest is the path under /input, relative ("data", "a.bin"); "" or "."
	// is /input itself (directories only). It must not contain "..".
	Guest string
}

// Limits bound what one task may use.
type Limits struct {
	// MemoryBytes caps the module's linear memory.
	MemoryBytes uint64
	// Timeout caps the wall-clock duration of the run.
	Timeout time.Duration
	// MaxOutputBytes caps the total size of the files under /output.
	MaxOutputBytes int64
	// MaxStdoutBytes caps the captured stdout, and separately stderr;
	// the rest is dropped and Result.StdoutTruncated/StderrTruncated is set.
	MaxStdoutBytes int
	// CPUCores caps the CPU time the task may use per second of wall time,
	// in cores; 0 means no cap. Only native applies it (with cgroups): a
	// WASM task runs on one thread.
	CPUCores uint32
}

// WithDefaults returns l with each zero field taken from d.
func (l Limits) WithDefaults(d Limits) Limits {
	if l.MemoryBytes == 0 {
		l.MemoryBytes = d.MemoryBytes
	}
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = d.MaxOutputBytes
	}
	if l.MaxStdoutBytes == 0 {
		l.MaxStdoutBytes = d.MaxStdoutBytes
	}
	if l.CPUCores == 0 {
		l.CPUCores = d.CPUCores
	}
	return l
}

// Result describes a finished run. Run fills it as far as the run got, also
// when it returns an error (for example the stderr of a module that trapped).
type Result struct {
	// ExitCode is the task's exit status; -1 when it was killed (timeout,
	// cancellation) before it exited.
	ExitCode        int
	Stdout, Stderr  []byte
	StdoutTruncated bool
	StderrTruncated bool
	Duration        time.Duration
	// OutputBytes is the total size of the regular files under /output,
	// OutputEntries the files and directories there.
	OutputBytes   int64
	OutputEntries int64
	// PeakMemoryBytes and CPUTime are what the task used, where the
	// executor can count it (native with cgroups); zero otherwise.
	PeakMemoryBytes uint64
	CPUTime         time.Duration
}

// Executor runs tasks. Implementations are safe for concurrent use.
type Executor interface {
	// Name is the executor kind a job spec asks for ("wasm", "noop", ...).
	Name() string
	// Run executes t and waits for it to finish. Errors wrap the sentinel
	// values of this package.
	Run(ctx context.Context, t Task) (Result, error)
	// Close releases the executor's resources; it is safe to call twice.
	Close() error
}

// RunError puts a finished run's error in the terms every executor uses:
// ErrClosed when the executor was closing, and the job ID for the logs.
func RunError(err error, closing bool, jobID string) error {
	if err == nil {
		return nil
	}
	if closing {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	if jobID != "" {
		err = fmt.Errorf("job %s: %w", jobID, err)
	}
	return err
}
