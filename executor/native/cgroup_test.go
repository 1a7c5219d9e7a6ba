package native

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/executor"
)

// cgroupExecutor returns an executor that must have cgroup limits: CI runs
// as root on a host with cgroups, and a test that quietly ran without them
// would prove nothing.
func cgroupExecutor(t *testing.T) *Executor {
	t.Helper()
	e := newExecutor(t)
	if st := e.Cgroups(); st.Version == 0 {
		t.Fatalf("no cgroup limits on this host: %s (%s)", st.Reason, st.Fix)
	}
	t.Logf("cgroup v%d under %s", e.Cgroups().Version, e.Cgroups().Dir)
	return e
}

// buildReserve builds testdata/reserve, a program that reserves 16 GiB of
// address space like CUDA does and then touches some MiB.
func buildReserve(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "reserve")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/reserve")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build reserve: %v\n%s", err, out)
	}
	return bin
}

func TestCgroupMemory(t *testing.T) {
	e := cgroupExecutor(t)
	reserve := buildReserve(t)
	tests := []struct {
		name     string
		touchMiB int
		wantErr  error
	}{
		// An address-space limit (prlimit) would refuse the 16 GiB
		// reservation; the cgroup counts only memory in use.
		{name: "reservation far past the limit runs", touchMiB: 40},
		{name: "use past the limit is killed", touchMiB: 200, wantErr: executor.ErrMemoryLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.Run(context.Background(), executor.Task{ModulePath: reserve, Args: []string{strconv.Itoa(tt.touchMiB)},
				OutputDir: t.TempDir(), Limits: executor.Limits{MemoryBytes: 128 << 20}})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want %v\nstdout: %s\nstderr: %s", err, tt.wantErr, res.Stdout, res.Stderr)
			}
			if tt.wantErr == nil && res.PeakMemoryBytes < uint64(tt.touchMiB)<<20 {
				t.Errorf("peak memory %d bytes, below the %d MiB the task touched", res.PeakMemoryBytes, tt.touchMiB)
			}
		})
	}
}

// TestCgroupCPU runs two busy loops for a second under a one-core cap: the
// kernel's CPU accounting for the task must stay near one core per second of
// wall time (without the cap, it is two on a two-core host).
func TestCgroupCPU(t *testing.T) {
	e := cgroupExecutor(t)
	res, err := e.Run(context.Background(), executor.Task{
		Args:      []string{"sh", "-c", "end=$(($(date +%s) + 2)); spin() { while [ $(date +%s) -lt $end ]; do :; done; }; spin & spin; wait"},
		OutputDir: t.TempDir(), Limits: executor.Limits{CPUCores: 1}})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, res.Stderr)
	}
	if res.CPUTime <= 0 {
		t.Fatalf("no CPU time counted (%v)", res.CPUTime)
	}
	if ratio := float64(res.CPUTime) / float64(res.Duration); ratio > 1.25 {
		t.Fatalf("used %v of CPU in %v of wall time (%.2f cores) under a 1-core cap", res.CPUTime, res.Duration, ratio)
	}
}

// TestCgroupProcesses: a fork bomb stops at the process cap instead of
// taking the host down.
func TestCgroupProcesses(t *testing.T) {
	e := cgroupExecutor(t)
	e.cfg.MaxProcesses = 20
	res, err := e.Run(context.Background(), executor.Task{
		Args:      []string{"sh", "-c", "for i in $(seq 50); do sleep 30 & done; wait"},
		OutputDir: t.TempDir(), Limits: executor.Limits{Timeout: 10 * time.Second}})
	if !errors.Is(err, executor.ErrExit) && !errors.Is(err, executor.ErrTimeout) {
		t.Fatalf("Run = %v, want the fork to fail", err)
	}
	if !strings.Contains(strings.ToLower(string(res.Stderr)), "fork") && !strings.Contains(strings.ToLower(string(res.Stderr)), "resource temporarily unavailable") {
		t.Fatalf("stderr does not show a refused fork: %s", res.Stderr)
	}
}

// TestCgroupsRemoved: no task cgroup outlives its task.
func TestCgroupsRemoved(t *testing.T) {
	e := cgroupExecutor(t)
	if _, err := e.Run(context.Background(), executor.Task{Args: []string{"sh", "-c", "sleep 1000 & sleep 1000"},
		OutputDir: t.TempDir(), Limits: executor.Limits{Timeout: 200 * time.Millisecond}}); !errors.Is(err, executor.ErrTimeout) {
		t.Fatalf("Run = %v, want a timeout", err)
	}
	for _, dir := range e.cg.parents() {
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			if strings.HasPrefix(en.Name(), "task-"+strconv.Itoa(os.Getpid())+"-") {
				t.Errorf("task cgroup %s left behind", filepath.Join(dir, en.Name()))
			}
		}
	}
}

func TestParseCgroups(t *testing.T) {
	const mountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /mnt/with\040space rw - cgroup cgroup rw,pids`
	mounts := parseCgroupMounts([]byte(mountinfo))
	want := map[string]cgroupMount{
		"cpu":     {root: "/", mountPoint: "/sys/fs/cgroup/cpu,cpuacct"},
		"cpuacct": {root: "/", mountPoint: "/sys/fs/cgroup/cpu,cpuacct"},
		"memory":  {root: "/docker/abc", mountPoint: "/sys/fs/cgroup/memory"},
		"cgroup2": {root: "/", mountPoint: "/sys/fs/cgroup/unified"},
		"pids":    {root: "/", mountPoint: "/mnt/with space"},
	}
	for k, w := range want {
		if mounts[k] != w {
			t.Errorf("mount of %s = %+v, want %+v", k, mounts[k], w)
		}
	}
	member := parseProcCgroup([]byte("4:memory:/docker/abc/x\n1:cpu,cpuacct:/\n0::/user.slice\n"))
	tests := []struct {
		ctrl, wantDir string
		wantErr       bool
	}{
		{ctrl: "memory", wantDir: "/sys/fs/cgroup/memory/x"},
		{ctrl: "cpuacct", wantDir: "/sys/fs/cgroup/cpu,cpuacct"},
		{ctrl: "cgroup2", wantDir: "/sys/fs/cgroup/unified/user.slice"},
	}
	for _, tt := range tests {
		key := tt.ctrl
		if key == "cgroup2" {
			key = ""
		}
		dir, err := mounts[tt.ctrl].dirOf(member[key])
		if err != nil || dir != tt.wantDir {
			t.Errorf("dir of %s = %q, %v; want %q", tt.ctrl, dir, err, tt.wantDir)
		}
	}
	if _, err := (cgroupMount{root: "/docker/abc", mountPoint: "/m"}).dirOf("/other"); err == nil {
		t.Error("a cgroup outside the mounted root was accepted")
	}
}

// TestDelegateV2 runs the v2 delegation on a directory laid out like a
// service's cgroup (this host has no v2 controllers to do it for real).
func TestDelegateV2(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name    string
		procs   string
		wantErr string
	}{
		{name: "daemon alone moves into its leaf", procs: self + "\n"},
		{name: "other processes are not moved", procs: self + "\n4242\n", wantErr: "holds other processes (4242)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			// The parent must look like a cgroup, so that dir is not the root.
			write(t, filepath.Join(root, "cgroup.procs"), "")
			dir := filepath.Join(root, "vft.service")
			write(t, filepath.Join(dir, "cgroup.procs"), tt.procs)
			write(t, filepath.Join(dir, "cgroup.controllers"), "cpuset cpu io memory pids")
			write(t, filepath.Join(dir, "cgroup.subtree_control"), "")
			// Mkdir of a real cgroup creates its files; here the test does.
			write(t, filepath.Join(dir, cgroupTasksDir, "cgroup.controllers"), "cpu memory pids")

			tasks, err := delegateV2(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("delegateV2 = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := read(t, filepath.Join(dir, cgroupDaemonLeaf, "cgroup.procs")); got != self {
				t.Errorf("daemon leaf procs = %q, want %q", got, self)
			}
			for _, d := range []string{dir, tasks} {
				if got := read(t, filepath.Join(d, "cgroup.subtree_control")); got != "+memory +cpu +pids" {
					t.Errorf("%s subtree_control = %q", d, got)
				}
			}
			cg := &cgroups{v2: tasks}
			task, err := cg.create(cgroupLimits{memoryBytes: 1 << 30, cpuCores: 2, processes: 64})
			if err != nil {
				t.Fatal(err)
			}
			for file, want := range map[string]string{"memory.max": "1073741824", "memory.swap.max": "0", "cpu.max": "200000 100000", "pids.max": "64"} {
				if got := read(t, filepath.Join(task.v2, file)); got != want {
					t.Errorf("%s = %q, want %q", file, got, want)
				}
			}
		})
	}
}

func write(t *testing.T, file, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
