// Package job is VFT's market protocol: what a job is (its spec), the signed
// messages that carry it (offers, cancels, bids, assignments, commitments,
// reveals, verdicts), the persistent state machine of each job (Book),
// matching (CanRun; verify.Choose ranks the bids), the submitter's side
// (Market: collect bids, assign, reveal, settle, with every verification
// decision taken by verify.Next) and the worker's side (Worker: fetch, run
// in an executor, commit, reveal).
package job

import (
	"fmt"
	"strings"
	"time"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/verify"
)

// Names of the executor kinds node/ registers (RegisterKind); their rules
// live in their packages.
const (
	ExecutorWASM   = "wasm"
	ExecutorNative = "native"
)

// Verification modes: the verify package defines them and owns what they
// mean; these are its names under job/'s.
const (
	VerifyExact     = verify.ModeExact
	VerifyTolerance = verify.ModeTolerance
	VerifySpot      = verify.ModeSpot
	VerifyCustom    = verify.ModeCustom
)

// Bounds every node enforces on a spec, so that one offer cannot ask the
// network for the impossible or flood it.
const (
	MaxRedundancy = verify.MaxRedundancy
	MaxInputs     = 256
	MaxArgs       = 256
	MaxEnv        = 64
	MaxTimeout    = 24 * time.Hour
	MaxDeadline   = 7 * 24 * time.Hour
	// MaxEscrowWorkers: an SPL multisig has 11 signers, one the submitter.
	MaxEscrowWorkers = 10
)

// Spec is the work a submitter asks for. It is the body of an Offer, in
// deterministic CBOR; every node checks it with Validate before use.
type Spec struct {
	Executor string `cbor:"executor"`
	// Module is the WASM module's CID (executor "wasm").
	Module string `cbor:"module,omitempty"`
	// Command is the argv run under bubblewrap (executor "native") or in
	// the image (executor "oci").
	Command []string `cbor:"command,omitempty"`
	// Image is an OCI image layout's CID (executor "oci").
	Image string `cbor:"image,omitempty"`
	// Inputs are UnixFS CIDs mounted read-only under /input.
	Inputs []Input            `cbor:"inputs"`
	Args   []string           `cbor:"args"`
	Env    map[string]string  `cbor:"env"`
	Seed   uint64             `cbor:"seed"` // the sandbox's randomness, same for every worker
	Needs  Resources          `cbor:"needs"`
	Verify VerificationPolicy `cbor:"verify"`
	// Reward is paid per accepted worker, in the smallest unit of Mint
	// (lamports when Mint is empty).
	Reward uint64 `cbor:"reward"`
	Mint   string `cbor:"mint"`
	// Escrow: the reward for all k workers is locked on chain in an SPL
	// multisig of the submitter and the workers before they start, and
	// released by the verified quorum (package escrow). Needs a Mint.
	Escrow bool `cbor:"escrow,omitempty"`
	// Deadline is when the submitter stops waiting (Unix milliseconds).
	Deadline int64 `cbor:"deadline"`
	// Nonce makes two otherwise identical offers two different jobs.
	Nonce []byte `cbor:"nonce"`
	// Floats is a wasm job's float mode: "" (portable, the default, left
	// out of the CBOR so that older offers keep their bytes and IDs) or
	// "native" (executor/wasm FloatsNative). The kind checks it.
	Floats string `cbor:"floats,omitempty"`
}

// Input mounts one CID at a path under /input.
type Input struct {
	CID  string `cbor:"cid"`
	Path string `cbor:"path"` // relative to /input; "" mounts at /input itself
}

// Resources is what one worker must offer to run the job.
type Resources struct {
	CPUCores       uint32 `cbor:"cpu"`
	MemoryBytes    uint64 `cbor:"memory"`
	GPUs           uint32 `cbor:"gpus"`
	GPUMemoryBytes uint64 `cbor:"gpu_memory"` // per GPU
	GPUModel       string `cbor:"gpu_model"`  // substring of the NVML name, e.g. "H100"; empty: any
	TimeoutMS      uint64 `cbor:"timeout_ms"`
	MaxOutputBytes uint64 `cbor:"max_output"`
}

// VerificationPolicy says how results are checked before anyone is paid:
// the verify package's Policy, which owns its fields, their bounds and
// their meaning.
type VerificationPolicy = verify.Policy

// Timeout is the per-worker run time limit.
func (r Resources) Timeout() time.Duration { return time.Duration(r.TimeoutMS) * time.Millisecond }

// Validate checks a spec as every node must before acting on it, at time
// now. The error names the first bad field and its value.
func (s Spec) Validate(now time.Time) error {
	kind, err := kindOf(s.Executor)
	if err != nil {
		return err
	}
	if err := kind.CheckSpec(s.ForExecutor()); err != nil {
		return err
	}
	if len(s.Inputs) > MaxInputs {
		return fmt.Errorf("%d inputs, at most %d", len(s.Inputs), MaxInputs)
	}
	seen := map[string]bool{}
	for i, in := range s.Inputs {
		if err := checkCID(fmt.Sprintf("inputs[%d].cid", i), in.CID); err != nil {
			return err
		}
		// The executor's own rule, checked here too so a bad offer is
		// refused before anyone bids on it.
		clean, err := executor.CleanGuestPath(in.Path)
		if err != nil {
			return fmt.Errorf("inputs[%d].path: %w", i, err)
		}
		if seen[clean] {
			return fmt.Errorf("inputs[%d].path %q is mounted twice", i, in.Path)
		}
		seen[clean] = true
	}
	if len(s.Args) > MaxArgs || len(s.Env) > MaxEnv {
		return fmt.Errorf("%d args and %d env entries, at most %d and %d", len(s.Args), len(s.Env), MaxArgs, MaxEnv)
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("env name %q is invalid", k)
		}
	}
	if t := s.Needs.Timeout(); t <= 0 || t > MaxTimeout {
		return fmt.Errorf("needs.timeout %s is outside (0, %s]", t, MaxTimeout)
	}
	if err := s.Verify.Validate(); err != nil {
		return err
	}
	if s.Escrow {
		switch {
		case s.Mint == "":
			return fmt.Errorf("escrow needs an SPL token: set the job's mint")
		case !s.Verify.WorkersKnownUpFront():
			return fmt.Errorf("escrow works with exact, tolerance and custom verification, not %s (its verifier is not known in advance)", s.Verify.Mode)
		case s.Verify.Workers > MaxEscrowWorkers:
			return fmt.Errorf("escrow with verify.k = %d: an SPL multisig holds the submitter and at most %d workers", s.Verify.Workers, MaxEscrowWorkers)
		case s.Reward == 0:
			return fmt.Errorf("escrow of a job that pays nothing")
		}
	}
	if len(s.Nonce) < 8 || len(s.Nonce) > 32 {
		return fmt.Errorf("nonce has %d bytes, want 8..32", len(s.Nonce))
	}
	deadline := time.UnixMilli(s.Deadline)
	if !deadline.After(now) {
		return fmt.Errorf("deadline %s has passed", deadline.UTC().Format(time.RFC3339))
	}
	if deadline.Sub(now) > MaxDeadline {
		return fmt.Errorf("deadline %s is more than %s away", deadline.UTC().Format(time.RFC3339), MaxDeadline)
	}
	return nil
}

func checkCID(field, s string) error { return executor.CheckCID(field, s) }
