// Package oci runs a task in an OCI container image with a real OCI
// runtime (crun, or runc).
//
// A task names a host directory holding an OCI image layout
// (executor.Task.Image, fetched from storage by the caller). Open verifies
// every blob the image uses against its digest and picks the manifest for
// this machine's platform; the rootfs is unpacked once per manifest digest
// into a size-capped, least-recently-used cache (cache.go), through an
// os.Root that keeps every write inside it (unpack.go). Each run gets a
// bundle with a generated runtime-spec config (config.go): its own PID,
// network (no interface but lo), IPC, UTS, mount and cgroup namespaces, a
// read-only root, a size-limited /tmp, the inputs read-only at /input, the
// output directory at /output, cgroup limits from the task, a seccomp deny
// list, no capabilities and no new privileges. GPUs are injected from CDI
// specs (cdi.go), or, where no spec names them, from the device nodes and
// driver libraries found through NVML and ldconfig (nvml.go).
//
// The container runs as root of the image (uid 0) without capabilities, in
// a user namespace of its own (userns.go): its ids are host ids
// Config.HostIDBase and up, which own the unpacked image and the files it
// writes under /output. Because such an id cannot search the daemon's
// directories, every mount source is bind-mounted into a per-task stage
// directory the runtime can reach.
package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/vft-network/vft/executor"
)

// Name is the executor kind in job specs.
const Name = "oci"

// ErrUnavailable: no usable OCI runtime on this host.
var ErrUnavailable = errors.New("oci executor unavailable")

// killGrace is how long a kill waits for the runtime to have created the
// container before it kills the runtime itself.
const killGrace = 10 * time.Second

// Defaults.
const (
	DefaultCacheBytes   = 20 << 30
	DefaultTmpBytes     = 1 << 30
	DefaultMaxProcesses = 4096
)

// DefaultLimits returns the limits for a task field left zero, unless
// Config overrides them.
func DefaultLimits() executor.Limits {
	return executor.Limits{
		MemoryBytes:    8 << 30,
		Timeout:        time.Hour,
		MaxOutputBytes: 10 << 30,
		MaxStdoutBytes: 1 << 20,
	}
}

// Config configures an Executor.
type Config struct {
	// Runtime is the OCI runtime binary, crun or runc (default: crun from
	// PATH, or runc where crun is missing or cannot run here: crun refuses
	// hosts whose cgroups are in hybrid v1/v2 mode).
	Runtime string
	// StateDir is the runtime's --root, where it keeps container state
	// (default /run/vft-oci/<runtime>: apart from other users' containers).
	StateDir string
	// CacheDir holds the unpacked root file systems (required).
	CacheDir string
	// CacheBytes caps the unpacked root file systems together (default
	// DefaultCacheBytes); an image larger than this is refused.
	CacheBytes int64
	// BundleDir holds each run's bundle (config.json) while it runs
	// (default: a directory under os.TempDir()).
	BundleDir string
	// Limits are the defaults for a task's zero limits (DefaultLimits() where zero).
	Limits executor.Limits
	// TmpBytes bounds the task's /tmp tmpfs (default DefaultTmpBytes); its
	// pages count against the task's memory limit.
	TmpBytes int64
	// MaxProcesses caps the processes and threads of one task (default
	// DefaultMaxProcesses), with the pids cgroup.
	MaxProcesses int64
	// PollInterval is how often the output size is checked while a task
	// runs (default 250ms).
	PollInterval time.Duration
	// CDISpecDirs are where CDI specs are read from (default /etc/cdi and
	// /var/run/cdi); CDIKind is the kind of the GPU devices in them
	// (default DefaultCDIKind).
	CDISpecDirs []string
	CDIKind     string
	// GPUs maps the GPUs NVML found to their device nodes, for GPUs no CDI
	// spec names: the executor then binds the device nodes and the
	// driver's libraries itself (nil: only CDI).
	GPUs GPUNodes

	// NoUserNamespace runs containers without a user namespace: their
	// root is the host's root, without capabilities.
	NoUserNamespace bool
	// HostIDBase is the host id of the container's root (uid and gid);
	// the container has IDRangeSize ids from there (default
	// DefaultHostIDBase).
	HostIDBase uint32
	// StageDir holds each task's mounts: its rootfs overlay, inputs and
	// output (default /run/vft-oci-stage/<hash of CacheDir>); every
	// directory above it must be searchable by others.
	StageDir string

	// gpuHost is where injection without CDI finds device nodes and
	// libraries: the real host unless a test sets stand-ins.
	gpuHost gpuHost
}

// Executor runs tasks in OCI containers. It is safe for concurrent use.
type Executor struct {
	cfg   Config
	log   *slog.Logger
	cache *Cache
	runs  *executor.Runs
}

var _ executor.Executor = (*Executor)(nil)

// New finds the runtime, opens the rootfs cache and builds an executor.
func New(cfg Config, log *slog.Logger) (*Executor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "executor/oci")
	rt, err := findRuntime(cfg.Runtime)
	if err != nil {
		return nil, err
	}
	cfg.Runtime = rt
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join("/run/vft-oci", filepath.Base(rt))
	}
	if cfg.CacheDir == "" {
		return nil, fmt.Errorf("%w: no rootfs cache directory configured", ErrUnavailable)
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.TmpBytes == 0 {
		cfg.TmpBytes = DefaultTmpBytes
	}
	if cfg.MaxProcesses == 0 {
		cfg.MaxProcesses = DefaultMaxProcesses
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if len(cfg.CDISpecDirs) == 0 {
		cfg.CDISpecDirs = cdi.DefaultSpecDirs
	}
	if cfg.CDIKind == "" {
		cfg.CDIKind = DefaultCDIKind
	}
	if cfg.gpuHost.libs == nil {
		cfg.gpuHost = realGPUHost()
	}
	if cfg.BundleDir == "" {
		cfg.BundleDir = filepath.Join(os.TempDir(), "vft-oci-bundles")
	}
	if err := os.MkdirAll(cfg.BundleDir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: bundle directory: %v", ErrUnavailable, err)
	}
	cfg.Limits = cfg.Limits.WithDefaults(DefaultLimits())
	owner := -1
	if !cfg.NoUserNamespace {
		if err := prepareUserNamespaces(&cfg); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		owner = int(cfg.HostIDBase)
	}
	if err := prepareStage(&cfg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	cache, err := OpenCache(cfg.CacheDir, cfg.CacheBytes, owner, log)
	if err != nil {
		return nil, err
	}
	log.Info("oci executor ready", "runtime", cfg.Runtime, "cache", cfg.CacheDir, "cache_bytes", cfg.CacheBytes,
		"user_namespace", !cfg.NoUserNamespace, "host_id_base", cfg.HostIDBase)
	return &Executor{cfg: cfg, log: log, cache: cache, runs: executor.NewRuns()}, nil
}

// findRuntime resolves the configured runtime, or picks crun or runc.
func findRuntime(name string) (string, error) {
	if name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%w: OCI runtime %q not found (%v); install crun: apt-get install crun", ErrUnavailable, name, err)
		}
		return p, nil
	}
	crun, crunErr := exec.LookPath("crun")
	hybrid := hybridCgroups()
	if crunErr == nil && !hybrid {
		return crun, nil
	}
	if runc, err := exec.LookPath("runc"); err == nil {
		return runc, nil
	}
	if crunErr == nil {
		return "", fmt.Errorf("%w: crun does not run on a host whose cgroups are in hybrid v1/v2 mode (controllers in /sys/fs/cgroup/unified); install runc: apt-get install runc, or boot with cgroup v2 only (systemd.unified_cgroup_hierarchy=1)", ErrUnavailable)
	}
	return "", fmt.Errorf("%w: no OCI runtime found; install crun: apt-get install crun", ErrUnavailable)
}

// hybridCgroups tells whether v1 hierarchies are mounted and the v2 one
// under them holds controllers, which crun refuses.
func hybridCgroups() bool {
	b, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	return err == nil && strings.TrimSpace(string(b)) != ""
}

// Name implements executor.Executor.
func (*Executor) Name() string { return Name }

// Runtime is the OCI runtime binary in use.
func (e *Executor) Runtime() string { return e.cfg.Runtime }

// Cache is the executor's rootfs cache.
func (e *Executor) Cache() *Cache { return e.cache }

// Close stops running tasks and waits for them; it is safe to call twice.
func (e *Executor) Close() error {
	e.runs.Close()
	_ = os.Remove(e.cfg.StageDir) // empty once every task has ended
	return nil
}

// Prepare verifies the image at imageDir and unpacks it into the cache, so
// that a later Run starts at once: call it when a job is assigned, before
// its clock starts. It returns the manifest digest.
func (e *Executor) Prepare(ctx context.Context, imageDir string) (string, error) {
	img, err := Open(imageDir, nil)
	if err != nil {
		return "", err
	}
	_, release, _, err := e.cache.Get(ctx, img)
	if err != nil {
		return "", err
	}
	release()
	return img.Digest.String(), nil
}

// Run implements executor.Executor. The command is Task.Args, or the
// image's entrypoint and command when Args is empty. Unpacking the image
// (if Prepare did not) happens before the timeout starts.
func (e *Executor) Run(ctx context.Context, t executor.Task) (executor.Result, error) {
	res, err := e.runs.Do(ctx, t.JobID, func(ctx context.Context) (executor.Result, error) { return e.run(ctx, t) })
	e.log.Debug("task finished", "job", t.JobID, "exit", res.ExitCode, "duration", res.Duration, "err", err)
	return res, err
}

func (e *Executor) run(ctx context.Context, t executor.Task) (executor.Result, error) {
	var res executor.Result
	limits := t.Limits.WithDefaults(e.cfg.Limits)
	switch {
	case t.Image == "":
		return res, fmt.Errorf("%w: no image given (the oci executor runs a command in an OCI image layout)", executor.ErrBadTask)
	case len(t.Module) > 0 || t.ModulePath != "":
		return res, fmt.Errorf("%w: the oci executor runs a command in an image, not a module", executor.ErrBadTask)
	}
	if err := executor.CheckArgsEnv(t.Args, t.Env); err != nil {
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
	// The layers are verified only when they are unpacked (a cache miss).
	img, err := openManifest(t.Image, nil)
	if err != nil {
		return res, imageError(err)
	}
	rootfs, release, _, err := e.cache.Get(ctx, img)
	if err != nil {
		return res, imageError(err)
	}
	defer release()

	args := t.Args
	if len(args) == 0 {
		args = append(append([]string{}, img.Config.Config.Entrypoint...), img.Config.Config.Cmd...)
	}
	if len(args) == 0 {
		return res, fmt.Errorf("%w: no command given and the image %s has no entrypoint or command", executor.ErrBadTask, img.Digest)
	}
	cwd := img.Config.Config.WorkingDir
	if cwd == "" {
		cwd = "/tmp" // writable, unlike the read-only root
	}

	bundle, err := os.MkdirTemp(e.cfg.BundleDir, "task-")
	if err != nil {
		return res, fmt.Errorf("%w: bundle: %v", ErrUnavailable, err)
	}
	defer os.RemoveAll(bundle)
	id := "vft-" + filepath.Base(bundle)
	params := specParams{
		Rootfs: rootfs, Args: args, Env: taskEnv(img.Config.Config.Env, t.Env), Cwd: cwd,
		InputSkeleton: filepath.Join(bundle, "input"), Inputs: inputs, OutputDir: outDir, Limits: limits,
		TmpBytes: e.cfg.TmpBytes, MaxProcesses: e.cfg.MaxProcesses, CgroupsPath: cgroupsPath(id),
	}
	stage, err := e.stage(id, &params)
	if err != nil {
		return res, err
	}
	defer func() {
		if err := stage.Close(); err != nil {
			e.log.Error("task stage left in place", "dir", stage.dir, "err", err)
		}
	}()
	if err := inputSkeleton(params.InputSkeleton, params.Inputs); err != nil {
		return res, err
	}
	spec := buildSpec(params)
	via, err := injectGPUs(spec, e.cfg.CDISpecDirs, e.cfg.CDIKind, e.cfg.GPUs, e.cfg.gpuHost, t.GPUs)
	if err != nil {
		return res, fmt.Errorf("%w: %w", executor.ErrBadTask, err)
	}
	if via != "" {
		e.log.Info("GPUs injected", "gpus", t.GPUs, "via", via)
	}
	if params.IDBase != 0 {
		if err := devicesAsMounts(spec); err != nil {
			return res, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	raw, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o600); err != nil {
		return res, fmt.Errorf("%w: bundle: %v", ErrUnavailable, err)
	}
	t.NotifyStarted()
	return e.runContainer(ctx, id, bundle, outDir, limits)
}

// stage mounts the task's rootfs (an overlay), inputs and output into a
// stage directory that the container's root can reach, gives it the
// output directory, and points p at the staged paths.
func (e *Executor) stage(id string, p *specParams) (*taskStage, error) {
	owner := -1
	if !e.cfg.NoUserNamespace {
		owner = int(e.cfg.HostIDBase)
		if err := os.Chown(p.OutputDir, owner, owner); err != nil {
			return nil, fmt.Errorf("give the output directory to the container's root: %w", err)
		}
		p.IDBase = e.cfg.HostIDBase
	}
	stage, err := newTaskStage(e.cfg.StageDir, id)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*taskStage, error) {
		if cerr := stage.Close(); cerr != nil {
			e.log.Error("task stage left in place", "dir", stage.dir, "err", cerr)
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if p.Rootfs, err = stage.overlay(p.Rootfs, "rootfs", owner); err != nil {
		return fail(err)
	}
	if p.OutputDir, err = stage.bind(p.OutputDir, "output", true); err != nil {
		return fail(err)
	}
	inputs := slices.Clone(p.Inputs)
	for i := range inputs {
		if inputs[i].Host, err = stage.bind(inputs[i].Host, fmt.Sprintf("input-%d", i), false); err != nil {
			return fail(err)
		}
	}
	p.Inputs = inputs
	p.InputSkeleton = filepath.Join(stage.dir, "input")
	return stage, nil
}

// imageError marks what is wrong with the image itself as a bad task; a
// cancelled context or a full disk stay what they are.
func imageError(err error) error {
	for _, bad := range []error{ErrNotLayout, ErrBadBlob, ErrPlatform, ErrHostileLayer, ErrTooLarge} {
		if errors.Is(err, bad) {
			return fmt.Errorf("%w: %w", executor.ErrBadTask, err)
		}
	}
	return err
}

// runtimeCmd builds a command of the runtime with its global options.
func (e *Executor) runtimeCmd(args ...string) *exec.Cmd {
	args = append([]string{"--root", e.cfg.StateDir}, args...)
	cmd := exec.Command(e.cfg.Runtime, args...)
	cmd.Env = []string{}
	return cmd
}

func (e *Executor) runContainer(ctx context.Context, id, bundle, outDir string, limits executor.Limits) (executor.Result, error) {
	var res executor.Result
	runCtx, cancelRun := context.WithTimeout(ctx, limits.Timeout)
	defer cancelRun()
	stdout := &executor.CapBuffer{Max: limits.MaxStdoutBytes}
	stderr := &executor.CapBuffer{Max: limits.MaxStdoutBytes}
	cmd := e.runtimeCmd("run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The container's processes hold the output pipes; should any outlive
	// a killed runtime, Wait gives up on them instead of hanging.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("%w: start %s: %v", ErrUnavailable, e.cfg.Runtime, err)
	}
	// Whatever happens, the container goes: a runtime that died leaves its
	// state and cgroup behind otherwise.
	defer func() {
		if out, err := e.runtimeCmd("delete", "--force", id).CombinedOutput(); err != nil && !strings.Contains(string(out), "not exist") && !strings.Contains(string(out), "not found") {
			e.log.Debug("delete container", "id", id, "err", err, "output", strings.TrimSpace(string(out)))
		}
		// A runtime killed while it created the container leaves state
		// that delete does not know as a container.
		_ = os.RemoveAll(filepath.Join(e.cfg.StateDir, id))
		removeTaskCgroups(id)
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// kill asks the runtime to kill the container (every process of its
	// PID namespace); the runtime then exits by itself, cleaning up. Before
	// the container exists the runtime cannot, so kill is retried at each
	// tick; killing the runtime itself mid-creation would leak its mounts,
	// so that is the last resort, after killGrace.
	var killed, containerKilled bool
	var killedAt time.Time
	kill := func() {
		if !killed {
			killed, killedAt = true, time.Now()
		}
		if e.runtimeCmd("kill", id, "KILL").Run() == nil {
			containerKilled = true
		} else if time.Since(killedAt) > killGrace {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	overOutput := false
	tick := time.NewTicker(e.cfg.PollInterval)
	defer tick.Stop()
	ctxDone := runCtx.Done()
	var waitErr error
wait:
	for {
		select {
		case waitErr = <-done:
			break wait
		case <-ctxDone:
			ctxDone = nil // closed: once is enough
			kill()
		case <-tick.C:
			switch {
			case killed && !containerKilled:
				kill()
			case killed:
			default:
				if u, err := executor.DirUsage(outDir); err == nil && u.Cost() > limits.MaxOutputBytes {
					overOutput = true
					kill()
				}
			}
		}
	}
	res.Duration = time.Since(start)
	res.Stdout, res.StdoutTruncated = stdout.Bytes(), stdout.Truncated
	res.Stderr, res.StderrTruncated = stderr.Bytes(), stderr.Truncated
	res.ExitCode = cmd.ProcessState.ExitCode()
	if killed {
		res.ExitCode = -1
	}
	usage, sizeErr := executor.DirUsage(outDir)
	res.OutputBytes, res.OutputEntries = usage.Bytes, usage.Entries
	switch {
	case overOutput || usage.Cost() > limits.MaxOutputBytes:
		return res, fmt.Errorf("%w: wrote more than %d bytes under /output (each file and directory counts %d bytes besides its content)", executor.ErrOutputLimit, limits.MaxOutputBytes, executor.EntryCost)
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
	case oomKilled(id, res.ExitCode) || executor.SaysOutOfMemory(res.Stderr):
		return res, fmt.Errorf("%w: killed at the %d MiB limit%s", executor.ErrMemoryLimit, limits.MemoryBytes>>20, executor.LastLine(res.Stderr))
	case executor.SaysNoSpace(res.Stderr):
		return res, fmt.Errorf("%w: the task filled its scratch space (/tmp holds %d MiB; write results to /output)%s",
			executor.ErrDiskLimit, e.cfg.TmpBytes>>20, executor.LastLine(res.Stderr))
	default:
		return res, fmt.Errorf("%w: exit code %d%s", executor.ErrExit, res.ExitCode, executor.LastLine(res.Stderr))
	}
}

// cgroupsPath puts the container's cgroup one level under a cgroup of the
// task's own: the runtime removes the container's when it exits, and the
// parent keeps the memory events (hierarchical) that tell an OOM kill.
func cgroupsPath(id string) string { return "/vft-oci/" + id + "/ctr" }

// taskCgroupDirs are the task's parent cgroups, v2 first, then the v1
// memory hierarchy, then every other v1 hierarchy the runtime may use.
func taskCgroupDirs(id string) []string {
	dirs := []string{filepath.Join("/sys/fs/cgroup/vft-oci", id), filepath.Join("/sys/fs/cgroup/memory/vft-oci", id)}
	more, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*/vft-oci", id))
	return append(dirs, more...)
}

// oomKilled tells whether the kernel's OOM killer killed a process of the
// task. On cgroup v2 the parent cgroup's memory.events counts the
// container's OOM kills (events are hierarchical there). cgroup v1 does not
// propagate them and the runtime removes the container's cgroup as it
// exits, so there a SIGKILL that the executor did not send (exit 137) is
// taken for one.
func oomKilled(id string, exitCode int) bool {
	if b, err := os.ReadFile(filepath.Join(taskCgroupDirs(id)[0], "memory.events")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok {
				return strings.TrimSpace(n) != "0"
			}
		}
	}
	return exitCode == 137
}

// removeTaskCgroups removes the task's parent cgroups, once the runtime
// has removed the container's.
func removeTaskCgroups(id string) {
	dirs := taskCgroupDirs(id)
	// The container's own first, in case a killed runtime left it.
	for _, dir := range slices.Clone(dirs) {
		dirs = append([]string{filepath.Join(dir, "ctr")}, dirs...)
	}
	for _, dir := range dirs {
		// A killed task's processes may take a moment to leave (EBUSY).
		for try := 0; try < 50; try++ {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// inputSkeleton creates, under dir, an empty mount point for each input
// (a directory or an empty file), so that the runtime never has to create
// one in the read-only /input. With an input at /input itself the mount
// points must already exist in it.
func inputSkeleton(dir string, inputs []executor.Mount) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("%w: bundle: %v", ErrUnavailable, err)
	}
	var base string
	for _, m := range inputs {
		if m.Guest == "." {
			base = m.Host
		}
	}
	for _, m := range inputs {
		if m.Guest == "." {
			continue
		}
		st, err := os.Stat(m.Host)
		if err != nil {
			return fmt.Errorf("%w: input %q: %v", executor.ErrBadMount, m.Host, err)
		}
		if base != "" {
			pst, err := os.Lstat(filepath.Join(base, filepath.FromSlash(m.Guest)))
			if err != nil || pst.IsDir() != st.IsDir() {
				return fmt.Errorf("%w: input %q at /input/%s: the input mounted at /input itself (%s) must already hold a %s there",
					executor.ErrBadMount, m.Host, m.Guest, base, map[bool]string{true: "directory", false: "file"}[st.IsDir()])
			}
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(m.Guest))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("%w: input %q: %v", executor.ErrBadMount, m.Guest, err)
		}
		if st.IsDir() {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: input %q: %v", executor.ErrBadMount, m.Guest, err)
		}
	}
	return nil
}
