package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/vft-network/vft/executor"
)

// newTestExecutor needs root (the runtime creates namespaces and cgroups)
// and crun or runc; CI installs both (.ci/run).
func newTestExecutor(t *testing.T) *Executor {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the oci executor needs root")
	}
	if _, err := findRuntime(""); err != nil {
		t.Fatalf("no OCI runtime (.ci/run installs crun and runc): %v", err)
	}
	e, err := New(Config{CacheDir: t.TempDir(), BundleDir: t.TempDir(), CDISpecDirs: []string{t.TempDir()},
		PollInterval: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func shTask(t *testing.T, image, script string) executor.Task {
	return executor.Task{JobID: t.Name(), Image: image, Args: []string{"sh", "-c", script},
		OutputDir: filepath.Join(t.TempDir(), "out"), Limits: executor.Limits{Timeout: time.Minute}}
}

func TestRunBusyboxEndToEnd(t *testing.T) {
	e := newTestExecutor(t)
	image := busyboxImage(t)
	in := t.TempDir()
	if err := os.WriteFile(filepath.Join(in, "a"), []byte("input a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(in, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "dir", "c"), []byte("input c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	task := shTask(t, image, `echo hi > /output/x; cat /input/a > /output/b; cat /input/data/c > /output/c; echo "$FROM_IMAGE $FROM_TASK"; echo oops >&2`)
	task.Inputs = []executor.Mount{{Host: filepath.Join(in, "a"), Guest: "a"}, {Host: filepath.Join(in, "dir"), Guest: "data"}}
	task.Env = map[string]string{"FROM_TASK": "2"}
	res, err := e.Run(context.Background(), task)
	if err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, res.Stderr)
	}
	for name, want := range map[string]string{"x": "hi\n", "b": "input a\n", "c": "input c\n"} {
		if b, err := os.ReadFile(filepath.Join(task.OutputDir, name)); err != nil || string(b) != want {
			t.Errorf("/output/%s = %q, %v; want %q", name, b, err, want)
		}
	}
	if string(res.Stdout) != "1 2\n" || string(res.Stderr) != "oops\n" {
		t.Errorf("stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	if res.ExitCode != 0 || res.OutputEntries != 3 {
		t.Errorf("result %+v", res)
	}

	// The second run of the same image unpacks nothing.
	if _, err := e.Run(context.Background(), shTask(t, image, "true")); err != nil {
		t.Fatal(err)
	}
	if s := e.Cache().Stats(); s.Unpacks != 1 {
		t.Fatalf("cache stats %+v, want one unpack for two runs", s)
	}
}

func TestRunImageEntrypoint(t *testing.T) {
	e := newTestExecutor(t)
	img := imageOf(t, "", busyboxLayer(t))
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Entrypoint = []string{"sh", "-c"}
	cfg.Config.Cmd = []string{"pwd > /output/cwd"}
	cfg.Config.WorkingDir = "/bin"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	task := shTask(t, writeLayout(t, img), "")
	task.Args = nil
	if res, err := e.Run(context.Background(), task); err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, res.Stderr)
	}
	if b, err := os.ReadFile(filepath.Join(task.OutputDir, "cwd")); err != nil || string(b) != "/bin\n" {
		t.Fatalf("the image's entrypoint, command and workdir: /output/cwd = %q, %v", b, err)
	}
}

func TestRunSandbox(t *testing.T) {
	e := newTestExecutor(t)
	image := busyboxImage(t)
	cases := []struct {
		name, script string
		wantErr      error
		check        func(t *testing.T, res executor.Result)
	}{
		{"no network but lo", "cat /proc/net/dev", nil, func(t *testing.T, res executor.Result) {
			for _, line := range strings.Split(string(res.Stdout), "\n")[2:] {
				if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && name != "lo" {
					t.Errorf("interface %s inside the container:\n%s", name, res.Stdout)
				}
			}
		}},
		{"read-only root", "touch /x", executor.ErrExit, func(t *testing.T, res executor.Result) {
			if !strings.Contains(string(res.Stderr), "Read-only file system") {
				t.Errorf("stderr %q", res.Stderr)
			}
		}},
		{"read-only input", "touch /input/y", executor.ErrExit, nil},
		{"writable tmp", "echo ok > /tmp/t && cat /tmp/t", nil, func(t *testing.T, res executor.Result) {
			if string(res.Stdout) != "ok\n" {
				t.Errorf("stdout %q", res.Stdout)
			}
		}},
		{"no capabilities", "grep CapEff /proc/self/status || cat /proc/self/status", nil, func(t *testing.T, res executor.Result) {
			if !strings.Contains(string(res.Stdout), "CapEff:\t0000000000000000") {
				t.Errorf("status: %s", res.Stdout)
			}
		}},
		{"no new namespaces", "unshare -n true", executor.ErrExit, func(t *testing.T, res executor.Result) {
			if !strings.Contains(string(res.Stderr), "Operation not permitted") {
				t.Errorf("stderr %q", res.Stderr)
			}
		}},
		{"exit code", "exit 3", executor.ErrExit, func(t *testing.T, res executor.Result) {
			if res.ExitCode != 3 {
				t.Errorf("exit code %d", res.ExitCode)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Run(context.Background(), shTask(t, image, tc.script))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run: %v, want %v\nstdout: %s\nstderr: %s", err, tc.wantErr, res.Stdout, res.Stderr)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

func TestRunTimeoutKills(t *testing.T) {
	e := newTestExecutor(t)
	task := shTask(t, busyboxImage(t), "sleep 100")
	task.Limits.Timeout = time.Second
	start := time.Now()
	res, err := e.Run(context.Background(), task)
	if !errors.Is(err, executor.ErrTimeout) || res.ExitCode != -1 {
		t.Fatalf("Run: %v (exit %d), want ErrTimeout", err, res.ExitCode)
	}
	if took := time.Since(start); took > 60*time.Second {
		t.Fatalf("took %v to kill a sleep 100", took)
	}
}

func TestRunCancelledKills(t *testing.T) {
	e := newTestExecutor(t)
	task := shTask(t, busyboxImage(t), "touch /output/started; sleep 100")
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once the task is running.
	go func() {
		defer cancel()
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(task.OutputDir, "started")); err == nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	res, err := e.Run(ctx, task)
	if !errors.Is(err, context.Canceled) || res.ExitCode != -1 {
		t.Fatalf("Run: %v (exit %d), want a cancelled run", err, res.ExitCode)
	}
	if entries, _ := os.ReadDir(e.cfg.StateDir); len(entries) > 0 {
		t.Fatalf("container state left behind in %s: %v", e.cfg.StateDir, entries)
	}
	noTaskCgroupsLeft(t)
}

func TestRunMemoryLimit(t *testing.T) {
	e := newTestExecutor(t)
	// dd allocates its whole block before reading into it.
	task := shTask(t, busyboxImage(t), "dd if=/dev/zero of=/dev/null bs=256M count=1")
	task.Limits.MemoryBytes = 64 << 20
	res, err := e.Run(context.Background(), task)
	if !errors.Is(err, executor.ErrMemoryLimit) {
		t.Fatalf("Run: %v, want ErrMemoryLimit\nstderr: %s", err, res.Stderr)
	}
	noTaskCgroupsLeft(t)
}

// noTaskCgroupsLeft fails when a finished task left a cgroup behind.
func noTaskCgroupsLeft(t *testing.T) {
	t.Helper()
	if matches, _ := filepath.Glob("/sys/fs/cgroup/*/vft-oci/vft-task-*"); len(matches) > 0 {
		t.Fatalf("task cgroups left behind: %v", matches)
	}
	if matches, _ := filepath.Glob("/sys/fs/cgroup/vft-oci/vft-task-*"); len(matches) > 0 {
		t.Fatalf("task cgroups left behind: %v", matches)
	}
}

func TestRunSelfKillIsNotMemory(t *testing.T) {
	e := newTestExecutor(t)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		t.Skip("only cgroup v2 tells an OOM kill from another SIGKILL once the container is gone")
	}
	// The inner shell is not PID 1, which ignores signals it does not handle.
	res, err := e.Run(context.Background(), shTask(t, busyboxImage(t), `sh -c 'kill -9 $$'; exit $?`))
	if !errors.Is(err, executor.ErrExit) || errors.Is(err, executor.ErrMemoryLimit) {
		t.Fatalf("Run: %v (exit %d), want ErrExit", err, res.ExitCode)
	}
	noTaskCgroupsLeft(t)
}

func TestRunRefusesBadTasks(t *testing.T) {
	e := newTestExecutor(t)
	image := busyboxImage(t)
	corrupt := writeLayout(t, imageOf(t, "", layerOf(t, file("x", "y"))))
	corruptLayer := corruptFirstLayer(t, corrupt)
	cases := []struct {
		name    string
		task    executor.Task
		want    error
		mention string
	}{
		{"corrupt layer", executor.Task{Image: corrupt, Args: []string{"true"}, OutputDir: t.TempDir()}, ErrBadBlob, corruptLayer},
		{"no image", executor.Task{Args: []string{"true"}, OutputDir: t.TempDir()}, executor.ErrBadTask, "no image"},
		{"not a layout", executor.Task{Image: t.TempDir(), Args: []string{"true"}, OutputDir: t.TempDir()}, ErrNotLayout, "oci-layout"},
		{"GPU without CDI spec", executor.Task{Image: image, Args: []string{"true"}, OutputDir: t.TempDir(), GPUs: []string{"GPU-0000"}},
			ErrNoCDI, "nvidia-ctk cdi generate"},
		{"no command", executor.Task{Image: image, OutputDir: t.TempDir()}, executor.ErrBadTask, "no entrypoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), tc.task)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("Run: %v, want %v mentioning %q", err, tc.want, tc.mention)
			}
		})
	}
}

func TestRunWithCDIGPU(t *testing.T) {
	e := newTestExecutor(t)
	dir, _, _ := testCDISpec(t)
	e.cfg.CDISpecDirs = []string{dir}
	task := shTask(t, busyboxImage(t), "ls -l /dev/nvidia0; cat /usr/lib/x86_64-linux-gnu/libcuda.so.1; echo; echo $NVIDIA_VISIBLE_DEVICES")
	task.GPUs = []string{"GPU-1111"}
	res, err := e.Run(context.Background(), task)
	if err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, res.Stderr)
	}
	out := string(res.Stdout)
	if !strings.HasPrefix(out, "crw") || !strings.Contains(out, "1,   3") || !strings.Contains(out, "stand-in\nvoid\n") {
		t.Fatalf("inside the container:\n%s", out)
	}
}

func TestMissingRuntime(t *testing.T) {
	_, err := New(Config{Runtime: "no-such-crun", CacheDir: t.TempDir()}, nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "install crun: apt-get install crun") {
		t.Fatalf("New: %v", err)
	}
}

func TestDoctorReportsRuntime(t *testing.T) {
	lines := Doctor(context.Background(), "", []string{t.TempDir()})
	if len(lines) < 2 {
		t.Fatalf("Doctor: %+v", lines)
	}
	_, err := findRuntime("")
	if lines[0].Name != CheckRuntime || (lines[0].Severity == executor.SeverityOK) != (err == nil) {
		t.Errorf("runtime line %+v, findRuntime: %v", lines[0], err)
	}
	last := lines[len(lines)-1]
	if last.Name != CheckCDI || last.Severity != executor.SeverityWarn || !strings.Contains(last.Fix, "nvidia-ctk cdi generate") {
		t.Errorf("CDI line %+v", last)
	}
	if bad := Doctor(context.Background(), "no-such-crun", nil)[0]; bad.Severity != executor.SeverityFail || !strings.Contains(bad.Detail, "install crun") {
		t.Errorf("missing runtime line %+v", bad)
	}
}

// corruptFirstLayer flips a byte of the image's first layer blob and
// returns the layer's digest.
func corruptFirstLayer(t *testing.T, dir string) string {
	t.Helper()
	img, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := img.layers[0].Digest
	p := filepath.Join(dir, "blobs", "sha256", d.Hex)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return d.String()
}
