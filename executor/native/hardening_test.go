package native

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/executor"
)

// Issue #13, finding 10: the native sandbox had no seccomp profile, let
// tasks nest user namespaces, ran without cgroups with no process cap, and
// its /tmp (and /work, on the repo's disk) had no size bound.

func hardenedExecutor(t *testing.T, cfg Config) *Executor {
	t.Helper()
	cfg.PollInterval = 20 * time.Millisecond
	if cfg.Limits.Timeout == 0 {
		cfg.Limits.Timeout = 20 * time.Second
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestNoNestedNamespaces(t *testing.T) {
	e := newExecutor(t)
	bin := filepath.Join(t.TempDir(), "syscalls")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/syscalls")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build syscalls: %v\n%s", err, out)
	}
	res, err := e.Run(context.Background(), executor.Task{ModulePath: bin, OutputDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, res.Stderr)
	}
	for _, call := range []string{"clone(CLONE_NEWUSER)", "add_key", "io_uring_setup"} {
		if want := call + ": operation not permitted"; !strings.Contains(string(res.Stdout), want) {
			t.Errorf("the sandbox let the task call %s:\n%s", call, res.Stdout)
		}
	}
	// util-linux's unshare calls unshare(2).
	res, err = e.Run(context.Background(), executor.Task{Args: []string{"unshare", "-U", "true"}, OutputDir: t.TempDir()})
	if !errors.Is(err, executor.ErrExit) {
		t.Fatalf("unshare -U in the sandbox: %v, want ErrExit\n%s", err, res.Stderr)
	}
}

func TestScratchSpaceBounded(t *testing.T) {
	e := hardenedExecutor(t, Config{AllowWithoutCgroups: true, TmpBytes: 4 << 20, WorkBytes: 4 << 20})
	for _, dir := range []string{"/tmp", "/work"} {
		t.Run(dir, func(t *testing.T) {
			res, err := e.Run(context.Background(), executor.Task{
				Args: []string{"sh", "-c", "head -c 8000000 /dev/zero > " + dir + "/fill"}, OutputDir: t.TempDir()})
			if !errors.Is(err, executor.ErrDiskLimit) || !strings.Contains(err.Error(), "/tmp holds 4 MiB, /work 4 MiB") {
				t.Fatalf("Run = %v, want ErrDiskLimit naming the bounds\n%s", err, res.Stderr)
			}
		})
	}
	// Within the bound, scratch space works.
	if res, err := e.Run(context.Background(), executor.Task{
		Args: []string{"sh", "-c", "head -c 1000000 /dev/zero > /tmp/a && head -c 1000000 /dev/zero > /work/b"}, OutputDir: t.TempDir()}); err != nil {
		t.Fatalf("Run: %v\n%s", err, res.Stderr)
	}
}

func TestRefusedWithoutCgroups(t *testing.T) {
	e := hardenedExecutor(t, Config{NoCgroups: true})
	_, err := e.Run(context.Background(), executor.Task{Args: []string{"true"}, OutputDir: t.TempDir()})
	if !errors.Is(err, ErrNoCgroups) || !strings.Contains(err.Error(), "executor.native.allow_without_cgroups") {
		t.Fatalf("Run = %v, want ErrNoCgroups naming the opt-in key", err)
	}
	if err := e.Check(context.Background()); !errors.Is(err, ErrNoCgroups) {
		t.Fatalf("Check = %v, want ErrNoCgroups", err)
	}
	opted := hardenedExecutor(t, Config{NoCgroups: true, AllowWithoutCgroups: true})
	if res, err := opted.Run(context.Background(), executor.Task{Args: []string{"true"}, OutputDir: t.TempDir()}); err != nil {
		t.Fatalf("opted in: %v\n%s", err, res.Stderr)
	}
}

// TestForkBombWithoutCgroups runs a task that starts processes without end
// on an executor without cgroups: the process limit must stop it, and none
// of its processes may survive.
func TestForkBombWithoutCgroups(t *testing.T) {
	e := hardenedExecutor(t, Config{NoCgroups: true, AllowWithoutCgroups: true, MaxProcesses: 64,
		Limits: executor.Limits{Timeout: 5 * time.Second}})
	marker := "4321.8765"
	res, err := e.Run(context.Background(), executor.Task{
		Args: []string{"sh", "-c", "while :; do sleep " + marker + " & done"}, OutputDir: t.TempDir()})
	if !errors.Is(err, executor.ErrProcessLimit) && !errors.Is(err, executor.ErrExit) {
		// ErrExit: RLIMIT_NPROC made fork fail and the shell gave up
		// (a daemon not run as root); ErrProcessLimit: the watchdog.
		t.Fatalf("Run = %v, want the process limit to stop it\n%s", err, res.Stderr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for processesWith(marker) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d processes of the fork bomb survived", processesWith(marker))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Issue #13, finding 5: empty files and directories cost nothing against the
// output limit, and a FIFO left in /output blocks the node's import of it.
func TestOutputEntriesAndOddFiles(t *testing.T) {
	e := newExecutor(t)
	tests := []struct {
		name    string
		script  string
		wantErr error
		wantMsg string
	}{
		{"many empty files", "i=0; while [ $i -lt 3000 ]; do : > /output/f$i; i=$((i+1)); done",
			executor.ErrOutputLimit, "each file and directory counts"},
		{"fifo", "mkfifo /output/pipe", executor.ErrBadMount, "a FIFO at /output/pipe"},
		{"symlink", "ln -s /etc/passwd /output/link", executor.ErrBadMount, "a symbolic link at /output/link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.Run(context.Background(), executor.Task{Args: []string{"sh", "-c", tt.script},
				OutputDir: t.TempDir(), Limits: executor.Limits{MaxOutputBytes: 1 << 20}})
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Run = %v, want %v mentioning %q\n%s", err, tt.wantErr, tt.wantMsg, res.Stderr)
			}
		})
	}
}
