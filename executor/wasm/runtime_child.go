//go:build cgo

package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/vft-network/vft/executor"
)

// childEnv marks a process started by runChild: ServeChild runs one task
// in it and exits.
const childEnv = "VFT_WASM_CHILD"

// servesChildren says that this program called ServeChild, so that a
// child of it runs the task: without it the child would be the whole
// program again (a test binary would run its tests), so New refuses
// Config.Isolate.
var servesChildren atomic.Bool

// ServeChild turns this process into an isolated task runner when an
// executor with Config.Isolate started it (it never returns then), and
// returns at once otherwise. Call it first thing in main, and in the
// TestMain of any test binary that runs isolated tasks.
func ServeChild() {
	servesChildren.Store(true)
	if os.Getenv(childEnv) != "1" {
		return
	}
	var req execRequest
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "wasm child: read the task:", err)
		os.Exit(3)
	}
	if req.MaxFileBytes > 0 {
		// No file under /output can pass the output budget: the write
		// that would fails with EFBIG (SIGXFSZ, which would kill the
		// process instead, is ignored), as wazero's outputFS refuses it.
		signal.Ignore(syscall.SIGXFSZ)
		lim := &syscall.Rlimit{Cur: uint64(req.MaxFileBytes), Max: uint64(req.MaxFileBytes)}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, lim); err != nil {
			fmt.Fprintln(os.Stderr, "wasm child: limit file size:", err)
			os.Exit(3)
		}
	}
	x := serveChild(req)
	if err := json.NewEncoder(os.Stdout).Encode(x); err != nil {
		os.Exit(3)
	}
	os.Exit(0)
}

func serveChild(req execRequest) execResult {
	engine := newEngine(true, req.NativeFloats)
	// The parent compiled the module with the same settings and wrote it
	// to its cache; only the node writes there, so the code is trusted
	// once its checksum matches.
	code, err := readCode(req.CodePath)
	if err != nil {
		return execResult{Err: fmt.Sprintf("wasm child: load the compiled module: %v", err)}
	}
	// Mapped from the file, now known to be whole: code loaded from
	// memory would need a memfd for the module's memory image, which the
	// child's RLIMIT_FSIZE (the output budget) may refuse. From memory
	// only if the cache's pruning removed the file meanwhile.
	mod, err := wasmtime.NewModuleDeserializeFile(engine, req.CodePath)
	if err != nil {
		mod, err = wasmtime.NewModuleDeserialize(engine, code)
	}
	if err != nil {
		return execResult{Err: fmt.Sprintf("wasm child: load the compiled module: %v", err)}
	}
	return execute(engine, mod, req, nil)
}

// runChild runs the task in a child process of this binary (ServeChild) and
// kills it (its whole process group) when ctx ends or /output passes its
// budget. outputHit says the budget killed it. An error is returned only
// when the child could not be started; a child that died is a failed run.
func (r *wasmtimeRuntime) runChild(ctx context.Context, m *wtModule, req execRequest, maxOutput int64) (execResult, bool, error) {
	path, err := r.codeFile(m)
	if err != nil {
		return execResult{}, false, err
	}
	req.CodePath = path
	req.MaxFileBytes = maxOutput
	self, err := os.Executable()
	if err != nil {
		return execResult{}, false, fmt.Errorf("wasm: find this program to run the task in a child process: %w", err)
	}
	in, err := json.Marshal(req)
	if err != nil {
		return execResult{}, false, err
	}
	cmd := exec.Command(self)
	cmd.Env = []string{childEnv + "=1"}
	cmd.Stdin = bytes.NewReader(in)
	var stdout bytes.Buffer
	stderr := &executor.CapBuffer{Max: 64 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	// Its own process group, so that the kill takes anything it started;
	// and it dies with the node.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return execResult{}, false, fmt.Errorf("wasm: start the task's child process: %w", err)
	}
	kill := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stopKill := context.AfterFunc(ctx, kill)
	watch := watchOutput(req.OutDir, maxOutput, kill)
	waitErr := cmd.Wait()
	stopKill()
	outputHit := watch.end()
	var x execResult
	if waitErr == nil {
		if err := json.Unmarshal(stdout.Bytes(), &x); err == nil {
			return x, outputHit, nil
		}
	}
	// Killed (ctx, output budget) or crashed: outcome.err reads a stop
	// from the context; a crash is the runtime's failure, not the task's.
	x.Err = fmt.Sprintf("the task's child process died (%v): %s", waitErr, bytes.TrimSpace(stderr.Bytes()))
	return x, outputHit, nil
}

// codeFile returns the path of the module's compiled code in the cache,
// writing it again if the cache's pruning removed it since the compile.
func (r *wasmtimeRuntime) codeFile(m *wtModule) (string, error) {
	path := r.codePath(m.key)
	if _, err := readCode(path); err == nil {
		return path, nil
	}
	code, err := m.mod.Serialize()
	if err != nil {
		return "", fmt.Errorf("wasm: serialize the module for the child process: %w", err)
	}
	if err := writeCode(path, code); err != nil {
		return "", fmt.Errorf("wasm: write the module for the child process: %w", err)
	}
	return path, nil
}
