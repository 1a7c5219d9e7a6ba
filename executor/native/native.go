// Package native runs a command on the host under bubblewrap (bwrap): no
// network, a read-only view of the system directories only, the task's
// inputs read-only at /input, its output directory at /output, a private
// writable work directory at /work, an empty environment but for what the
// task sets, and a process tree that is killed as a whole at its timeout.
//
// Memory is limited with prlimit's address-space limit (RLIMIT_AS) when
// prlimit is installed; cgroup v2 limits are not applied yet.
//
// Native tasks are opt-in for a miner: they run real binaries (PyTorch, ONNX
// Runtime installed on the rig), so they are neither deterministic nor as
// tightly contained as WASM.
package native

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vft-network/vft/executor"
)

// Name is the executor kind in job specs.
const Name = "native"

// DefaultLimits returns the limits for a task field left zero, unless Config overrides them.
func DefaultLimits() executor.Limits {
	return executor.Limits{
		MemoryBytes:    8 << 30,
		Timeout:        time.Hour,
		MaxOutputBytes: 10 << 30,
		MaxStdoutBytes: 1 << 20,
	}
}

// DefaultSystemDirs returns the host paths bound read-only (where they exist)
// when Config.SystemDirs is nil.
func DefaultSystemDirs() []string {
	return []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
		"/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ssl/certs"}
}

// Config configures an Executor.
type Config struct {
	// Bwrap is the bubblewrap binary (default: "bwrap" from PATH).
	Bwrap string
	// Prlimit is util-linux's prlimit, used for the memory limit (default:
	// "prlimit" from PATH; none found means no memory limit).
	Prlimit string
	// WorkRoot is where private work directories are made (default os.TempDir()).
	WorkRoot string
	// SystemDirs are host paths bound read-only at the same place
	// (default DefaultSystemDirs()).
	SystemDirs []string
	// Limits are the defaults for a task's zero limits (DefaultLimits() where zero).
	Limits executor.Limits
	// PollInterval is how often the output size is checked while a task
	// runs (default 250ms).
	PollInterval time.Duration
	// GPUs finds the device nodes of assigned GPUs; nil means the node has
	// none to give (a task asking for GPUs is then refused).
	GPUs GPULister
}

// GPULister maps a GPU's NVML UUID to its device node (/dev/nvidiaN). The
// hardware detector satisfies it; the executor needs nothing more of it.
type GPULister interface {
	DeviceNode(uuid string) (string, error)
}

// gpuControlNodes are shared by all GPUs; CUDA needs them besides /dev/nvidiaN.
func gpuControlNodes() []string {
	return []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"}
}

// Executor runs native commands under bubblewrap. It is safe for concurrent use.
type Executor struct {
	cfg    Config
	log    *slog.Logger
	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

var _ executor.Executor = (*Executor)(nil)

// ErrUnavailable means bubblewrap is missing or cannot create a sandbox here.
var ErrUnavailable = errors.New("native executor unavailable")

// New checks that bwrap is installed and builds an executor; it does not
// start a sandbox (see Check).
func New(cfg Config, log *slog.Logger) (*Executor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Bwrap == "" {
		cfg.Bwrap = "bwrap"
	}
	path, err := exec.LookPath(cfg.Bwrap)
	if err != nil {
		return nil, fmt.Errorf("%w: bubblewrap not found (%v); install it with `apt-get install bubblewrap`", ErrUnavailable, err)
	}
	cfg.Bwrap = path
	if cfg.Prlimit == "" {
		cfg.Prlimit, _ = exec.LookPath("prlimit")
	}
	if cfg.WorkRoot == "" {
		cfg.WorkRoot = os.TempDir()
	}
	if cfg.SystemDirs == nil {
		cfg.SystemDirs = DefaultSystemDirs()
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	cfg.Limits = cfg.Limits.WithDefaults(DefaultLimits())
	life, cancel := context.WithCancel(context.Background())
	return &Executor{cfg: cfg, log: log.With("component", "executor/native"), life: life, cancel: cancel}, nil
}

// Name implements executor.Executor.
func (*Executor) Name() string { return Name }

// Check runs `true` in a sandbox, to tell at start-up whether this host lets
// bubblewrap create namespaces.
func (e *Executor) Check(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, e.cfg.Bwrap, append(e.systemArgs(), "--unshare-all", "--die-with-parent", "--", "true")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: bwrap cannot create a sandbox: %v: %s", ErrUnavailable, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Close stops running tasks and waits for them; it is safe to call twice.
func (e *Executor) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

func (e *Executor) systemArgs() []string {
	var args []string
	for _, dir := range e.cfg.SystemDirs {
		if _, err := os.Lstat(dir); err == nil {
			args = append(args, "--ro-bind", dir, dir)
		}
	}
	return args
}

// Run implements executor.Executor. The command is Task.ModulePath (a host
// executable, bound read-only at /work/.program) or, without it, Task.Args[0]
// looked up in the sandbox's PATH; the arguments follow.
func (e *Executor) Run(ctx context.Context, t executor.Task) (executor.Result, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return executor.Result{}, executor.ErrClosed
	}
	e.wg.Add(1)
	e.mu.Unlock()
	defer e.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.life, cancel)()

	res, err := e.run(ctx, t)
	err = executor.RunError(err, e.life.Err() != nil, t.JobID)
	e.log.Debug("task finished", "job", t.JobID, "exit", res.ExitCode, "duration", res.Duration, "err", err)
	return res, err
}

func (e *Executor) run(ctx context.Context, t executor.Task) (executor.Result, error) {
	var res executor.Result
	limits := t.Limits.WithDefaults(e.cfg.Limits)
	if len(t.Module) > 0 {
		return res, fmt.Errorf("%w: the native executor runs a command (ModulePath or Args), not module bytes", executor.ErrBadTask)
	}
	if t.ModulePath == "" && len(t.Args) == 0 {
		return res, fmt.Errorf("%w: no command given", executor.ErrBadTask)
	}
	inputs, err := executor.CheckMounts(t.Inputs)
	if err != nil {
		return res, err
	}
	outDir, err := executor.PrepareOutputDir(t.OutputDir)
	if err != nil {
		return res, err
	}
	work, err := os.MkdirTemp(e.cfg.WorkRoot, "vft-native-")
	if err != nil {
		return res, fmt.Errorf("make work dir: %w", err)
	}
	defer os.RemoveAll(work)

	args, err := e.sandboxArgs(t, inputs, outDir, work)
	if err != nil {
		return res, err
	}
	name := e.cfg.Bwrap
	if e.cfg.Prlimit != "" {
		args = append([]string{fmt.Sprintf("--as=%d", limits.MemoryBytes), "--", e.cfg.Bwrap}, args...)
		name = e.cfg.Prlimit
	}

	runCtx, cancelRun := context.WithTimeout(ctx, limits.Timeout)
	defer cancelRun()
	stdout := &executor.CapBuffer{Max: limits.MaxStdoutBytes}
	stderr := &executor.CapBuffer{Max: limits.MaxStdoutBytes}
	cmd := exec.Command(name, args...)
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, so that a kill reaches every process it started
	// (inside, bwrap's PID namespace and --die-with-parent do the same).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("%w: start bwrap: %v", ErrUnavailable, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var overOutput bool
	tick := time.NewTicker(e.cfg.PollInterval)
	defer tick.Stop()
	var waitErr error
wait:
	for {
		select {
		case waitErr = <-done:
			break wait
		case <-runCtx.Done():
			killGroup(cmd.Process.Pid)
		case <-tick.C:
			if size, err := executor.DirSize(outDir); err == nil && size > limits.MaxOutputBytes {
				overOutput = true
				killGroup(cmd.Process.Pid)
			}
		}
	}
	killGroup(cmd.Process.Pid) // stragglers that left the sandbox's session
	res.Duration = time.Since(start)
	res.Stdout, res.StdoutTruncated = stdout.Bytes(), stdout.Truncated
	res.Stderr, res.StderrTruncated = stderr.Bytes(), stderr.Truncated
	res.ExitCode = cmd.ProcessState.ExitCode()
	size, sizeErr := executor.DirSize(outDir)
	res.OutputBytes = size

	switch {
	case overOutput || size > limits.MaxOutputBytes:
		return res, fmt.Errorf("%w: wrote more than %d bytes under /output", executor.ErrOutputLimit, limits.MaxOutputBytes)
	case sizeErr != nil:
		return res, fmt.Errorf("measure /output: %w", sizeErr)
	case runCtx.Err() != nil && ctx.Err() == nil:
		return res, fmt.Errorf("%w: killed after %v", executor.ErrTimeout, limits.Timeout)
	case ctx.Err() != nil:
		return res, fmt.Errorf("run interrupted: %w", ctx.Err())
	case waitErr == nil:
		return res, nil
	case res.ExitCode == -1:
		return res, fmt.Errorf("%w: %v%s", executor.ErrTrap, waitErr, lastLine(res.Stderr))
	case outOfMemory(res.Stderr):
		return res, fmt.Errorf("%w: the command ran out of memory under the %d MiB limit%s", executor.ErrMemoryLimit, limits.MemoryBytes>>20, lastLine(res.Stderr))
	default:
		return res, fmt.Errorf("%w: exit code %d%s", executor.ErrExit, res.ExitCode, lastLine(res.Stderr))
	}
}

func (e *Executor) sandboxArgs(t executor.Task, inputs []executor.Mount, outDir, work string) ([]string, error) {
	args := e.systemArgs()
	args = append(args,
		"--unshare-all", "--die-with-parent", "--new-session",
		"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
		"--bind", work, "/work", "--chdir", "/work",
		"--bind", outDir, "/output",
		"--dir", "/input",
		"--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/work")
	// Bind the root input first, so that deeper mounts land on top of it.
	sorted := slices.Clone(inputs)
	slices.SortFunc(sorted, func(a, b executor.Mount) int { return strings.Count(a.Guest, "/") - strings.Count(b.Guest, "/") })
	for _, m := range sorted {
		guest := "/input"
		if m.Guest != "." {
			guest = "/input/" + m.Guest
		}
		args = append(args, "--ro-bind", m.Host, guest)
	}
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		args = append(args, "--setenv", k, t.Env[k])
	}
	// After the task's variables, so that the task cannot override them.
	gpuArgs, err := e.gpuArgs(t.GPUs)
	if err != nil {
		return nil, err
	}
	args = append(args, gpuArgs...)
	command := t.Args
	if t.ModulePath != "" {
		prog, err := filepath.Abs(t.ModulePath)
		if err != nil {
			return nil, fmt.Errorf("%w: program: %v", executor.ErrBadTask, err)
		}
		if st, err := os.Stat(prog); err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: program %q is not a file", executor.ErrBadTask, t.ModulePath)
		}
		args = append(args, "--ro-bind", prog, "/work/.program")
		command = append([]string{"/work/.program"}, t.Args...)
	}
	return append(append(args, "--"), command...), nil
}

// gpuArgs binds the assigned GPUs' device nodes (and the shared control
// nodes) into the sandbox's /dev and names them in CUDA_VISIBLE_DEVICES, so
// the task sees those GPUs and no other: the device nodes of the others are
// absent whatever the task's environment says.
func (e *Executor) gpuArgs(uuids []string) ([]string, error) {
	if len(uuids) == 0 {
		return []string{"--setenv", "CUDA_VISIBLE_DEVICES", ""}, nil
	}
	if e.cfg.GPUs == nil {
		return nil, fmt.Errorf("%w: the task asks for %d GPUs and this node gives none to native tasks", executor.ErrBadTask, len(uuids))
	}
	var args []string
	for _, uuid := range uuids {
		node, err := e.cfg.GPUs.DeviceNode(uuid)
		if err != nil {
			return nil, fmt.Errorf("%w: GPU %s: %v", executor.ErrBadTask, uuid, err)
		}
		args = append(args, "--dev-bind", node, "/dev/"+filepath.Base(node))
	}
	for _, node := range gpuControlNodes() {
		if _, err := os.Stat(node); err == nil {
			args = append(args, "--dev-bind", node, node)
		}
	}
	list := strings.Join(uuids, ",")
	return append(args, "--setenv", "CUDA_VISIBLE_DEVICES", list, "--setenv", "NVIDIA_VISIBLE_DEVICES", list), nil
}

func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

func outOfMemory(stderr []byte) bool {
	s := strings.ToLower(string(stderr))
	for _, sign := range []string{"out of memory", "cannot allocate memory", "memoryerror", "bad_alloc"} {
		if strings.Contains(s, sign) {
			return true
		}
	}
	return false
}

// lastLine returns ": <last non-empty line of stderr>", or "".
func lastLine(stderr []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return ": " + last
	}
	return ""
}
