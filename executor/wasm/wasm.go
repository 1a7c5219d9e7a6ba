// Package wasm runs WebAssembly modules (WASI preview 1) with Wasmtime
// (wasmtime-go, in builds with cgo: the default) or wazero (pure Go: builds
// without cgo, or Config.Runtime = "wazero"). Both give a task the same
// sandbox and write the same bytes (examples/runtimes_test.go).
//
// A task sees exactly two directories: its inputs read-only at /input and
// its output directory writable at /output. Its clock is fake and its
// randomness is seeded from Task.Seed, so the same task writes the same bytes
// on every machine: results can be compared bit for bit. Memory, wall time,
// output size and captured stdout/stderr are limited; every limit ends the
// run with an error wrapping the matching executor sentinel.
//
// Compiled machine code is kept in memory per module hash and on disk in
// Config.CacheDir, so a module is compiled once per node, not once per task.
//
// Where the runtimes differ (runtime_wasmtime.go says why): Wasmtime stops
// a task by epoch interruption (a counter compared at loop headers; a few
// ms after the deadline) instead of a call into Go at every loop header;
// it canonicalises NaNs; it writes /output itself, so the output budget is
// enforced by measuring /output every 20 ms and after the run (the task is
// killed, where wazero fails the write that passes the budget; an isolated
// task's child also has the budget as RLIMIT_FSIZE, so one file cannot
// pass it: that write fails, as with wazero); and it
// reports a refused memory grow only through the module's own "out of
// memory" on stderr (Go's runtime prints it), so a module that fails
// silently after one gets ErrExit or ErrTrap instead of ErrMemoryLimit.
package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/vft-network/vft/executor"
)

// Name is the executor kind in job specs.
const Name = "wasm"

// DefaultLimits returns the limits for a task field left zero, unless Config overrides them.
//
// Memory: a Go program built with GOOS=wasip1 (Go 1.26) starts with about
// 2.3 MiB of linear memory and needs about 6 MiB before main runs; its heap
// then grows to roughly twice the live data (GC). The tests use 256 MiB for
// the examples; 512 MiB leaves room for real work.
func DefaultLimits() executor.Limits {
	return executor.Limits{
		MemoryBytes:    512 << 20,
		Timeout:        5 * time.Minute,
		MaxOutputBytes: 1 << 30,
		MaxStdoutBytes: 1 << 20,
	}
}

// DefaultMaxModuleBytes bounds module size. Decoding and compiling a module
// takes about 20 bytes of the node's memory per module byte (a 2.9 MB Go
// module: 56 MiB), outside any job's memory limit, so the cap is what bounds
// it: 64 MiB of module is about 1.3 GiB while it compiles. Go programs are a
// few MiB; data belongs in inputs.
const DefaultMaxModuleBytes = 64 << 20

// DefaultCompileTimeout bounds one compile of a module. It is not part of
// the job's time limit: a miner that compiled the module before loads it
// from its cache at once, and a job must not time out on a cold miner and
// finish on a warm one. Wasmtime compiles a 3 MB Go module in about 4 s of
// CPU, a 64 MiB module (the size cap) in minutes on a busy machine.
const DefaultCompileTimeout = 5 * time.Minute

// maxMemoryBytes is what wasm32 can address: 65536 pages of 64 KiB.
const maxMemoryBytes = 4 << 30

// Config configures an Executor.
type Config struct {
	// CacheDir holds compiled modules across restarts; "" keeps them in memory only.
	CacheDir string
	// Limits are the defaults for a task's zero limits (DefaultLimits() where zero).
	Limits executor.Limits
	// MaxModuleBytes refuses larger modules before they are compiled
	// (default DefaultMaxModuleBytes).
	MaxModuleBytes int64
	// MaxCompiled is how many compiled modules stay in memory (default 16).
	MaxCompiled int
	// CompileTimeout bounds compiling one module, before the task's own
	// time limit starts (default DefaultCompileTimeout).
	CompileTimeout time.Duration
	// CompileWorkers is how many goroutines compile one module (default
	// GOMAXPROCS, at least 2): a cold compile of a Go module takes seconds
	// on one core.
	CompileWorkers int
	// CacheMaxBytes bounds the compiled code in CacheDir (default 1 GiB):
	// past it the oldest files are removed after each new compile.
	CacheMaxBytes int64
	// Runtime runs the modules: RuntimeWasmtime or RuntimeWazero (default
	// DefaultRuntime(): Wasmtime where the build has cgo). Results are the
	// same on both.
	Runtime string
	// Isolate runs each Wasmtime task in a child process of this binary,
	// killed at the task's deadline, instead of in the executor's process:
	// a crash of the runtime cannot take the node down, and since killing
	// the process is what stops a runaway module, the code needs no epoch
	// check at its loop headers (up to 2× faster on tight loops). It costs
	// a process start per task (docs/BENCHMARKS.md), and the program must
	// call ServeChild first thing in main (and in TestMain). Wazero ignores
	// it.
	Isolate bool
}

// Executor is the WASM executor. It is safe for concurrent use.
type Executor struct {
	cfg   Config
	log   *slog.Logger
	cache wazero.CompilationCache
	rt    wazero.Runtime
	wt    *wasmtimeRuntime // nil when wazero runs the modules

	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	compiled map[[32]byte]*compiled
	useClock uint64

	closeOnce sync.Once
	closeErr  error
}

// compiled is a module in the in-memory cache. mod and err are set once,
// before ready is closed; refs and lastUse are guarded by Executor.mu.
type compiled struct {
	ready   chan struct{}
	mod     wazero.CompiledModule
	err     error
	refs    int
	lastUse uint64
}

var _ executor.Executor = (*Executor)(nil)

// New builds an executor. It creates cfg.CacheDir if needed.
func New(cfg Config, log *slog.Logger) (*Executor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Limits = cfg.Limits.WithDefaults(DefaultLimits())
	if cfg.MaxModuleBytes == 0 {
		cfg.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if cfg.MaxCompiled == 0 {
		cfg.MaxCompiled = 16
	}
	if cfg.CompileTimeout == 0 {
		cfg.CompileTimeout = DefaultCompileTimeout
	}
	if cfg.CompileWorkers == 0 {
		cfg.CompileWorkers = runtime.GOMAXPROCS(0)
	}
	// wazero checks the context between functions only when it compiles
	// with several workers; with one, a compile cannot be stopped at the
	// job's deadline.
	cfg.CompileWorkers = max(cfg.CompileWorkers, 2)
	if cfg.CacheMaxBytes == 0 {
		cfg.CacheMaxBytes = 1 << 30
	}
	runtimeName, err := resolveRuntime(cfg.Runtime)
	if err != nil {
		return nil, err
	}
	cfg.Runtime = runtimeName
	cache := wazero.NewCompilationCache()
	if cfg.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("wasm compilation cache %s: %w", cfg.CacheDir, err)
		}
	}
	// The memory limit is enforced per task by limitedAllocator, which sees
	// every grow request and can report it; the runtime allows wasm32's full
	// range so that no request is refused before the allocator sees it.
	//
	// NewRuntimeConfig picks wazero's optimizing compiler on amd64 and arm64
	// (the interpreter elsewhere). WithCloseOnContextDone is what enforces
	// the timeout: without it neither the context nor Module.Close from
	// another goroutine stops a loop that makes no host calls, and since a
	// goroutine in compiled code cannot be preempted, the next garbage
	// collection would stop the whole process until the module returns. Its
	// price is a trip from the compiled code to Go at every loop header
	// (~45 ns; in a Go-built module, every loop iteration): over half of the
	// matmul example's time (docs/BENCHMARKS.md, "WASM executor").
	rc := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithCloseOnContextDone(true)
	life, cancel := context.WithCancel(context.Background())
	rt := wazero.NewRuntimeWithConfig(life, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(life, rt); err != nil {
		cancel()
		_ = rt.Close(life)
		_ = cache.Close(life)
		return nil, fmt.Errorf("wasm: instantiate WASI: %w", err)
	}
	e := &Executor{
		cfg: cfg, log: log.With("component", "executor/wasm"),
		cache: cache, rt: rt, life: life, cancel: cancel,
		compiled: make(map[[32]byte]*compiled),
	}
	if runtimeName == RuntimeWasmtime {
		if e.wt, err = newWasmtimeRuntime(cfg, e); err != nil {
			_ = e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Name implements executor.Executor.
func (*Executor) Name() string { return Name }

// Close stops running tasks, then releases the runtime and the cache. It is
// safe to call more than once.
func (e *Executor) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		e.cancel()
		e.wg.Wait()
		if e.wt != nil {
			e.wt.close()
		}
		ctx := context.Background()
		e.closeErr = errors.Join(e.rt.Close(ctx), e.cache.Close(ctx))
	})
	return e.closeErr
}

// begin registers a run, or refuses it after Close.
func (e *Executor) begin() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return executor.ErrClosed
	}
	e.wg.Add(1)
	return nil
}

// Compile compiles a module (or finds it compiled) without running it; a node
// may call it when it accepts a job so that the run starts at once.
func (e *Executor) Compile(ctx context.Context, module []byte) error {
	if err := e.begin(); err != nil {
		return err
	}
	defer e.wg.Done()
	if e.wt != nil {
		return e.wt.precompile(ctx, module)
	}
	_, release, err := e.compile(ctx, module)
	if err == nil {
		release()
	}
	return err
}

// HoldModule says whether the executor holds compiled the module a task
// fetched by content address id (Task.ModuleID) before, for a task with
// floats, and if so pins it in memory until release: a task with that
// ModuleID and no module file then runs it. size is the module's binary,
// what staging it would have cost. Only the Wasmtime runtime holds
// modules this way.
func (e *Executor) HoldModule(id, floats string) (size int64, release func(), ok bool) {
	if e.wt == nil || CheckFloats(floats) != nil {
		return 0, nil, false
	}
	return e.wt.pin(id, nativeFloats(floats))
}

// compile returns the compiled module for bin and a func to release it.
// Each module is compiled once, outside the executor's lock: tasks of other
// modules start meanwhile, tasks of the same module wait for that compile
// (wazero's cache does not deduplicate concurrent compiles). The compile
// runs under ctx, which carries the job's deadline: compiling is part of the
// job's time. If the task that started a compile gives up, a task still
// waiting for it compiles again under its own context.
func (e *Executor) compile(ctx context.Context, bin []byte) (wazero.CompiledModule, func(), error) {
	clean, err := e.checkBinary(bin)
	if err != nil {
		return nil, nil, err
	}
	for {
		mod, release, err := e.compileOnce(ctx, clean)
		var gaveUp *compileAbandoned
		if errors.As(err, &gaveUp) && ctx.Err() == nil {
			continue
		}
		return mod, release, err
	}
}

// wasmHeader is the magic and version (1) every WebAssembly binary starts with.
var wasmHeader = []byte("\x00asm\x01\x00\x00\x00")

// checkBinary does the checks that need no compiler: the header, this
// node's size limit and the sanitizer's bounds. It returns the module as it
// is compiled (sanitizeModule's rewrite).
func (e *Executor) checkBinary(bin []byte) ([]byte, error) {
	if !bytes.HasPrefix(bin, wasmHeader) {
		if len(bin) < len(wasmHeader) && bytes.HasPrefix(wasmHeader, bin) && len(bin) > 0 {
			return nil, notWASM(fmt.Sprintf("the module is truncated: %d bytes, less than the 8-byte WebAssembly header", len(bin)))
		}
		if bytes.HasPrefix(bin, wasmHeader[:4]) {
			return nil, notWASM(fmt.Sprintf("WebAssembly version %x is not 1, the only one this sandbox runs", bin[4:min(len(bin), 8)]))
		}
		// The first bytes usually say what the file is: "#!/bin/sh", "\x7fELF", "MZ".
		return nil, notWASM(fmt.Sprintf("not a WebAssembly module (starts with %q); build with GOOS=wasip1 GOARCH=wasm", bin[:min(len(bin), 16)]))
	}
	if int64(len(bin)) > e.cfg.MaxModuleBytes {
		return nil, fmt.Errorf("%w: the module is %d bytes, over this node's %d-byte limit (executor.wasm.max_module_bytes)", executor.ErrBadTask, len(bin), e.cfg.MaxModuleBytes)
	}
	clean, err := sanitizeModule(bin)
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("%w: the module asks for more than this sandbox allows: %v", executor.ErrBadTask, err)
	} else if err != nil {
		return nil, fmt.Errorf("%w: %v", executor.ErrNotWASM, err)
	}
	return clean, nil
}

// notWASMError says why bytes are not a module, without repeating
// ErrNotWASM's own text, and still matches it with errors.Is.
type notWASMError struct{ msg string }

func notWASM(msg string) error { return &notWASMError{msg: msg} }

func (e *notWASMError) Error() string { return e.msg }
func (e *notWASMError) Unwrap() error { return executor.ErrNotWASM }

// Validate checks, without running anything, that module is one this
// executor would compile and start: the header, the size limit, the
// sanitizer, wazero's compile and the imports the sandbox provides. A
// submitter calls it before offering a job, so that a file that is not
// WebAssembly fails once, at submit, instead of on every miner that bids.
// What it compiles is closed again; the compiled code stays in the
// compilation cache (pruned as after any compile), so a worker on this
// node would not compile it twice.
func (e *Executor) Validate(ctx context.Context, module []byte) error {
	if err := e.begin(); err != nil {
		return err
	}
	defer e.wg.Done()
	if e.wt != nil {
		return e.wt.validate(ctx, module)
	}
	clean, err := e.checkBinary(module)
	if err != nil {
		return err
	}
	mod, err := e.compileModule(ctx, clean)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("compile the module: %w", ctx.Err())
		}
		return fmt.Errorf("%w: it does not compile: %v", executor.ErrNotWASM, err)
	}
	defer mod.Close(context.Background())
	e.pruneCache() // the compile wrote to CacheDir, which stays within CacheMaxBytes
	return checkModule(mod, clean, maxMemoryBytes)
}

// compileAbandoned is the error of a compile whose own context ended.
type compileAbandoned struct{ err error }

func (c *compileAbandoned) Error() string { return c.err.Error() }
func (c *compileAbandoned) Unwrap() error { return c.err }

func (e *Executor) compileOnce(ctx context.Context, bin []byte) (wazero.CompiledModule, func(), error) {
	key := sha256.Sum256(bin)
	e.mu.Lock()
	c, ok := e.compiled[key]
	if !ok {
		c = &compiled{ready: make(chan struct{})}
		e.compiled[key] = c
	}
	e.useClock++
	c.lastUse = e.useClock
	c.refs++ // before any eviction, so that c is never the victim while used
	e.mu.Unlock()
	release := func() {
		e.mu.Lock()
		c.refs--
		e.evictLocked()
		e.mu.Unlock()
	}

	if !ok {
		mod, err := e.compileModule(ctx, bin)
		if err != nil && ctx.Err() != nil {
			err = &compileAbandoned{err: ctx.Err()}
		}
		e.mu.Lock()
		c.mod, c.err = mod, err
		if err != nil {
			delete(e.compiled, key) // a later task may try again
		}
		close(c.ready)
		e.mu.Unlock()
		if err == nil {
			e.pruneCache()
		}
	}
	select {
	case <-c.ready:
	case <-ctx.Done():
		release()
		return nil, nil, fmt.Errorf("waiting for the module to compile: %w", ctx.Err())
	}
	if c.err != nil {
		release()
		var gaveUp *compileAbandoned
		if errors.As(c.err, &gaveUp) {
			return nil, nil, c.err
		}
		return nil, nil, fmt.Errorf("%w: %v", executor.ErrNotWASM, c.err)
	}
	e.mu.Lock()
	e.evictLocked()
	e.mu.Unlock()
	return c.mod, release, nil
}

// compileModule is wazero's compile, with a panic turned into an error: the
// module is a stranger's bytes, and a compiler bug it triggers must fail the
// job, not crash the node.
func (e *Executor) compileModule(ctx context.Context, bin []byte) (mod wazero.CompiledModule, err error) {
	defer func() {
		if r := recover(); r != nil {
			mod, err = nil, fmt.Errorf("the compiler failed on it: %v", r)
		}
	}()
	return e.rt.CompileModule(experimental.WithCompilationWorkers(ctx, e.cfg.CompileWorkers), bin)
}

// evictLocked closes the least recently used idle modules over MaxCompiled.
// Their code stays in the on-disk cache.
func (e *Executor) evictLocked() {
	for len(e.compiled) > e.cfg.MaxCompiled {
		var victim [32]byte
		var found *compiled
		for k, c := range e.compiled {
			if c.refs == 0 && c.mod != nil && (found == nil || c.lastUse < found.lastUse) {
				victim, found = k, c
			}
		}
		if found == nil {
			return
		}
		delete(e.compiled, victim)
		_ = found.mod.Close(context.Background())
	}
}

// loadModule checks where t's module comes from and reads it; not read
// when held (the runtime has it compiled: executor.Task.ModuleID).
func (e *Executor) loadModule(t executor.Task, held bool) ([]byte, error) {
	switch {
	case len(t.GPUs) > 0:
		return nil, fmt.Errorf("%w: a WASM task cannot use GPUs (asked for %d); use the native executor", executor.ErrBadTask, len(t.GPUs))
	case len(t.Module) > 0 && t.ModulePath != "":
		return nil, fmt.Errorf("%w: both Module and ModulePath are set", executor.ErrBadTask)
	case len(t.Module) > 0:
		return t.Module, nil
	case held: // with no file when the caller pinned it (HoldModule)
		return nil, nil
	case t.ModulePath == "":
		return nil, fmt.Errorf("%w: no module given", executor.ErrBadTask)
	}
	// A module file comes from content another peer published: read it as a
	// plain file only, and no further than the limit (ReadRegularFile).
	bin, err := executor.ReadRegularFile(t.ModulePath, e.cfg.MaxModuleBytes)
	if err != nil {
		return nil, fmt.Errorf("module: %w", err)
	}
	return bin, nil
}
