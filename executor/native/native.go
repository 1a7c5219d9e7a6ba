// Package native runs a command on the host under bubblewrap (bwrap): no
// network, a read-only view of the system directories only, the task's
// inputs read-only at /input, its output directory at /output, a private
// size-limited work directory at /work and /tmp (tmpfs), an empty
// environment but for what the task sets, a seccomp profile that denies the
// kernel's namespace, mount, module, tracing and BPF calls, no nested user
// namespaces (--disable-userns), and a process tree that is killed as a
// whole at its timeout.
//
// Each task gets a cgroup of its own (v2, or v1 on older hosts; see
// cgroup.go) that caps its memory, CPU and process count. A host without
// cgroups runs native tasks only if the operator opts in
// (Config.AllowWithoutCgroups); memory is then limited with prlimit's
// address-space limit (RLIMIT_AS), except for GPU tasks, processes with
// RLIMIT_NPROC and a watchdog, and CPU is not limited.
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
	"strconv"
	"strings"
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

// DefaultTmpBytes and DefaultWorkBytes bound the task's /tmp and /work.
const (
	DefaultTmpBytes  = 1 << 30
	DefaultWorkBytes = 2 << 30
)

// Config configures an Executor.
type Config struct {
	// Bwrap is the bubblewrap binary (default: "bwrap" from PATH).
	Bwrap string
	// Prlimit is util-linux's prlimit, used for the memory limit (default:
	// "prlimit" from PATH; none found means no memory limit).
	Prlimit string
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
	// MaxProcesses caps the processes and threads of one task, against fork
	// bombs (default 4096): the pids controller with cgroups, RLIMIT_NPROC
	// without, and in both cases a watchdog that kills a task found with
	// more processes.
	MaxProcesses int
	// NoCgroups runs tasks without cgroups even where they are available.
	NoCgroups bool
	// AllowWithoutCgroups runs tasks on a host without usable cgroups, with
	// rlimits only (no CPU cap, a memory cap by address space that GPU
	// tasks do without); false refuses them.
	AllowWithoutCgroups bool
	// TmpBytes and WorkBytes bound the task's /tmp and /work, both tmpfs
	// (default DefaultTmpBytes, DefaultWorkBytes). A tmpfs is the bound the
	// kernel enforces at each write, vanishes with the sandbox and never
	// touches the repo's disk; its pages count against the task's memory
	// cgroup, so scratch space cannot be used to pass the memory limit.
	TmpBytes, WorkBytes int64
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
	cg     *cgroups // nil: no cgroup limits on this host
	cgInfo CgroupStatus
	runs   *executor.Runs
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
	if cfg.SystemDirs == nil {
		cfg.SystemDirs = DefaultSystemDirs()
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.MaxProcesses == 0 {
		cfg.MaxProcesses = 4096
	}
	if cfg.TmpBytes == 0 {
		cfg.TmpBytes = DefaultTmpBytes
	}
	if cfg.WorkBytes == 0 {
		cfg.WorkBytes = DefaultWorkBytes
	}
	cfg.Limits = cfg.Limits.WithDefaults(DefaultLimits())
	e := &Executor{cfg: cfg, log: log.With("component", "executor/native"), runs: executor.NewRuns()}
	e.startCgroups()
	return e, nil
}

// startCgroups sets up task cgroups, or says why tasks run without them.
func (e *Executor) startCgroups() {
	if e.cfg.NoCgroups {
		e.cgInfo = CgroupStatus{Reason: "turned off in the executor's configuration"}
		return
	}
	cg, err := setupCgroups(readProcFiles())
	if err != nil {
		e.cgInfo = CgroupStatus{Reason: err.Error(), Fix: cgroupFix}
		e.log.Warn("native tasks run without cgroup limits", "reason", err, "fix", cgroupFix)
		return
	}
	e.cg = cg
	e.cgInfo = CgroupStatus{Version: 2, Dir: cg.v2}
	if cg.v2 == "" {
		e.cgInfo = CgroupStatus{Version: 1, Dir: cg.v1["memory"]}
	}
	e.log.Info("native tasks get cgroup limits", "version", e.cgInfo.Version, "dir", e.cgInfo.Dir)
}

// Cgroups tells whether tasks run with cgroup limits, and if not why.
func (e *Executor) Cgroups() CgroupStatus { return e.cgInfo }

// Name implements executor.Executor.
func (*Executor) Name() string { return Name }

// Check runs `true` in a sandbox made like a task's, to tell at start-up
// whether this host lets bubblewrap create it (bubblewrap 0.8 or later, for
// --disable-userns and --size), and whether tasks would be refused for lack
// of cgroups.
func (e *Executor) Check(ctx context.Context) error {
	if err := e.cgroupsRequired(); err != nil {
		return err
	}
	filter, err := seccompFile()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer filter.Close()
	cmd := exec.CommandContext(ctx, e.cfg.Bwrap, append(append(e.systemArgs(), e.isolationArgs()...), "--", "true")...)
	cmd.ExtraFiles = []*os.File{filter}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: bwrap cannot create a sandbox (bubblewrap 0.8 or later is needed): %v: %s", ErrUnavailable, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ErrNoCgroups refuses a native task on a host where it would get no cgroup.
var ErrNoCgroups = errors.New("native tasks need cgroups")

// cgroupsRequired refuses tasks when they would run without cgroups and the
// operator has not accepted that.
func (e *Executor) cgroupsRequired() error {
	if e.cg.enabled() || e.cfg.AllowWithoutCgroups {
		return nil
	}
	fix, _, _ := strings.Cut(cgroupFix, ";")
	return fmt.Errorf("%w: %w, and this host gives none (%s); %s, or set executor.native.allow_without_cgroups = true to run them with rlimits only (no CPU cap)",
		ErrUnavailable, ErrNoCgroups, e.cgInfo.Reason, fix)
}

// seccompFD is the descriptor of the seccomp profile in bwrap: the first of
// exec.Cmd's ExtraFiles.
const seccompFD = "3"

// isolationArgs are the namespace, seccomp and scratch-space options of
// every sandbox. --unshare-user is explicit because --disable-userns needs
// it (--unshare-all only tries); --size goes before the --tmpfs it bounds.
func (e *Executor) isolationArgs() []string {
	return []string{
		"--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
		"--seccomp", seccompFD,
		"--proc", "/proc", "--dev", "/dev",
		"--size", strconv.FormatInt(e.cfg.TmpBytes, 10), "--tmpfs", "/tmp",
		"--size", strconv.FormatInt(e.cfg.WorkBytes, 10), "--tmpfs", "/work",
	}
}

// Close stops running tasks and waits for them; it is safe to call twice.
func (e *Executor) Close() error {
	e.runs.Close()
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
	res, err := e.runs.Do(ctx, t.JobID, func(ctx context.Context) (executor.Result, error) { return e.run(ctx, t) })
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
	if err := executor.CheckArgsEnv(t.Args, t.Env); err != nil {
		return res, err
	}
	if err := e.cgroupsRequired(); err != nil {
		return res, err
	}
	inputs, err := executor.CheckMounts(t.Inputs)
	if err != nil {
		return res, err
	}
	outDir, err := executor.PrepareOutputDir(t.OutputDir)
	if err != nil {
		return res, err
	}
	args, err := e.sandboxArgs(t, inputs, outDir)
	if err != nil {
		return res, err
	}
	filter, err := seccompFile()
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer filter.Close()
	name := e.cfg.Bwrap
	var cg *taskCgroup
	switch {
	case e.cg.enabled():
		cg, err = e.cg.create(cgroupLimits{memoryBytes: limits.MemoryBytes, cpuCores: limits.CPUCores, processes: e.cfg.MaxProcesses})
		if err != nil {
			return res, err
		}
		defer cg.remove()
		name, args = cg.wrap(name, args)
	case e.cfg.Prlimit != "":
		// RLIMIT_NPROC counts the processes of the daemon's user (the kernel
		// exempts root, hence also the watchdog below). The address-space
		// limit is left off for GPU tasks: CUDA reserves far more than any
		// GPU has memory.
		limitArgs := []string{fmt.Sprintf("--nproc=%d", e.cfg.MaxProcesses)}
		if len(t.GPUs) == 0 {
			limitArgs = append(limitArgs, fmt.Sprintf("--as=%d", limits.MemoryBytes))
		}
		args = append(append(limitArgs, "--", e.cfg.Bwrap), args...)
		name = e.cfg.Prlimit
	}

	t.NotifyStarted()
	runCtx, cancelRun := context.WithTimeout(ctx, limits.Timeout)
	defer cancelRun()
	stdout := &executor.CapBuffer{Max: limits.MaxStdoutBytes}
	stderr := &executor.CapBuffer{Max: limits.MaxStdoutBytes}
	cmd := exec.Command(name, args...)
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = []*os.File{filter}
	// Its own process group, so that a kill reaches every process it started
	// (inside, bwrap's PID namespace and --die-with-parent do the same).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("%w: start bwrap: %v", ErrUnavailable, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	kill := func() {
		killGroup(cmd.Process.Pid)
		if cg != nil {
			cg.kill()
		}
	}

	var overOutput, overProcesses bool
	tick := time.NewTicker(e.cfg.PollInterval)
	defer tick.Stop()
	var waitErr error
wait:
	for {
		select {
		case waitErr = <-done:
			break wait
		case <-runCtx.Done():
			kill()
		case <-tick.C:
			if u, err := executor.DirUsage(outDir); err == nil && u.Cost() > limits.MaxOutputBytes {
				overOutput = true
				kill()
			}
			if sandboxProcesses(cmd.Process.Pid) > e.cfg.MaxProcesses {
				overProcesses = true
				kill()
			}
		}
	}
	kill() // stragglers that left the sandbox's session
	res.Duration = time.Since(start)
	if cg != nil {
		res.PeakMemoryBytes, res.CPUTime = cg.usage()
	}
	res.Stdout, res.StdoutTruncated = stdout.Bytes(), stdout.Truncated
	res.Stderr, res.StderrTruncated = stderr.Bytes(), stderr.Truncated
	res.ExitCode = cmd.ProcessState.ExitCode()
	usage, sizeErr := executor.DirUsage(outDir)
	res.OutputBytes, res.OutputEntries = usage.Bytes, usage.Entries
	cost := usage.Cost()

	switch {
	case overOutput || cost > limits.MaxOutputBytes:
		return res, fmt.Errorf("%w: wrote more than %d bytes under /output (each file and directory counts %d bytes besides its content)", executor.ErrOutputLimit, limits.MaxOutputBytes, executor.EntryCost)
	case overProcesses:
		return res, fmt.Errorf("%w: killed with more than %d processes running", executor.ErrProcessLimit, e.cfg.MaxProcesses)
	case sizeErr != nil:
		return res, fmt.Errorf("measure /output: %w", sizeErr)
	}
	if err := executor.CheckPlainOutput(outDir); err != nil {
		return res, err
	}
	switch {
	case runCtx.Err() != nil && ctx.Err() == nil:
		return res, fmt.Errorf("%w: killed after %v", executor.ErrTimeout, limits.Timeout)
	case ctx.Err() != nil:
		return res, fmt.Errorf("run interrupted: %w", ctx.Err())
	case waitErr == nil:
		return res, nil
	case cg != nil && cg.oomKilled():
		return res, fmt.Errorf("%w: killed at the %d MiB limit%s", executor.ErrMemoryLimit, limits.MemoryBytes>>20, executor.LastLine(res.Stderr))
	case res.ExitCode == -1:
		return res, fmt.Errorf("%w: %v%s", executor.ErrTrap, waitErr, executor.LastLine(res.Stderr))
	case executor.SaysNoSpace(res.Stderr):
		return res, fmt.Errorf("%w: the task filled its scratch space (/tmp holds %d MiB, /work %d MiB; write results to /output)%s",
			executor.ErrDiskLimit, e.cfg.TmpBytes>>20, e.cfg.WorkBytes>>20, executor.LastLine(res.Stderr))
	case executor.SaysOutOfMemory(res.Stderr):
		return res, fmt.Errorf("%w: the command ran out of memory under the %d MiB limit%s", executor.ErrMemoryLimit, limits.MemoryBytes>>20, executor.LastLine(res.Stderr))
	default:
		return res, fmt.Errorf("%w: exit code %d%s", executor.ErrExit, res.ExitCode, executor.LastLine(res.Stderr))
	}
}

func (e *Executor) sandboxArgs(t executor.Task, inputs []executor.Mount, outDir string) ([]string, error) {
	args := append(e.systemArgs(), e.isolationArgs()...)
	args = append(args,
		"--chdir", "/work",
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
		// Lstat: a program is content another peer published, and a
		// symbolic link would bind any host file (/etc/shadow) into the
		// sandbox, where the task can read it.
		if st, err := os.Lstat(prog); err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: program %q is not a regular file (symbolic links and devices are refused)", executor.ErrBadTask, t.ModulePath)
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
