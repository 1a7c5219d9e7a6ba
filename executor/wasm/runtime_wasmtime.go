//go:build cgo

package wasm

/*
#include <stdint.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

// Declared here rather than by including wasmtime.h, whose directory is
// inside wasmtime-go's module; the symbols come from the library that
// wasmtime-go links.
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_error wasmtime_error_t;
extern void wasmtime_store_epoch_deadline_callback(wasmtime_store_t *store,
    wasmtime_error_t *(*func)(wasmtime_context_t *, void *, uint64_t *, uint8_t *),
    void *data, void (*finalizer)(void *));
extern wasmtime_error_t *wasmtime_error_new(const char *);

typedef struct { _Atomic int stop; } vft_stop_flag;

// vft_epoch_check runs in the task's thread at every epoch tick the task
// sees (each loop header and function entry checks the epoch): it ends the
// run once the flag is set and otherwise waits for the next tick. It is C,
// so a tick costs no call into Go.
static wasmtime_error_t *vft_epoch_check(wasmtime_context_t *ctx, void *data, uint64_t *delta, uint8_t *kind) {
	vft_stop_flag *f = data;
	if (atomic_load(&f->stop)) {
		return wasmtime_error_new("vft: task stopped");
	}
	*delta = 1;
	*kind = 0; // WASMTIME_UPDATE_DEADLINE_CONTINUE
	return NULL;
}

static void vft_watch_epoch(void *store, vft_stop_flag *f) {
	wasmtime_store_epoch_deadline_callback((wasmtime_store_t *)store, vft_epoch_check, f, NULL);
}

static void vft_stop(vft_stop_flag *f) { atomic_store(&f->stop, 1); }

typedef struct wasi_config wasi_config_t;
extern void wasi_config_set_stdout_custom(wasi_config_t *config,
    ptrdiff_t (*callback)(void *, const unsigned char *, size_t), void *data, void (*finalizer)(void *));
extern void wasi_config_set_stderr_custom(wasi_config_t *config,
    ptrdiff_t (*callback)(void *, const unsigned char *, size_t), void *data, void (*finalizer)(void *));

// vft_capture is executor.CapBuffer in C: it keeps the first max bytes
// written and drops the rest, and a write never fails. Wasmtime calls it
// from the task's thread; Go reads it after the run, before the store (and
// with it the capture) is freed.
typedef struct {
	unsigned char *buf;
	size_t len, cap, max;
	int truncated;
} vft_capture;

static ptrdiff_t vft_capture_write(void *data, const unsigned char *p, size_t n) {
	vft_capture *c = data;
	size_t take = c->max - c->len;
	if (n > take) {
		c->truncated = 1;
	} else {
		take = n;
	}
	if (take > 0) {
		if (c->len + take > c->cap) {
			size_t want = c->cap ? c->cap * 2 : 4096;
			while (want < c->len + take) want *= 2;
			if (want > c->max) want = c->max;
			unsigned char *grown = realloc(c->buf, want);
			if (grown == NULL) {
				c->truncated = 1;
				return (ptrdiff_t)n;
			}
			c->buf = grown;
			c->cap = want;
		}
		memcpy(c->buf + c->len, p, take);
		c->len += take;
	}
	return (ptrdiff_t)n;
}

static void vft_capture_free(void *data) {
	vft_capture *c = data;
	free(c->buf);
	free(c);
}

static vft_capture *vft_capture_new(size_t max) {
	vft_capture *c = calloc(1, sizeof(vft_capture));
	if (c != NULL) c->max = max;
	return c;
}

static void vft_capture_stdio(void *config, vft_capture *out, vft_capture *err) {
	wasi_config_set_stdout_custom((wasi_config_t *)config, vft_capture_write, out, vft_capture_free);
	wasi_config_set_stderr_custom((wasi_config_t *)config, vft_capture_write, err, vft_capture_free);
}
*/
import "C"

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/vft-network/vft/executor"
)

const wasmtimeAvailable = true

// wasmtimeVersion names the compiler in the disk cache's keys: code compiled
// by another version (or with other engine settings, wasmtimeSettings) is
// never loaded. Wasmtime also refuses such code itself, but a key that
// cannot match saves the attempt.
const (
	wasmtimeVersion  = "wasmtime-go-v39.0.1"
	wasmtimeSettings = "epoch,nancanon,relaxed-det,v1"
)

// epochTick is how often the engine's epoch advances: a task stopped by its
// deadline or its caller runs on for at most about one tick.
const epochTick = 5 * time.Millisecond

// WASI preview 1 errno values the sandbox's own host functions return.
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoIO      = 29
	errnoNotsup  = 58
	errnoPerm    = 63
)

const wasiModule = wasi_snapshot_preview1.ModuleName

// wasmtimeRuntime runs modules with Wasmtime. Two engines, one per float
// mode (a job's floats), compile and run every module; each task gets its
// own store, linker and WASI context.
type wasmtimeRuntime struct {
	e       *Executor
	engine  *wasmtime.Engine // portable floats: NaNs canonicalised
	native  *wasmtime.Engine // native floats (FloatsNative)
	dir     string           // the disk cache's directory for this version, or ""
	isolate bool             // Config.Isolate: tasks run in child processes
	tmpDir  string           // the cache of an isolating executor without CacheDir

	epochs   *epochTicker
	compiles sync.WaitGroup // background compiles, which outlive their task

	mu      sync.Mutex
	modules map[moduleKey]*wtModule
	// byContent maps the content address a task's module was fetched by
	// (executor.Task.ModuleID) to what it was, so that the next task of a
	// module held compiled skips its file (held, pin).
	byContent map[string]heldContent
	useClock  uint64
}

// heldContent is a module's binary as fetched: the hash of its sanitized
// form (moduleKey) and its size in bytes.
type heldContent struct {
	hash [32]byte
	size int64
}

// moduleKey names a compiled module: the same binary compiled for each
// float mode is two modules.
type moduleKey struct {
	hash         [32]byte // of the sanitized binary
	nativeFloats bool
}

// wtModule is a module in the in-memory cache; mod, mins and err are set
// before ready is closed.
type wtModule struct {
	key     moduleKey
	ready   chan struct{}
	mod     *wasmtime.Module
	mins    []uint64 // the pages each of its memories starts with (memoryMinimums)
	err     error
	lastUse uint64
	pins    int // tasks that will run it without its file (pin): not evicted
}

func newWasmtimeRuntime(cfg Config, e *Executor) (*wasmtimeRuntime, error) {
	if cfg.Isolate && !servesChildren.Load() {
		return nil, errors.New("wasm: isolated tasks (executor.wasm.isolate, Config.Isolate) run in a child of this program, " +
			"which does not call wasm.ServeChild first thing in main (or TestMain): add the call, or turn isolation off")
	}
	r := &wasmtimeRuntime{e: e, engine: newEngine(cfg.Isolate, false), native: newEngine(cfg.Isolate, true), isolate: cfg.Isolate,
		modules: make(map[moduleKey]*wtModule), byContent: make(map[string]heldContent)}
	r.epochs = &epochTicker{engines: []*wasmtime.Engine{r.engine, r.native}}
	cacheDir := cfg.CacheDir
	if cacheDir == "" && cfg.Isolate {
		// A child loads the compiled code from a file.
		tmp, err := os.MkdirTemp("", "vft-wasm-code-")
		if err != nil {
			return nil, fmt.Errorf("wasm: a directory for compiled code: %w", err)
		}
		cacheDir, r.tmpDir = tmp, tmp
	}
	if cacheDir != "" {
		r.dir = filepath.Join(cacheDir, wasmtimeVersion)
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return nil, fmt.Errorf("wasm compilation cache %s: %w", cacheDir, err)
		}
	}
	return r, nil
}

// newEngine is the engine tasks of one float mode run on; isolated
// (child-process) tasks are stopped by killing their process, so their code
// has no epoch checks.
func newEngine(isolated, nativeFloats bool) *wasmtime.Engine {
	wc := wasmtime.NewConfig()
	// Epoch interruption: generated code compares a counter at loop headers
	// and function entries, instead of calling the host.
	wc.SetEpochInterruption(!isolated)
	// Portable floats: one bit pattern for every NaN a float operation
	// produces, so that a result is the same on every CPU (wazero cannot
	// do this). It is a compare and select after every float operation,
	// up to 2× on float code, which a job can decline (FloatsNative).
	wc.SetCraneliftNanCanonicalization(!nativeFloats)
	wc.SetWasmRelaxedSIMDDeterministic(true)
	wc.SetParallelCompilation(true)
	return wasmtime.NewEngineWithConfig(wc)
}

// engineSettings names newEngine's settings in the cache's keys.
func engineSettings(isolated, nativeFloats bool) string {
	s := wasmtimeSettings
	if isolated {
		s += ",no-epoch"
	}
	if nativeFloats {
		s = strings.Replace(s, "nancanon", "native-floats", 1)
	}
	return s
}

// engineFor is the engine of a float mode.
func (r *wasmtimeRuntime) engineFor(nativeFloats bool) *wasmtime.Engine {
	if nativeFloats {
		return r.native
	}
	return r.engine
}

// epochTicker advances its engines' epoch every epochTick while at least
// one task runs on them, and sleeps otherwise. A ticker that never stopped
// woke every miner 200 times a second for nothing while it was idle, which
// is most of the time (50 nodes in one process: 10,000 wake-ups a second).
// A running task sees the same ticks either way: its deadline callback
// fires at every tick and only the stop flag ends it.
type epochTicker struct {
	engines []*wasmtime.Engine

	mu      sync.Mutex
	running int           // tasks holding the ticker
	stop    chan struct{} // closes the current tick goroutine
	ticks   sync.WaitGroup
}

// hold keeps the epoch advancing until release is called, once.
func (t *epochTicker) hold() (release func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running++
	if t.running == 1 {
		t.stop = make(chan struct{})
		t.ticks.Add(1)
		go t.tick(t.stop)
	}
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.running--
		if t.running == 0 {
			close(t.stop)
		}
	}
}

func (t *epochTicker) tick(stop <-chan struct{}) {
	defer t.ticks.Done()
	tk := time.NewTicker(epochTick)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
			for _, e := range t.engines {
				e.IncrementEpoch()
			}
		}
	}
}

// active reports whether a tick goroutine is running (tests).
func (t *epochTicker) active() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.running > 0
}

// close runs after every task has ended (Executor.Close waits for them).
func (r *wasmtimeRuntime) close() {
	r.compiles.Wait()
	r.epochs.ticks.Wait()
	if r.tmpDir != "" {
		_ = os.RemoveAll(r.tmpDir)
	}
}

// compile returns the compiled module for a sanitized binary: from memory,
// from the disk cache, or compiled now. Cranelift cannot be stopped once it
// started, so the compile runs on its own and a task whose deadline passes
// stops waiting for it; the module is cached for the next task all the same.
func (r *wasmtimeRuntime) compile(ctx context.Context, clean []byte, nativeFloats bool) (*wtModule, error) {
	key := moduleKey{sha256.Sum256(clean), nativeFloats}
	r.mu.Lock()
	m, ok := r.modules[key]
	if !ok {
		m = &wtModule{key: key, ready: make(chan struct{})}
		r.modules[key] = m
		r.compiles.Add(1)
		go r.load(key, clean, m)
	}
	r.useClock++
	m.lastUse = r.useClock
	r.mu.Unlock()
	select {
	case <-m.ready:
	case <-ctx.Done():
		return nil, &compileAbandoned{err: ctx.Err()}
	}
	if m.err != nil {
		return nil, fmt.Errorf("%w: %v", executor.ErrNotWASM, m.err)
	}
	return m, nil
}

// held returns the compiled module of a task whose module an earlier task
// gave under the same content address (executor.Task.ModuleID), while it
// is in memory: the task's module file need not be read, sanitized and
// hashed again.
func (r *wasmtimeRuntime) held(moduleID string, nativeFloats bool) (*wtModule, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, _, ok := r.heldLocked(moduleID, nativeFloats)
	return m, ok
}

// pin is held for a task that will run without its module file: the
// module stays in memory until release, and size is the binary's.
func (r *wasmtimeRuntime) pin(moduleID string, nativeFloats bool) (size int64, release func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, size, ok := r.heldLocked(moduleID, nativeFloats)
	if !ok {
		return 0, nil, false
	}
	m.pins++
	var once sync.Once
	return size, func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			m.pins--
			r.evictLocked()
		})
	}, true
}

// heldLocked is held and pin's lookup, under r.mu: the module moduleID
// names, compiled for the float mode, with its binary's size.
func (r *wasmtimeRuntime) heldLocked(moduleID string, nativeFloats bool) (*wtModule, int64, bool) {
	if moduleID == "" {
		return nil, 0, false
	}
	held, ok := r.byContent[moduleID]
	if !ok {
		return nil, 0, false
	}
	m, ok := r.modules[moduleKey{held.hash, nativeFloats}]
	if !ok {
		return nil, 0, false
	}
	select {
	case <-m.ready:
	default:
		return nil, 0, false // still compiling: the task waits in compile
	}
	if m.err != nil {
		return nil, 0, false
	}
	r.useClock++
	m.lastUse = r.useClock
	return m, held.size, true
}

// remember records that moduleID names the module m was compiled from,
// a binary of size bytes.
func (r *wasmtimeRuntime) remember(moduleID string, m *wtModule, size int) {
	if moduleID == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.modules[m.key]; ok { // not evicted meanwhile
		r.byContent[moduleID] = heldContent{hash: m.key.hash, size: int64(size)}
	}
}

func (r *wasmtimeRuntime) load(key moduleKey, clean []byte, m *wtModule) {
	defer r.compiles.Done()
	mod, fresh, err := r.loadOrCompile(key, clean)
	var mins []uint64
	if err == nil {
		mins, err = memoryMinimums(clean)
	}
	r.mu.Lock()
	m.mod, m.mins, m.err = mod, mins, err
	if err != nil {
		delete(r.modules, key) // a later task may try again
	}
	close(m.ready)
	r.evictLocked()
	r.mu.Unlock()
	if fresh {
		r.e.pruneCache()
	}
}

// loadOrCompile reads the module's code from the disk cache, or compiles it
// and writes it there; fresh says the cache grew.
func (r *wasmtimeRuntime) loadOrCompile(key moduleKey, clean []byte) (mod *wasmtime.Module, fresh bool, err error) {
	engine := r.engineFor(key.nativeFloats)
	path := ""
	if r.dir != "" {
		path = r.codePath(key)
		// Only this node writes the cache, so its code is trusted once its
		// checksum matches; code that does not (truncated, bit rot) or does
		// not load (another build) is compiled again.
		if code, err := readCode(path); err == nil {
			if mod, err := wasmtime.NewModuleDeserialize(engine, code); err == nil {
				now := time.Now()
				_ = os.Chtimes(path, now, now) // pruneCache removes the least recently used
				return mod, false, nil
			}
		}
	}
	mod, err = wasmtime.NewModule(engine, clean)
	if err != nil {
		return nil, false, err
	}
	if path == "" {
		return mod, false, nil
	}
	code, err := mod.Serialize()
	if err != nil {
		r.e.log.Warn("cannot serialize a compiled module for the cache", "err", err)
		return mod, false, nil
	}
	if err := writeCode(path, code); err != nil {
		r.e.log.Warn("cannot write a compiled module to the cache", "dir", r.dir, "err", err)
		return mod, false, nil
	}
	return mod, true, nil
}

// A cache file is the serialized module followed by its SHA-256. Wasmtime
// maps a serialized module from a file without checking that the file is
// as long as its headers say (NewModuleDeserializeFile): a truncated file
// killed the whole process with SIGBUS. So a file is read and checked, and
// only then handed to Wasmtime.

// readCode returns the serialized module in a cache file, or an error if
// the file is not whole.
func readCode(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < sha256.Size {
		return nil, fmt.Errorf("%s: %d bytes, too short", path, len(data))
	}
	code, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if want := sha256.Sum256(code); !bytes.Equal(sum, want[:]) {
		return nil, fmt.Errorf("%s: checksum mismatch (truncated or damaged)", path)
	}
	return code, nil
}

// writeCode writes a cache file whole or not at all (a temporary file,
// renamed).
func writeCode(path string, code []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".module-*.tmp")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(code)
	_, err = tmp.Write(code)
	if err == nil {
		_, err = tmp.Write(sum[:])
	}
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

// codePath is where the disk cache keeps a module's compiled code: the
// engine's settings (float mode included) are part of the name.
func (r *wasmtimeRuntime) codePath(key moduleKey) string {
	tag := sha256.Sum256([]byte(wasmtimeVersion + "/" + engineSettings(r.isolate, key.nativeFloats)))
	return filepath.Join(r.dir, hex.EncodeToString(key.hash[:])+"-"+hex.EncodeToString(tag[:4])+".cwasm")
}

// evictLocked forgets the least recently used modules over MaxCompiled. A
// task still holding one keeps it alive (the garbage collector frees it).
func (r *wasmtimeRuntime) evictLocked() {
	for len(r.modules) > r.e.cfg.MaxCompiled {
		var victim moduleKey
		var found *wtModule
		for k, m := range r.modules {
			select {
			case <-m.ready:
			default:
				continue
			}
			if m.pins > 0 {
				continue
			}
			if found == nil || m.lastUse < found.lastUse {
				victim, found = k, m
			}
		}
		if found == nil {
			return
		}
		delete(r.modules, victim)
		r.forgetContentLocked(victim.hash)
	}
}

// forgetContentLocked drops the content addresses of a binary no module
// in memory is compiled from any more (either float mode).
func (r *wasmtimeRuntime) forgetContentLocked(hash [32]byte) {
	for _, native := range []bool{false, true} {
		if _, ok := r.modules[moduleKey{hash, native}]; ok {
			return
		}
	}
	maps.DeleteFunc(r.byContent, func(_ string, h heldContent) bool { return h.hash == hash })
}

// precompile is Executor.Compile, for portable floats (the default; a
// native-floats task compiles its own when it starts, before its time limit).
func (r *wasmtimeRuntime) precompile(ctx context.Context, bin []byte) error {
	clean, err := r.e.checkBinary(bin)
	if err != nil {
		return err
	}
	_, err = r.compile(ctx, clean, false)
	return err
}

// validate is Executor.Validate.
func (r *wasmtimeRuntime) validate(ctx context.Context, bin []byte) error {
	clean, err := r.e.checkBinary(bin)
	if err != nil {
		return err
	}
	m, err := r.compile(ctx, clean, false)
	if err != nil {
		var gaveUp *compileAbandoned
		if errors.As(err, &gaveUp) {
			return fmt.Errorf("compile the module: %w", ctx.Err())
		}
		return fmt.Errorf("%w: it does not compile: %v", executor.ErrNotWASM, errors.Unwrap(err))
	}
	return checkImports(m, maxMemoryBytes)
}

// checkImports is checkModule for a Wasmtime module.
func checkImports(m *wtModule, limit uint64) error {
	for _, im := range m.mod.Imports() {
		name := ""
		if n := im.Name(); n != nil {
			name = *n
		}
		if im.Type().MemoryType() != nil {
			return fmt.Errorf("%w: the module imports a memory from %q, which the sandbox does not provide", executor.ErrBadTask, im.Module())
		}
		if im.Module() != wasiModule {
			return fmt.Errorf("%w: the module imports %s.%s, but the sandbox provides only WASI preview 1 (%s); build Go programs with GOOS=wasip1 GOARCH=wasm",
				executor.ErrBadTask, im.Module(), name, wasiModule)
		}
	}
	for _, pages := range m.mins {
		if need := pages * pageSize; need > limit {
			return fmt.Errorf("%w: the module needs %d MiB of memory to start, over the %d MiB limit", executor.ErrMemoryLimit, (need+1<<20-1)>>20, limit>>20)
		}
	}
	return nil
}

// run is Executor.run on Wasmtime: the same checks, mounts, limits and
// errors.
func (r *wasmtimeRuntime) run(ctx context.Context, t executor.Task) (executor.Result, error) {
	e := r.e
	var res executor.Result
	nativeFl := nativeFloats(t.Floats)
	m, held := r.held(t.ModuleID, nativeFl)
	c, err := e.check(t, held)
	if err != nil {
		return res, err
	}
	limits, inputs, outDir := c.limits, c.inputs, c.outDir
	if !held {
		clean, err := e.checkBinary(c.bin)
		if err != nil {
			return res, err
		}
		// The compile has a limit of its own, and the job's time limit
		// starts after it: a cold miner must not time out where a warm
		// one finishes.
		compileCtx, cancelCompile := context.WithTimeout(ctx, e.cfg.CompileTimeout)
		m, err = r.compile(compileCtx, clean, nativeFl)
		cancelCompile()
		if err != nil {
			var gaveUp *compileAbandoned
			if errors.As(err, &gaveUp) && ctx.Err() == nil {
				res.ExitCode = -1
				return res, fmt.Errorf("%w: compiling the module took more than the miner's %v compile limit", executor.ErrTimeout, e.cfg.CompileTimeout)
			}
			if errors.As(err, &gaveUp) {
				return res, fmt.Errorf("waiting for the module to compile: %w", ctx.Err())
			}
			return res, err
		}
		r.remember(t.ModuleID, m, len(c.bin))
	}
	mod := m.mod
	if err := checkImports(m, limits.MemoryBytes); err != nil {
		return res, err
	}

	root, subs, cleanup, err := inputTree(inputs, outDir)
	if err != nil {
		return res, err
	}
	defer cleanup()

	keys := slices.Sorted(maps.Keys(t.Env))
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = t.Env[k]
	}
	req := execRequest{NativeFloats: nativeFl, Args: append([]string{"task"}, t.Args...), EnvKeys: keys, EnvVals: vals, Seed: t.Seed,
		Root: root, Subs: subs, OutDir: outDir, MemoryBytes: limits.MemoryBytes, MaxStdoutBytes: limits.MaxStdoutBytes}

	t.NotifyStarted()
	runCtx, cancel := context.WithTimeout(ctx, limits.Timeout)
	defer cancel()
	var x execResult
	var outputHit bool
	if r.isolate {
		x, outputHit, err = r.runChild(runCtx, m, req, limits.MaxOutputBytes)
		if err != nil {
			return res, err
		}
	} else {
		stop := newStopFlag()
		if stop.p == nil {
			return res, errors.New("wasm: out of memory for the task's stop flag")
		}
		defer stop.free() // after any stop() still running
		defer context.AfterFunc(runCtx, stop.stop)()
		watch := watchOutput(outDir, limits.MaxOutputBytes, stop.stop)
		func() {
			defer r.epochs.hold()()
			x = execute(r.engineFor(nativeFl), mod, req, stop)
		}()
		outputHit = watch.end()
	}
	res.Duration = x.Duration
	res.Stdout, res.StdoutTruncated = x.Stdout, x.StdoutTruncated
	res.Stderr, res.StderrTruncated = x.Stderr, x.StderrTruncated
	usage, sizeErr := executor.DirUsage(outDir)
	res.OutputBytes, res.OutputEntries = usage.Bytes, usage.Entries
	cost := usage.Cost()

	stopped := runCtx.Err() != nil || outputHit
	runErr, exit := x.err(stopped, runCtx.Err())
	if exit != nil {
		res.ExitCode = int(exit.ExitCode())
	}
	if stopped && runErr != nil && exit == nil {
		res.ExitCode = -1
	}
	// Wasmtime's limiter refuses a grow past the limit (memory.grow returns
	// -1, as with wazero) but does not say so; the module's own report of it
	// is what is left. Go prints "fatal error: out of memory" and C
	// programs usually say "out of memory" too.
	memoryHit := runErr != nil && !stopped && strings.Contains(string(res.Stderr), "out of memory")
	o := outcome{runErr: runErr, exit: exit, res: &res, limits: limits,
		memoryHit: memoryHit, outputHit: outputHit || cost > limits.MaxOutputBytes, sizeErr: sizeErr,
		timedOut: runCtx.Err() != nil && ctx.Err() == nil, interrupted: ctx.Err()}
	return res, o.err()
}

// execRequest is what execute needs to run a module: all of it plain data,
// so that it can be sent to a child process (Config.Isolate).
type execRequest struct {
	CodePath       string `json:"code_path,omitempty"` // serialized module, for a child
	MaxFileBytes   int64  // a child's RLIMIT_FSIZE: the output budget
	NativeFloats   bool   // the task's floats: which engine compiled the code
	Args           []string
	EnvKeys        []string
	EnvVals        []string
	Seed           uint64
	Root           string
	Subs           []executor.Mount
	OutDir         string
	MemoryBytes    uint64
	MaxStdoutBytes int
}

// execResult is how a run ended, as plain data (see execRequest).
type execResult struct {
	Stdout, Stderr                   []byte
	StdoutTruncated, StderrTruncated bool
	Duration                         time.Duration
	Exited                           bool // proc_exit with ExitCode
	ExitCode                         int
	Trap                             string // "stack overflow" or "wasm error: ..."
	Err                              string // any other failure
}

// err turns a result into the errors outcome.err reads (the shape of
// wazero's): an exit code as a sys.ExitError, a stop as the context's
// error, a trap as "wasm error: ...".
func (x execResult) err(stopped bool, ctxErr error) (error, *sys.ExitError) {
	switch {
	case x.Exited && x.ExitCode == 0:
		return nil, nil
	case x.Exited:
		exit := sys.NewExitError(uint32(x.ExitCode))
		return exit, exit
	case x.Trap == "" && x.Err == "":
		return nil, nil
	case stopped:
		if ctxErr == nil {
			ctxErr = context.Canceled // the output watch stopped it
		}
		return ctxErr, nil
	case x.Trap != "":
		return errors.New(x.Trap), nil
	}
	return errors.New(x.Err), nil
}

// execute runs mod in a new store under req. stop, if not nil, ends the run
// at the next epoch tick once set (the engine must have epoch interruption
// on); without it nothing stops the module but killing its process.
func execute(engine *wasmtime.Engine, mod *wasmtime.Module, req execRequest, stop *stopFlag) (x execResult) {
	fail := func(err error) execResult { x.Err = err.Error(); return x }
	wasi := wasmtime.NewWasiConfig()
	wasi.SetArgv(req.Args)
	wasi.SetEnv(req.EnvKeys, req.EnvVals)
	// Preopens in wazero's mount order, so that a task sees the same
	// descriptor numbers on both runtimes.
	if err := wasi.PreopenDir(req.Root, "/input", wasmtime.DIR_READ, wasmtime.FILE_READ); err != nil {
		return fail(fmt.Errorf("%w: mount /input: %v", executor.ErrBadMount, err))
	}
	for _, m := range req.Subs {
		if err := wasi.PreopenDir(m.Host, "/input/"+m.Guest, wasmtime.DIR_READ, wasmtime.FILE_READ); err != nil {
			return fail(fmt.Errorf("%w: mount /input/%s: %v", executor.ErrBadMount, m.Guest, err))
		}
	}
	if err := wasi.PreopenDir(req.OutDir, "/output", wasmtime.DIR_READ|wasmtime.DIR_WRITE, wasmtime.FILE_READ|wasmtime.FILE_WRITE); err != nil {
		return fail(fmt.Errorf("%w: mount /output: %v", executor.ErrBadMount, err))
	}

	// stdout and stderr go to C buffers that keep the first
	// MaxStdoutBytes, like the wazero path's CapBuffers; the store frees
	// them.
	stdout, stderr := C.vft_capture_new(C.size_t(req.MaxStdoutBytes)), C.vft_capture_new(C.size_t(req.MaxStdoutBytes))
	if stdout == nil || stderr == nil {
		C.free(unsafe.Pointer(stdout))
		C.free(unsafe.Pointer(stderr))
		return fail(errors.New("wasm: out of memory for the task's stdout"))
	}
	C.vft_capture_stdio(*(*unsafe.Pointer)(unsafe.Pointer(wasi)), stdout, stderr)

	store := wasmtime.NewStore(engine)
	defer store.Close()
	store.SetWasi(wasi)
	store.Limiter(int64(req.MemoryBytes), -1, -1, -1, -1)
	if stop != nil {
		// Store's first field is its C pointer; wasmtime-go does not
		// export the epoch callback.
		C.vft_watch_epoch(*(*unsafe.Pointer)(unsafe.Pointer(store)), stop.p)
		store.SetEpochDeadline(1)
	}

	box := &sandbox{clock: &fakeClock{}, rand: seededRand(req.Seed)}
	linker := wasmtime.NewLinker(engine)
	defer linker.Close()
	if err := linker.DefineWasi(); err != nil {
		return fail(fmt.Errorf("wasm: define WASI: %w", err))
	}
	if err := box.define(linker); err != nil {
		return fail(fmt.Errorf("wasm: define the sandbox's WASI functions: %w", err))
	}

	start := time.Now()
	runErr := instantiateAndStart(linker, store, mod)
	x.Duration = time.Since(start)
	x.Stdout, x.StdoutTruncated = C.GoBytes(unsafe.Pointer(stdout.buf), C.int(stdout.len)), stdout.truncated != 0
	x.Stderr, x.StderrTruncated = C.GoBytes(unsafe.Pointer(stderr.buf), C.int(stderr.len)), stderr.truncated != 0
	classify(runErr, &x)
	return x
}

// stopFlag is the C flag vft_epoch_check reads. stop may be called from
// any goroutine, also while the run ends; free waits for it.
type stopFlag struct {
	mu sync.Mutex
	p  *C.vft_stop_flag
}

func newStopFlag() *stopFlag {
	return &stopFlag{p: (*C.vft_stop_flag)(C.calloc(1, C.size_t(unsafe.Sizeof(C.vft_stop_flag{}))))}
}

func (f *stopFlag) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.p != nil {
		C.vft_stop(f.p)
	}
}

func (f *stopFlag) free() {
	f.mu.Lock()
	defer f.mu.Unlock()
	C.free(unsafe.Pointer(f.p))
	f.p = nil
}

// outputPoll is how often a running task's /output is measured.
const outputPoll = 20 * time.Millisecond

// outputWatch measures /output while a task runs and stops the task once
// it is over its budget. Wasmtime's WASI writes to the host directory
// itself, so unlike the wazero path (outputFS) a write cannot be refused
// before it happens: the disk holds at most what the task writes in one
// poll past its limit (the miner's disk protection is this watch plus the
// measurement after the run, not a quota). The task is killed (exit -1)
// rather than seeing a failed write. An isolated task's child process
// also runs under RLIMIT_FSIZE = the budget, so no single file passes it.
type outputWatch struct {
	done chan struct{}
	wg   sync.WaitGroup
	hit  atomic.Bool
}

func watchOutput(dir string, limit int64, stop func()) *outputWatch {
	w := &outputWatch{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(outputPoll)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-t.C:
				if u, err := executor.DirUsage(dir); err == nil && u.Cost() > limit {
					w.hit.Store(true)
					stop()
					return
				}
			}
		}
	}()
	return w
}

// end stops the watch and says whether it stopped the task.
func (w *outputWatch) end() bool {
	close(w.done)
	w.wg.Wait()
	return w.hit.Load()
}

func instantiateAndStart(linker *wasmtime.Linker, store *wasmtime.Store, mod *wasmtime.Module) error {
	inst, err := linker.Instantiate(store, mod)
	if err != nil {
		return err
	}
	if start := inst.GetFunc(store, "_start"); start != nil {
		_, err = start.Call(store)
	}
	return err
}

// classify records how Wasmtime's call ended in x.
func classify(err error, x *execResult) {
	if err == nil {
		return
	}
	var werr *wasmtime.Error
	if errors.As(err, &werr) {
		if code, ok := werr.ExitStatus(); ok {
			x.Exited, x.ExitCode = true, int(code)
			return
		}
	}
	var trap *wasmtime.Trap
	if errors.As(err, &trap) {
		if c := trap.Code(); c != nil {
			if msg, ok := trapMessages[*c]; ok {
				x.Trap = msg
				return
			}
		}
		msg := trap.Message()
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		x.Trap = "wasm error: " + msg
		return
	}
	x.Err = err.Error()
}

// trapMessages are wazero's words for each trap, so that users see the
// same error on both runtimes.
var trapMessages = map[wasmtime.TrapCode]string{
	wasmtime.StackOverflow:          "stack overflow",
	wasmtime.MemoryOutOfBounds:      "wasm error: out of bounds memory access",
	wasmtime.HeapMisaligned:         "wasm error: unaligned atomic",
	wasmtime.TableOutOfBounds:       "wasm error: invalid table access",
	wasmtime.IndirectCallToNull:     "wasm error: invalid table access",
	wasmtime.BadSignature:           "wasm error: indirect call type mismatch",
	wasmtime.IntegerOverflow:        "wasm error: integer overflow",
	wasmtime.IntegerDivisionByZero:  "wasm error: integer divide by zero",
	wasmtime.BadConversionToInteger: "wasm error: invalid conversion to integer",
	wasmtime.UnreachableCodeReached: "wasm error: unreachable",
}

// sandbox is a task's state behind the WASI functions it replaces in
// Wasmtime's WASI: the fake clock and the seeded randomness.
type sandbox struct {
	clock *fakeClock
	rand  io.Reader
}

// define shadows Wasmtime's WASI functions that would show the host's
// clock or randomness, sleep for real, or make links. (A host function
// cannot call on to Wasmtime's own WASI function: that one needs the
// calling module's memory, which it finds only when called from wasm. So
// writes are not wrapped here; see outputWatch.)
func (s *sandbox) define(l *wasmtime.Linker) error {
	l.AllowShadowing(true)
	defs := []struct {
		name string
		fn   any
	}{
		{"clock_time_get", func(c *wasmtime.Caller, id int32, _ int64, out int32) int32 {
			var v int64
			switch id {
			case 0: // realtime
				sec, nsec := s.clock.walltime()
				v = sec*1e9 + int64(nsec)
			case 1: // monotonic
				v = s.clock.nanotime()
			default:
				return errnoInval
			}
			return putU64(c, out, uint64(v))
		}},
		{"clock_res_get", func(c *wasmtime.Caller, id int32, out int32) int32 {
			if id != 0 && id != 1 {
				return errnoInval
			}
			return putU64(c, out, 1)
		}},
		{"random_get", func(c *wasmtime.Caller, buf, n int32) int32 {
			b, ok := span(c, buf, n)
			if !ok {
				return errnoFault
			}
			if _, err := io.ReadFull(s.rand, b); err != nil {
				return errnoIO
			}
			return errnoSuccess
		}},
		{"poll_oneoff", func(c *wasmtime.Caller, in, out, nsubs, nevents int32) int32 {
			return s.pollOneoff(c, in, out, nsubs, nevents)
		}},
		{"sched_yield", func() int32 { return errnoSuccess }},
		// No links inside a mount (fs.go's noLinkFS says why).
		{"path_symlink", func(int32, int32, int32, int32, int32) int32 { return errnoPerm }},
		{"path_link", func(int32, int32, int32, int32, int32, int32, int32) int32 { return errnoPerm }},
	}
	for _, d := range defs {
		if err := l.FuncWrap(wasiModule, d.name, d.fn); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return nil
}

// pollOneoff is wazero's poll_oneoff on the fake clock: a clock
// subscription (relative only) is acknowledged at once and advances the
// clock by the shortest timeout; a read subscription is ready at once, a
// write subscription is not supported.
func (s *sandbox) pollOneoff(c *wasmtime.Caller, in, out, nsubs, nevents int32) int32 {
	if nsubs <= 0 {
		return errnoInval
	}
	mem := memory(c)
	subs, ok := spanOf(mem, in, nsubs*48)
	if !ok {
		return errnoFault
	}
	events, ok := spanOf(mem, out, nsubs*32)
	if !ok {
		return errnoFault
	}
	clear(events)
	count, ok := spanOf(mem, nevents, 4)
	if !ok {
		return errnoFault
	}
	binary.LittleEndian.PutUint32(count, uint32(nsubs))
	timeout := int64(1<<63 - 1)
	sawClock := false
	for i := 0; i < int(nsubs); i++ {
		sub, ev := subs[i*48:], events[i*32:]
		kind := sub[8]
		arg := sub[16:]
		errno := uint16(errnoSuccess)
		switch kind {
		case 0: // clock
			switch binary.LittleEndian.Uint16(arg[24:]) {
			case 0:
			case 1:
				return errnoNotsup
			default:
				return errnoInval
			}
			sawClock = true
			timeout = min(timeout, int64(binary.LittleEndian.Uint64(arg[8:])))
		case 1: // fd_read
			if int32(binary.LittleEndian.Uint32(arg)) < 0 {
				return errnoBadf
			}
		case 2: // fd_write
			if int32(binary.LittleEndian.Uint32(arg)) < 0 {
				return errnoBadf
			}
			errno = errnoNotsup
		default:
			return errnoInval
		}
		copy(ev, sub[:8])
		binary.LittleEndian.PutUint16(ev[8:], errno)
		binary.LittleEndian.PutUint32(ev[10:], uint32(kind))
	}
	if sawClock && timeout > 0 {
		s.clock.nanosleep(timeout)
	}
	return errnoSuccess
}

func memory(c *wasmtime.Caller) []byte {
	ext := c.GetExport("memory")
	if ext == nil || ext.Memory() == nil {
		return nil
	}
	return ext.Memory().UnsafeData(c)
}

// spanOf is mem[ptr:ptr+n], or false if that is out of bounds.
func spanOf(mem []byte, ptr, n int32) ([]byte, bool) {
	p, l := uint64(uint32(ptr)), uint64(uint32(n))
	if p+l > uint64(len(mem)) {
		return nil, false
	}
	return mem[p : p+l : p+l], true
}

func span(c *wasmtime.Caller, ptr, n int32) ([]byte, bool) { return spanOf(memory(c), ptr, n) }

func putU64(c *wasmtime.Caller, ptr int32, v uint64) int32 {
	b, ok := span(c, ptr, 8)
	if !ok {
		return errnoFault
	}
	binary.LittleEndian.PutUint64(b, v)
	return errnoSuccess
}
