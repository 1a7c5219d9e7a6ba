package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/wasm/wasmtest"
)

// Go modules need their runtime's memory: these limits are far above what
// badguest uses for its own work and far below what it asks for when told to.
var testLimits = executor.Limits{
	MemoryBytes:    256 << 20,
	Timeout:        20 * time.Second,
	MaxOutputBytes: 8 << 20,
	MaxStdoutBytes: 64 << 10,
}

// testRuntime is the runtime the tests run on: VFT_TEST_WASM_RUNTIME, or
// the build's default (Wasmtime with cgo, wazero without). `make
// test-wasm-runtimes` runs the package on each.
var testRuntime = os.Getenv("VFT_TEST_WASM_RUNTIME")

// testIsolate runs Wasmtime's tasks in child processes
// (VFT_TEST_WASM_ISOLATE=1; Config.Isolate).
var testIsolate = os.Getenv("VFT_TEST_WASM_ISOLATE") == "1"

var (
	builder  *wasmtest.Builder
	cacheDir string
	shared   struct {
		once sync.Once
		exec *Executor
		err  error
	}
)

func TestMain(m *testing.M) {
	ServeChild() // Config.Isolate re-runs this binary for each task
	dir, err := os.MkdirTemp("", "wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builder = wasmtest.NewBuilder(dir)
	cacheDir = filepath.Join(dir, "cache")
	code := m.Run()
	if shared.exec != nil {
		shared.exec.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// sharedExecutor is one executor for the whole test binary, so each module
// is compiled once.
func sharedExecutor(t testing.TB) *Executor {
	t.Helper()
	shared.once.Do(func() {
		shared.exec, shared.err = New(Config{Runtime: testRuntime, Isolate: testIsolate, CacheDir: cacheDir, Limits: testLimits}, nil)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.exec
}

func buildModule(t testing.TB, pkgDir string) string {
	t.Helper()
	p, err := builder.Build(pkgDir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Hand-assembled modules: one function exported as _start.
var (
	// (func (export "_start") unreachable)
	unreachableWasm = wasmModule(nil, 0x00, 0x0b)
	// (func (export "_start") (loop (br 0)))
	loopWasm = wasmModule(nil, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)
	// (func (export "_start"))
	nopWasm = wasmModule(nil, 0x0b)
	// (memory 65535) (func (export "_start")): 4 GiB at start, not exported.
	hugeMemoryWasm = wasmModule([]byte{0x05, 0x05, 0x01, 0x00, 0xff, 0xff, 0x03}, 0x0b)
)

// (import "env" "f" (func)) (func (export "_start")): like a GOOS=js build,
// it needs a host module the sandbox does not have.
var foreignImportWasm = []byte("\x00asm\x01\x00\x00\x00" +
	"\x01\x04\x01\x60\x00\x00" + // type: func() -> ()
	"\x02\x09\x01\x03env\x01f\x00\x00" + // import env.f as function 0
	"\x03\x02\x01\x00" + // function 1 has type 0
	"\x07\x0a\x01\x06_start\x00\x01" + // export "_start" func 1
	"\x0a\x04\x01\x02\x00\x0b") // body of function 1: end

func wasmModule(memorySection []byte, body ...byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00) // type: func() -> ()
	m = append(m, 0x03, 0x02, 0x01, 0x00)             // function 0 has type 0
	m = append(m, memorySection...)
	m = append(m, 0x07, 0x0a, 0x01, 0x06) // export "_start" func 0
	m = append(m, "_start"...)
	m = append(m, 0x00, 0x00)
	code := append([]byte{0x00}, body...) // no locals
	m = append(m, 0x0a, byte(len(code)+2), 0x01, byte(len(code)))
	return append(m, code...)
}

func TestHandWrittenModules(t *testing.T) {
	e := sharedExecutor(t)
	tests := []struct {
		name    string
		module  []byte
		limits  executor.Limits
		wantErr error
		wantMsg string
	}{
		{"unreachable", unreachableWasm, executor.Limits{}, executor.ErrTrap, "unreachable"},
		{"infinite loop", loopWasm, executor.Limits{Timeout: 200 * time.Millisecond}, executor.ErrTimeout, "200ms"},
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), executor.Limits{}, executor.ErrNotWASM, "not a WebAssembly module"},
		{"truncated wasm", unreachableWasm[:12], executor.Limits{}, executor.ErrNotWASM, ""},
		{"initial memory past limit", hugeMemoryWasm, executor.Limits{MemoryBytes: 64 << 20}, executor.ErrMemoryLimit, "4096 MiB"},
		{"nop", nopWasm, executor.Limits{}, nil, ""},
		{"foreign import", foreignImportWasm, executor.Limits{}, executor.ErrBadTask, "env.f"},
		// (func (export "_start") (call 0)): a trap, not a malformed task.
		{"infinite recursion", wasmModule(nil, 0x10, 0x00, 0x0b), executor.Limits{}, executor.ErrTrap, "stack overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := e.Run(context.Background(), executor.Task{JobID: tt.name, Module: tt.module,
				OutputDir: t.TempDir(), Limits: tt.limits})
			if !errors.Is(err, tt.wantErr) || (err != nil && !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Fatalf("Run = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
		})
	}
}

func TestBadGuest(t *testing.T) {
	e := sharedExecutor(t)
	mod := buildModule(t, "testdata/badguest")
	// A secret beside the input directory, that no task may read.
	parent := t.TempDir()
	input := filepath.Join(parent, "in")
	if err := os.MkdirAll(input, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(input, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		limits     executor.Limits
		wantErr    error
		wantMsg    string
		wantExit   int
		wantStdout string
		// outputChecked: wazero refuses the write that passes the output
		// budget (the task sees EIO and exits 1, the directory stays
		// within the limit); Wasmtime writes to the host directory
		// itself, so the limit is found by measuring /output during and
		// after the run (outputWatch): same error, but the task is
		// killed or has finished, and the directory may have grown past
		// the limit by what it wrote in one poll.
		outputChecked bool
		// oneFile: the output is one file, which isolated Wasmtime bounds
		// like wazero (the child's RLIMIT_FSIZE is the budget).
		oneFile bool
	}{
		{name: "go panic", args: []string{"panic"}, wantErr: executor.ErrTrap, wantMsg: "panic: boom", wantExit: 2},
		{name: "out of bounds", args: []string{"oob"}, wantErr: executor.ErrTrap, wantMsg: "out of bounds"},
		{name: "go infinite loop", args: []string{"loop"}, limits: executor.Limits{Timeout: 500 * time.Millisecond}, wantErr: executor.ErrTimeout, wantExit: -1},
		{name: "alloc within limit", args: []string{"alloc", "16"}, wantStdout: "allocated 16 MiB"},
		{name: "alloc past limit", args: []string{"alloc", "512"}, limits: executor.Limits{MemoryBytes: 64 << 20}, wantErr: executor.ErrMemoryLimit, wantMsg: "64 MiB", wantExit: 2},
		{name: "write within limit", args: []string{"write", "2"}},
		{name: "write past limit", args: []string{"write", "64"}, limits: executor.Limits{MaxOutputBytes: 4 << 20}, wantErr: executor.ErrOutputLimit, wantExit: 1, outputChecked: true, oneFile: true},
		// Issue #13, finding 5: 2000 empty directories and files wrote no bytes and cost nothing.
		{name: "empty entries past limit", args: []string{"touch", "2000"}, limits: executor.Limits{MaxOutputBytes: 1 << 20}, wantErr: executor.ErrOutputLimit, wantMsg: "each file and directory", wantExit: 1, outputChecked: true},
		{name: "entries within limit", args: []string{"touch", "10"}, wantStdout: "touched 10"},
		{name: "escape", args: []string{"escape"}, wantStdout: "refused /etc/passwd"},
		{name: "raw path_open escape", args: []string{"rawescape"}, wantStdout: `refused fd 3 "../secret"`},
		{name: "write input", args: []string{"writeinput"}},
		{name: "sleep is instant", args: []string{"sleep"}, limits: executor.Limits{Timeout: 5 * time.Second}, wantStdout: "slept true"},
		{name: "exit code", args: []string{"exit", "3"}, wantErr: executor.ErrExit, wantMsg: "leaving with 3", wantExit: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			res, err := e.Run(context.Background(), executor.Task{JobID: tt.name, ModulePath: mod, Args: tt.args,
				Inputs: []executor.Mount{{Host: input}}, OutputDir: out, Limits: tt.limits})
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Run: %v\nstdout: %s\nstderr: %s", err, res.Stdout, res.Stderr)
			}
			if !errors.Is(err, tt.wantErr) || (err != nil && !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Fatalf("Run = %v, want %v mentioning %q\nstderr: %s", err, tt.wantErr, tt.wantMsg, res.Stderr)
			}
			t.Logf("stdout: %s", res.Stdout)
			if tt.outputChecked && e.Runtime() == RuntimeWasmtime && !(tt.oneFile && testIsolate) {
				return
			}
			// Isolated, the file stops at the budget (RLIMIT_FSIZE) and the
			// module exits on the refused write, unless the output watch,
			// which polls every 20 ms, sees /output over budget first and
			// kills it (exit -1): a race on a loaded machine, with the same
			// error either way.
			raced := tt.oneFile && testIsolate && res.ExitCode == -1
			if res.ExitCode != tt.wantExit && !raced {
				t.Errorf("exit code %d, want %d", res.ExitCode, tt.wantExit)
			}
			if !strings.Contains(string(res.Stdout), tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", res.Stdout, tt.wantStdout)
			}
			if tt.limits.MaxOutputBytes > 0 && res.OutputBytes > tt.limits.MaxOutputBytes {
				t.Errorf("output grew to %d bytes, past the %d limit", res.OutputBytes, tt.limits.MaxOutputBytes)
			}
			if _, err := os.Stat(filepath.Join(input, "new")); err == nil {
				t.Errorf("the task wrote into its input directory")
			}
		})
	}
}

// TestDeterministic runs the same task twice, with inputs mounted as files
// and directories, and expects identical bytes; a different seed must change
// the random numbers.
func TestDeterministic(t *testing.T) {
	e := sharedExecutor(t)
	mod := buildModule(t, "testdata/badguest")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "inner.txt"), []byte("inner"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644)
	run := func(seed uint64) executor.Result {
		out := filepath.Join(t.TempDir(), "out")
		res, err := e.Run(context.Background(), executor.Task{Seed: seed, ModulePath: mod,
			Args: []string{"env"}, Env: map[string]string{"B": "2", "A": "1"},
			Inputs:    []executor.Mount{{Host: data, Guest: "data"}, {Host: filepath.Join(dir, "a.txt"), Guest: "a.txt"}},
			OutputDir: out})
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, res.Stderr)
		}
		if b, err := os.ReadFile(filepath.Join(out, "hello.txt")); err != nil || string(b) != "hello\n" {
			t.Fatalf("hello.txt = %q, %v", b, err)
		}
		return res
	}
	a, b, c := run(7), run(7), run(8)
	if !bytes.Equal(a.Stdout, b.Stdout) {
		t.Fatalf("same seed, different output:\n%s\n---\n%s", a.Stdout, b.Stdout)
	}
	if bytes.Equal(a.Stdout, c.Stdout) {
		t.Fatalf("different seeds, same output:\n%s", a.Stdout)
	}
	for _, want := range []string{"args [env]", "env [A=1 B=2]", "now 2000-01-01T", "inner \"inner\" <nil>", "a.txt false", "data true"} {
		if !strings.Contains(string(a.Stdout), want) {
			t.Errorf("stdout lacks %q:\n%s", want, a.Stdout)
		}
	}
}

func TestBadTasks(t *testing.T) {
	e := sharedExecutor(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "f.bin")
	os.WriteFile(file, []byte("x"), 0o644)
	full := filepath.Join(dir, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "left"), nil, 0o644)
	tests := []struct {
		name    string
		task    executor.Task
		wantErr error
		wantMsg string
	}{
		{"dotdot mount", executor.Task{Module: unreachableWasm, Inputs: []executor.Mount{{Host: dir, Guest: "../etc"}}}, executor.ErrBadMount, "../etc"},
		{"absolute mount", executor.Task{Module: unreachableWasm, Inputs: []executor.Mount{{Host: dir, Guest: "/etc"}}}, executor.ErrBadMount, "/etc"},
		{"file beside root dir", executor.Task{Module: unreachableWasm, Inputs: []executor.Mount{{Host: dir}, {Host: file, Guest: "x.bin"}}}, executor.ErrBadMount, "f.bin"},
		{"output not empty", executor.Task{Module: unreachableWasm, OutputDir: full}, executor.ErrBadMount, "not empty"},
		{"no module", executor.Task{}, executor.ErrBadTask, "no module"},
		{"gpus", executor.Task{Module: nopWasm, GPUs: []string{"GPU-1"}}, executor.ErrBadTask, "GPU"},
		{"missing module file", executor.Task{ModulePath: filepath.Join(dir, "nope.wasm")}, executor.ErrBadTask, "nope.wasm"},
		{"module file not wasm", executor.Task{ModulePath: file}, executor.ErrNotWASM, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.task.OutputDir == "" {
				tt.task.OutputDir = filepath.Join(t.TempDir(), "out")
			}
			_, err := e.Run(context.Background(), tt.task)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Run = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

func TestStdoutLimit(t *testing.T) {
	e := sharedExecutor(t)
	mod := buildModule(t, "testdata/badguest")
	tests := []struct {
		kib, max  int
		truncated bool
	}{{kib: 2, max: 4 << 10}, {kib: 64, max: 4 << 10, truncated: true}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.kib, "KiB"), func(t *testing.T) {
			res, err := e.Run(context.Background(), executor.Task{ModulePath: mod, Args: []string{"spam", fmt.Sprint(tt.kib)},
				OutputDir: t.TempDir(), Limits: executor.Limits{MaxStdoutBytes: tt.max}})
			if err != nil {
				t.Fatal(err)
			}
			want := min(tt.kib<<10, tt.max)
			if len(res.Stdout) != want || len(res.Stderr) != want {
				t.Errorf("kept %d bytes of stdout, %d of stderr, want %d", len(res.Stdout), len(res.Stderr), want)
			}
			if res.StdoutTruncated != tt.truncated || res.StderrTruncated != tt.truncated {
				t.Errorf("truncated = %v/%v, want %v", res.StdoutTruncated, res.StderrTruncated, tt.truncated)
			}
		})
	}
}

// TestConcurrentRuns runs tasks in parallel on one executor, with a cache of
// one compiled module so that evictions happen while modules are in use.
func TestConcurrentRuns(t *testing.T) {
	e, err := New(Config{Runtime: testRuntime, Isolate: testIsolate, MaxCompiled: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mod, want := nopWasm, error(nil)
			if i%2 == 1 {
				mod, want = unreachableWasm, executor.ErrTrap
			}
			if _, err := e.Run(context.Background(), executor.Task{Module: mod, OutputDir: t.TempDir()}); !errors.Is(err, want) {
				errs <- fmt.Errorf("run %d: %v, want %v", i, err, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(e.compiled); n > 1 {
		t.Errorf("%d compiled modules kept, want at most 1", n)
	}
}

func TestCloseStopsRuns(t *testing.T) {
	e, err := New(Config{Runtime: testRuntime, Isolate: testIsolate}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(context.Background(), executor.Task{Module: loopWasm, OutputDir: t.TempDir()})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, executor.ErrClosed) {
			t.Fatalf("run stopped by Close returned %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the run")
	}
	if _, err := e.Run(context.Background(), executor.Task{Module: loopWasm, OutputDir: t.TempDir()}); !errors.Is(err, executor.ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
}

func TestCallerCancel(t *testing.T) {
	e := sharedExecutor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := e.Run(ctx, executor.Task{Module: loopWasm, OutputDir: t.TempDir()})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, executor.ErrTimeout) {
		t.Fatalf("Run = %v, want the caller's context error, not ErrTimeout", err)
	}
}

// TestNoGoroutineLeak runs tasks that end in every way and expects the
// goroutine count back where it was once the executor is closed.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	e, err := New(Config{Runtime: testRuntime, Isolate: testIsolate}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mod := range [][]byte{nopWasm, unreachableWasm, loopWasm} {
		e.Run(context.Background(), executor.Task{Module: mod, OutputDir: t.TempDir(), Limits: executor.Limits{Timeout: 500 * time.Millisecond}})
	}
	e.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHostileFiles is finding 1 of issue #13: a module that is a symbolic
// link to /dev/zero made loadModule read without end (400 MiB of heap in a
// second), and a FIFO among the inputs blocks the task's read beyond its
// timeout. Both must be refused before the run, naming the file. A timer
// inside the test turns the old hang into a failure.
func TestHostileFiles(t *testing.T) {
	e := sharedExecutor(t)
	dir := t.TempDir()
	zero := filepath.Join(dir, "module.wasm")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	withFIFO := filepath.Join(dir, "inputs")
	if err := os.Mkdir(withFIFO, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(withFIFO, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		task    executor.Task
		wantErr error
		wantMsg string
	}{
		{"module symlink to /dev/zero", executor.Task{ModulePath: zero}, executor.ErrBadTask, "module.wasm is a symbolic link"},
		{"module is /dev/zero", executor.Task{ModulePath: "/dev/zero"}, executor.ErrBadTask, "/dev/zero is a device"},
		{"fifo among inputs", executor.Task{Module: nopWasm, Inputs: []executor.Mount{{Host: withFIFO}}}, executor.ErrBadMount, "pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.task.OutputDir = filepath.Join(t.TempDir(), "out")
			done := make(chan error, 1)
			go func() {
				_, err := e.Run(context.Background(), tt.task)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("Run = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("Run did not return: the executor read the hostile file without end")
			}
		})
	}
}

// TestCompileUnderJobLimits is issue #13's finding on WASM compilation: it
// ran outside the job's time limit, module bytes had no size cap, and the
// on-disk cache of compiled code grew without bound.
func TestCompileUnderJobLimits(t *testing.T) {
	t.Run("size cap before compiling", func(t *testing.T) {
		e, err := New(Config{Runtime: testRuntime, Isolate: testIsolate, MaxModuleBytes: 16, Limits: testLimits}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		_, err = e.Run(context.Background(), executor.Task{Module: nopWasm, OutputDir: t.TempDir()})
		if !errors.Is(err, executor.ErrBadTask) || !strings.Contains(err.Error(), "16-byte limit") {
			t.Fatalf("Run = %v, want ErrBadTask naming the 16-byte limit", err)
		}
	})
	t.Run("compile has a limit of its own", func(t *testing.T) {
		mod := buildModule(t, "testdata/badguest")
		e, err := New(Config{Runtime: testRuntime, Isolate: testIsolate, Limits: testLimits, CompileTimeout: time.Millisecond}, nil) // no cache: a cold compile
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		_, err = e.Run(context.Background(), executor.Task{ModulePath: mod, Args: []string{"sleep"}, OutputDir: t.TempDir(),
			Limits: executor.Limits{Timeout: 5 * time.Minute}})
		if !errors.Is(err, executor.ErrTimeout) || !strings.Contains(err.Error(), "compile limit") {
			t.Fatalf("Run = %v, want ErrTimeout naming the compile limit", err)
		}
		// The abandoned compile is not cached as a failure. (A generous
		// limit: a cold compile takes seconds on a loaded machine.)
		e.cfg.CompileTimeout = 5 * time.Minute
		if res, err := e.Run(context.Background(), executor.Task{ModulePath: mod, Args: []string{"exit", "0"}, OutputDir: t.TempDir()}); err != nil {
			t.Fatalf("Run after the timed-out compile: %v\n%s", err, res.Stderr)
		}
	})
	// A job's time limit starts after the compile: the same job must not
	// time out on a miner that compiles the module cold and finish on one
	// that has it cached (a Go module takes seconds to compile).
	t.Run("cold compile outside the job's time", func(t *testing.T) {
		mod := buildModule(t, "testdata/badguest")
		e, err := New(Config{Runtime: testRuntime, Isolate: testIsolate, Limits: testLimits}, nil) // no cache: a cold compile
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		start := time.Now()
		res, err := e.Run(context.Background(), executor.Task{ModulePath: mod, Args: []string{"exit", "0"}, OutputDir: t.TempDir(),
			Limits: executor.Limits{Timeout: 500 * time.Millisecond}})
		if err != nil {
			t.Fatalf("Run with a 500 ms limit and a cold compile (%v in all) = %v\n%s", time.Since(start), err, res.Stderr)
		}
	})
	t.Run("disk cache bounded", func(t *testing.T) {
		dir := t.TempDir()
		const limit = 64 << 10
		e, err := New(Config{Runtime: testRuntime, Isolate: testIsolate, CacheDir: dir, CacheMaxBytes: limit, Limits: testLimits}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		mod, err := os.ReadFile(buildModule(t, "testdata/badguest"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range [][]byte{mod, nopWasm, unreachableWasm, loopWasm} {
			if err := e.Compile(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
		usage, err := executor.DirUsage(dir)
		size := usage.Bytes
		if err != nil {
			t.Fatal(err)
		}
		if size > limit {
			t.Fatalf("the compile cache holds %d bytes, over its %d-byte limit", size, limit)
		}
		if size == 0 {
			t.Fatalf("the compile cache kept nothing, not even the small modules")
		}
	})
}

// TestModuleBombs hands the executor modules of a few bytes whose counts and
// sizes announce gigabytes. wazero allocates what they announce before it
// reads it: the first (found by FuzzCompile) made it reserve tens of GiB
// and killed the test process. Each must be refused as not WASM, having
// allocated little.
func TestModuleBombs(t *testing.T) {
	e, err := New(Config{Runtime: testRuntime, Isolate: testIsolate, Limits: testLimits}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const header = "\x00asm\x01\x00\x00\x00"
	const u32max = "\xff\xff\xff\xff\x0f"
	tests := []struct{ name, module string }{
		{"export count", header + "\x07\x05" + u32max},
		{"export count, fuzzer's", "\x00asm\x01\x00\x00\x00\aY\x94\xaf\xee<0"},
		{"import name size", header + "\x02\x06\x01" + u32max},
		{"custom section size", header + "\x00" + u32max + "\x01x"},
		{"data segment size", header + "\x0b\x07\x01\x01" + u32max},
		{"function locals", header + "\x0a\x0a\x01\x08\x01" + u32max + "\x7f\x0b"},
		{"element vector", header + "\x09\x08\x01\x01\x00" + u32max},
		{"type parameters", header + "\x01\x07\x01\x60" + u32max},
	}
	// A valid module whose table wazero would allocate at full size,
	// outside the memory limit: refused as a bad task.
	tables := []struct{ name, module string }{
		{"table minimum", header + "\x04\x07\x01\x70\x00\x80\x80\x80\x40"},
	}
	for _, tt := range tables {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), executor.Task{Module: []byte(tt.module), OutputDir: t.TempDir()})
			if !errors.Is(err, executor.ErrBadTask) || !strings.Contains(err.Error(), "table 0") {
				t.Fatalf("Run = %v, want ErrBadTask naming the table", err)
			}
		})
	}
	// (table 0 funcref) (func (export "_start") (drop (table.grow (ref.null func) (i32.const 0x7ffffff0)))):
	// the table has no maximum, so wazero would allocate 16 GiB at once.
	t.Run("table.grow", func(t *testing.T) {
		grow := wasmModule([]byte("\x04\x04\x01\x70\x00\x00"),
			0xd0, 0x70, 0x41, 0xf0, 0xff, 0xff, 0xff, 0x07, 0xfc, 0x0f, 0x00, 0x1a, 0x0b)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := e.Run(context.Background(), executor.Task{Module: grow, OutputDir: t.TempDir()}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
			t.Fatalf("table.grow allocated %d MiB", n>>20)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			done := make(chan error, 1)
			go func() {
				_, err := e.Run(context.Background(), executor.Task{Module: []byte(tt.module), OutputDir: t.TempDir()})
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, executor.ErrNotWASM) {
					t.Fatalf("Run = %v, want ErrNotWASM", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("Run did not return")
			}
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
				t.Fatalf("decoding a %d-byte module allocated %d MiB", len(tt.module), n>>20)
			}
		})
	}
}

// TestRunawayStopped runs modules that never end, on each runtime this
// build has, and logs how long after its deadline each was stopped
// (docs/BENCHMARKS.md quotes it; no timing is asserted). Both must end
// with ErrTimeout and exit -1, in either float mode (Wasmtime compiles
// each with its own engine).
func TestRunawayStopped(t *testing.T) {
	goLoop, err := os.ReadFile(buildModule(t, "testdata/badguest"))
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	for _, rt := range Runtimes() {
		e, err := New(Config{Runtime: rt, Isolate: testIsolate, CacheDir: filepath.Join(cacheDir, "runaway-"+rt), Limits: testLimits}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		for _, m := range []struct {
			name string
			bin  []byte
			args []string
		}{{"wasm loop", loopWasm, nil}, {"go loop", goLoop, []string{"loop"}}} {
			if err := e.Compile(context.Background(), m.bin); err != nil {
				t.Fatal(err)
			}
			for _, floats := range []string{FloatsPortable, FloatsNative} {
				// A first run compiles the native-floats code (Compile is
				// for portable), outside the timing.
				e.Run(context.Background(), executor.Task{Module: m.bin, Args: m.args, OutputDir: t.TempDir(), Floats: floats,
					Limits: executor.Limits{Timeout: timeout}})
				var worst time.Duration
				for range 5 {
					start := time.Now()
					res, err := e.Run(context.Background(), executor.Task{Module: m.bin, Args: m.args, OutputDir: t.TempDir(), Floats: floats,
						Limits: executor.Limits{Timeout: timeout}})
					over := time.Since(start) - timeout
					if !errors.Is(err, executor.ErrTimeout) || res.ExitCode != -1 {
						t.Fatalf("%s, %s, floats %s: Run = %v (exit %d), want ErrTimeout and exit -1", rt, m.name, floats, err, res.ExitCode)
					}
					worst = max(worst, over)
				}
				t.Logf("%s, %s, floats %s: stopped at most %v after its %v deadline (5 runs)", rt, m.name, floats, worst.Round(100*time.Microsecond), timeout)
			}
		}
	}
}

// Started marks the start of the task's time limit: once, after the
// compile, and not at all for a module that never gets that far.
func TestStartedAfterCompile(t *testing.T) {
	e := sharedExecutor(t)
	for _, tc := range []struct {
		name   string
		module []byte
		want   int
	}{
		{"runs", nopWasm, 1},
		{"traps", unreachableWasm, 1},
		{"not wasm", []byte("#!/bin/sh\n"), 0},
		{"foreign import", foreignImportWasm, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := 0
			e.Run(context.Background(), executor.Task{JobID: tc.name, Module: tc.module, OutputDir: t.TempDir(), Started: func() { started++ }})
			if started != tc.want {
				t.Fatalf("Started called %d times, want %d", started, tc.want)
			}
		})
	}
}
