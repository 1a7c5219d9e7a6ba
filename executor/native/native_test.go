package native

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/executor"
)

// newExecutor returns an executor. A host without bubblewrap, or where it
// cannot create namespaces, fails the test rather than hiding it: CI
// installs bubblewrap (`apt-get install bubblewrap`).
func newExecutor(t *testing.T) *Executor {
	t.Helper()
	e, err := New(Config{PollInterval: 20 * time.Millisecond, Limits: executor.Limits{Timeout: 20 * time.Second}, AllowWithoutCgroups: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if err := e.Check(context.Background()); err != nil {
		t.Fatalf("bubblewrap cannot sandbox on this host: %v (install it: apt-get install bubblewrap)", err)
	}
	return e
}

func TestSandbox(t *testing.T) {
	e := newExecutor(t)
	input := t.TempDir()
	if err := os.WriteFile(filepath.Join(input, "a.txt"), []byte("from input\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		script     string
		env        map[string]string
		limits     executor.Limits
		wantErr    error
		wantStdout string
		wantFile   string
		exact      bool
	}{
		{name: "reads input, writes output", script: "cat /input/a.txt; cp /input/a.txt /output/copy.txt", wantStdout: "from input", wantFile: "copy.txt"},
		{name: "work dir is private and writable", script: "echo x > /work/scratch && pwd", wantStdout: "/work"},
		{name: "no network but loopback", script: "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\\n' ,", wantStdout: "lo,", exact: true},
		{name: "memory limit", script: "awk 'BEGIN { s = \"x\"; while (1) s = s s }'", limits: executor.Limits{MemoryBytes: 64 << 20}, wantErr: executor.ErrMemoryLimit},
		{name: "system is read-only", script: "touch /usr/x", wantErr: executor.ErrExit},
		{name: "input is read-only", script: "echo y > /input/a.txt", wantErr: executor.ErrExit},
		{name: "host files are not visible", script: "cat /etc/passwd", wantErr: executor.ErrExit},
		{name: "only the task's environment", script: "env | sort", env: map[string]string{"A": "1"}, wantStdout: "A=1\nCUDA_VISIBLE_DEVICES=\nHOME=/work\nPATH=/usr/local/bin:/usr/bin:/bin\nPWD=/work\n"},
		{name: "exit code", script: "echo bye >&2; exit 3", wantErr: executor.ErrExit},
		{name: "output limit", script: "head -c 5000000 /dev/zero > /output/big; sleep 5", limits: executor.Limits{MaxOutputBytes: 1 << 20}, wantErr: executor.ErrOutputLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			res, err := e.Run(context.Background(), executor.Task{Args: []string{"sh", "-c", tt.script}, Env: tt.env,
				Inputs: []executor.Mount{{Host: input}}, OutputDir: out, Limits: tt.limits})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want %v\nstdout: %s\nstderr: %s", err, tt.wantErr, res.Stdout, res.Stderr)
			}
			if tt.exact && string(res.Stdout) != tt.wantStdout {
				t.Errorf("stdout %q, want %q", res.Stdout, tt.wantStdout)
			}
			if !strings.Contains(string(res.Stdout), tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", res.Stdout, tt.wantStdout)
			}
			if tt.wantFile != "" {
				if _, err := os.Stat(filepath.Join(out, tt.wantFile)); err != nil {
					t.Errorf("output file: %v", err)
				}
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(input, "a.txt")); string(b) != "from input\n" {
		t.Errorf("input changed to %q", b)
	}
}

// TestTimeoutKillsTree starts background processes and expects all of them
// gone after the timeout.
func TestTimeoutKillsTree(t *testing.T) {
	e := newExecutor(t)
	marker := "1234.5678"
	start := time.Now()
	_, err := e.Run(context.Background(), executor.Task{
		Args:      []string{"sh", "-c", "sleep " + marker + " & sleep " + marker + " & (sleep " + marker + " &) ; wait"},
		OutputDir: t.TempDir(), Limits: executor.Limits{Timeout: 300 * time.Millisecond}})
	if !errors.Is(err, executor.ErrTimeout) {
		t.Fatalf("Run = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to stop", d)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		left := processesWith(marker)
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sandboxed processes survived the timeout", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func processesWith(arg string) int {
	n := 0
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range dirs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), arg) {
			n++
		}
	}
	return n
}

func TestBadTasks(t *testing.T) {
	e := newExecutor(t)
	// A symlink to a host file would bind that file into the sandbox.
	progLink := filepath.Join(t.TempDir(), "prog")
	if err := os.Symlink("/bin/true", progLink); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		task    executor.Task
		wantErr error
	}{
		{"no command", executor.Task{}, executor.ErrBadTask},
		{"module bytes", executor.Task{Module: []byte("\x00asm")}, executor.ErrBadTask},
		{"dotdot mount", executor.Task{Args: []string{"true"}, Inputs: []executor.Mount{{Host: t.TempDir(), Guest: "../x"}}}, executor.ErrBadMount},
		{"missing program", executor.Task{ModulePath: "/nonexistent/prog"}, executor.ErrBadTask},
		{"program is a symlink", executor.Task{ModulePath: progLink}, executor.ErrBadTask},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.task.OutputDir = filepath.Join(t.TempDir(), "out")
			if _, err := e.Run(context.Background(), tt.task); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

type fakeGPUs map[string]string

func (f fakeGPUs) DeviceNode(uuid string) (string, error) {
	if node, ok := f[uuid]; ok {
		return node, nil
	}
	return "", errors.New("no such GPU")
}

// TestGPUs gives a task one of two (fake) GPUs and expects to see only its
// device node and its UUID.
func TestGPUs(t *testing.T) {
	e := newExecutor(t)
	dir := t.TempDir()
	gpus := fakeGPUs{}
	for i, uuid := range []string{"GPU-aaaa", "GPU-bbbb"} {
		node := filepath.Join(dir, fmt.Sprintf("nvidia%d", i))
		if err := os.WriteFile(node, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		gpus[uuid] = node
	}
	e.cfg.GPUs = gpus
	res, err := e.Run(context.Background(), executor.Task{GPUs: []string{"GPU-bbbb"},
		Args: []string{"sh", "-c", "ls /dev | grep nvidia; echo $CUDA_VISIBLE_DEVICES"}, OutputDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, res.Stderr)
	}
	if got, want := string(res.Stdout), "nvidia1\nGPU-bbbb\n"; got != want {
		t.Fatalf("sandbox sees %q, want %q", got, want)
	}
	res, err = e.Run(context.Background(), executor.Task{GPUs: []string{"GPU-aaaa"}, Env: map[string]string{"CUDA_VISIBLE_DEVICES": "GPU-bbbb"},
		Args: []string{"sh", "-c", "echo $CUDA_VISIBLE_DEVICES"}, OutputDir: t.TempDir()})
	if err != nil || string(res.Stdout) != "GPU-aaaa\n" {
		t.Fatalf("task overrode its GPU list: %q, %v", res.Stdout, err)
	}
	if _, err := e.Run(context.Background(), executor.Task{GPUs: []string{"GPU-cccc"}, Args: []string{"true"}, OutputDir: t.TempDir()}); !errors.Is(err, executor.ErrBadTask) {
		t.Fatalf("unknown GPU: %v, want ErrBadTask", err)
	}
}

// Started marks the start of the task's time limit, once.
func TestStartedOnce(t *testing.T) {
	e := newExecutor(t)
	started := 0
	task := executor.Task{Args: []string{"true"}, OutputDir: filepath.Join(t.TempDir(), "out"), Started: func() { started++ }}
	if _, err := e.Run(context.Background(), task); err != nil || started != 1 {
		t.Fatalf("Run: %v; Started called %d times, want 1", err, started)
	}
}
