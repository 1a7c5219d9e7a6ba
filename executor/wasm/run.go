package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/vft-network/vft/executor"
)

const pageSize = 64 << 10

// Run implements executor.Executor. The returned Result is filled as far as
// the run got, also when err is not nil.
func (e *Executor) Run(ctx context.Context, t executor.Task) (executor.Result, error) {
	if err := e.begin(); err != nil {
		return executor.Result{}, err
	}
	defer e.wg.Done()
	// The run also ends when the executor closes.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.life, cancel)()

	var res executor.Result
	var err error
	if e.wt != nil {
		res, err = e.wt.run(ctx, t)
	} else {
		res, err = e.run(ctx, t)
	}
	err = executor.RunError(err, e.life.Err() != nil, t.JobID)
	e.log.Debug("task finished", "job", t.JobID, "exit", res.ExitCode,
		"duration", res.Duration, "output_bytes", res.OutputBytes, "err", err)
	return res, err
}

// checkedTask is a task whose module, arguments, environment and mounts
// passed the checks both runtimes make before they compile anything.
type checkedTask struct {
	bin    []byte
	limits executor.Limits
	inputs []executor.Mount
	outDir string
}

// check loads t's module (unless held: the runtime has it compiled) and
// checks the rest of t, with the executor's limits filled in.
func (e *Executor) check(t executor.Task, held bool) (checkedTask, error) {
	c := checkedTask{limits: t.Limits.WithDefaults(e.cfg.Limits)}
	c.limits.MemoryBytes = min(c.limits.MemoryBytes, maxMemoryBytes)
	var err error
	if c.bin, err = e.loadModule(t, held); err != nil {
		return c, err
	}
	if err := executor.CheckArgsEnv(t.Args, t.Env); err != nil {
		return c, err
	}
	if err := CheckFloats(t.Floats); err != nil {
		return c, fmt.Errorf("%w: %v", executor.ErrBadTask, err)
	}
	if c.inputs, err = executor.CheckMounts(t.Inputs); err != nil {
		return c, err
	}
	c.outDir, err = executor.PrepareOutputDir(t.OutputDir)
	return c, err
}

func (e *Executor) run(ctx context.Context, t executor.Task) (executor.Result, error) {
	var res executor.Result
	c, err := e.check(t, false)
	if err != nil {
		return res, err
	}
	bin, limits, inputs, outDir := c.bin, c.limits, c.inputs, c.outDir
	// The compile has a limit of its own, and the job's time limit starts
	// after it: a cold miner must not time out where a warm one finishes.
	compileCtx, cancelCompile := context.WithTimeout(ctx, e.cfg.CompileTimeout)
	mod, release, err := e.compile(compileCtx, bin)
	cancelCompile()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			res.ExitCode = -1 // killed before it exited, like a run past its time
			return res, fmt.Errorf("%w: compiling the module took more than the miner's %v compile limit", executor.ErrTimeout, e.cfg.CompileTimeout)
		}
		return res, err
	}
	deadline := time.Now().Add(limits.Timeout)
	defer release()
	if err := checkModule(mod, bin, limits.MemoryBytes); err != nil {
		return res, err
	}
	t.NotifyStarted()

	fsConfig, cleanup, err := mountInputs(inputs, outDir)
	if err != nil {
		return res, err
	}
	defer cleanup()
	budget := &outputBudget{dir: outDir, limit: limits.MaxOutputBytes}
	fsConfig = fsConfig.(sysfs.FSConfig).WithSysFSMount(newOutputFS(outDir, budget), "/output")

	stdout := &executor.CapBuffer{Max: limits.MaxStdoutBytes}
	stderr := &executor.CapBuffer{Max: limits.MaxStdoutBytes}
	clock := &fakeClock{}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs(append([]string{"task"}, t.Args...)...).
		WithStdin(eofReader{}).
		WithStdout(stdout).
		WithStderr(stderr).
		WithFSConfig(fsConfig).
		WithWalltime(clock.walltime, 1).
		WithNanotime(clock.nanotime, 1).
		WithNanosleep(clock.nanosleep).
		WithOsyield(func() {}).
		WithRandSource(seededRand(t.Seed))
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		cfg = cfg.WithEnv(k, t.Env[k])
	}

	alloc := &limitedAllocator{limit: limits.MemoryBytes}
	runCtx, cancel := context.WithDeadline(experimental.WithMemoryAllocator(ctx, alloc), deadline)
	defer cancel()

	start := time.Now()
	inst, runErr := e.rt.InstantiateModule(runCtx, mod, cfg)
	res.Duration = time.Since(start)
	if inst != nil {
		_ = inst.Close(context.Background())
	}
	res.Stdout, res.StdoutTruncated = stdout.Bytes(), stdout.Truncated
	res.Stderr, res.StderrTruncated = stderr.Bytes(), stderr.Truncated
	usage, sizeErr := executor.DirUsage(outDir)
	res.OutputBytes, res.OutputEntries = usage.Bytes, usage.Entries
	cost := usage.Cost()

	var exit *sys.ExitError
	if errors.As(runErr, &exit) {
		res.ExitCode = int(exit.ExitCode())
		if c := exit.ExitCode(); c == sys.ExitCodeDeadlineExceeded || c == sys.ExitCodeContextCanceled {
			res.ExitCode = -1
		}
	}
	o := outcome{runErr: runErr, exit: exit, res: &res, limits: limits,
		memoryHit: alloc.hit.Load(), outputHit: budget.wasExceeded() || cost > limits.MaxOutputBytes, sizeErr: sizeErr,
		timedOut: runCtx.Err() != nil && ctx.Err() == nil, interrupted: ctx.Err()}
	return res, o.err()
}

// outcome is what a finished run left behind, to be turned into an error.
type outcome struct {
	runErr      error
	exit        *sys.ExitError
	res         *executor.Result
	limits      executor.Limits
	memoryHit   bool // the allocator refused a grow
	outputHit   bool // the output budget refused a write
	sizeErr     error
	timedOut    bool
	interrupted error // the caller's context error, if any
}

// err names the first reason the run failed, most specific first: a limit
// the task ran into explains the trap or exit code that followed it.
func (o outcome) err() error {
	res, limits := o.res, o.limits
	switch {
	case o.outputHit || res.OutputBytes > limits.MaxOutputBytes:
		return fmt.Errorf("%w: wrote more than %d bytes under /output (each file and directory counts %d bytes besides its content)", executor.ErrOutputLimit, limits.MaxOutputBytes, executor.EntryCost)
	case o.sizeErr != nil:
		return fmt.Errorf("measure /output: %w", o.sizeErr)
	case o.runErr == nil:
		return nil
	case o.memoryHit:
		return fmt.Errorf("%w: the module asked for more than %d MiB of memory (raise the job's memory limit)", executor.ErrMemoryLimit, limits.MemoryBytes>>20)
	case o.timedOut && errors.Is(o.runErr, context.DeadlineExceeded):
		return fmt.Errorf("%w: killed after %v", executor.ErrTimeout, limits.Timeout)
	case o.interrupted != nil:
		return fmt.Errorf("run interrupted: %w", o.interrupted)
	case o.exit != nil:
		if msg, ok := goPanic(res.ExitCode, res.Stderr); ok {
			return fmt.Errorf("%w: %s", executor.ErrTrap, msg)
		}
		return fmt.Errorf("%w: exit code %d%s", executor.ErrExit, res.ExitCode, executor.LastLine(res.Stderr))
	}
	if msg, ok := trapMessage(o.runErr); ok {
		return fmt.Errorf("%w: %s", executor.ErrTrap, msg)
	}
	// wazero ends endless recursion at its own stack limit (about 128 MiB,
	// outside the memory limit) with an error that is not a "wasm error".
	if strings.Contains(o.runErr.Error(), "stack overflow") {
		return fmt.Errorf("%w: call stack overflow (endless recursion?)", executor.ErrTrap)
	}
	return fmt.Errorf("%w: %v", executor.ErrBadTask, o.runErr)
}

// checkModule refuses a module whose imports the sandbox does not
// provide, or whose initial memory is over the limit, before wazero tries
// (and fails) to link or allocate it.
func checkModule(mod wazero.CompiledModule, bin []byte, limit uint64) error {
	for _, f := range mod.ImportedFunctions() {
		if module, name, _ := f.Import(); module != wasi_snapshot_preview1.ModuleName {
			return fmt.Errorf("%w: the module imports %s.%s, but the sandbox provides only WASI preview 1 (%s); build Go programs with GOOS=wasip1 GOARCH=wasm",
				executor.ErrBadTask, module, name, wasi_snapshot_preview1.ModuleName)
		}
	}
	for _, m := range mod.ImportedMemories() {
		name, _, _ := m.Import()
		return fmt.Errorf("%w: the module imports a memory from %q, which the sandbox does not provide", executor.ErrBadTask, name)
	}
	mins, err := memoryMinimums(bin)
	if err != nil {
		return fmt.Errorf("%w: %v", executor.ErrNotWASM, err)
	}
	for _, pages := range mins {
		if need := pages * pageSize; need > limit {
			return fmt.Errorf("%w: the module needs %d MiB of memory to start, over the %d MiB limit", executor.ErrMemoryLimit, (need+1<<20-1)>>20, limit>>20)
		}
	}
	return nil
}

// mountInputs builds the /input tree. A directory mounted at "." is /input
// itself; otherwise /input is a fresh staging directory holding the file
// mounts (hard-linked, or copied across file systems) and empty mount points
// for the directory mounts, which are mounted over them.
func mountInputs(inputs []executor.Mount, outDir string) (wazero.FSConfig, func(), error) {
	cleanup := func() {}
	root, staged := "", false
	for _, m := range inputs {
		if m.Guest == "." {
			root = m.Host
		}
	}
	if root == "" {
		staging, err := os.MkdirTemp(filepath.Dir(outDir), ".vft-input-")
		if err != nil {
			return nil, nil, fmt.Errorf("%w: stage inputs: %v", executor.ErrBadMount, err)
		}
		cleanup = func() { _ = os.RemoveAll(staging) }
		root, staged = staging, true
		for _, m := range inputs {
			if err := stage(m, staging); err != nil {
				cleanup()
				return nil, nil, err
			}
		}
	}
	cfg := wazero.NewFSConfig().(sysfs.FSConfig).WithSysFSMount(inputFS(root), "/input")
	for _, m := range inputs {
		if m.Guest == "." {
			continue
		}
		st, err := os.Stat(m.Host)
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("%w: input %q: %v", executor.ErrBadMount, m.Host, err)
		}
		if st.IsDir() {
			cfg = cfg.(sysfs.FSConfig).WithSysFSMount(inputFS(m.Host), "/input/"+m.Guest)
		} else if !staged {
			cleanup()
			return nil, nil, fmt.Errorf("%w: input file %q cannot be mounted inside the directory mounted at /input; put it in that directory", executor.ErrBadMount, m.Host)
		}
	}
	return cfg, cleanup, nil
}

func stage(m executor.Mount, staging string) error {
	dst := filepath.Join(staging, filepath.FromSlash(m.Guest))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("%w: stage %s: %v", executor.ErrBadMount, m.Guest, err)
	}
	st, err := os.Stat(m.Host)
	if err != nil {
		return fmt.Errorf("%w: input %q: %v", executor.ErrBadMount, m.Host, err)
	}
	if st.IsDir() {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("%w: stage %s: %v", executor.ErrBadMount, m.Guest, err)
		}
		return nil
	}
	if err := os.Link(m.Host, dst); err == nil {
		return nil
	}
	if err := copyFile(m.Host, dst); err != nil {
		return fmt.Errorf("%w: stage %s: %v", executor.ErrBadMount, m.Host, err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// goPanic recognises the way a Go program dies on a panic or a fatal runtime
// error: exit code 2 and "panic: ..." or "fatal error: ..." on stderr. For a
// Go module that is what a trap is for other languages.
func goPanic(code int, stderr []byte) (string, bool) {
	if code != 2 {
		return "", false
	}
	for _, line := range strings.Split(string(stderr), "\n") {
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			return line, true
		}
	}
	return "", false
}

// trapMessage extracts "unreachable" from wazero's "... wasm error: unreachable\nwasm stack trace: ...".
func trapMessage(err error) (string, bool) {
	msg := err.Error()
	i := strings.Index(msg, "wasm error: ")
	if i < 0 {
		return "", false
	}
	msg = msg[i:]
	if j := strings.IndexByte(msg, '\n'); j >= 0 {
		msg = msg[:j]
	}
	return msg, true
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
