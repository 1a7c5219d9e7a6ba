package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vft-network/vft/executor"
)

// The container's root is host id DefaultHostIDBase, not host root: the
// kernel's uid map says so inside, the image's files (a 0600 one too) are
// its own, and what it writes under /output is owned by that id on the host.
func TestRunInUserNamespace(t *testing.T) {
	e := newTestExecutor(t)
	image := writeLayout(t, imageOf(t, "", busyboxLayer(t), layerOf(t, entry{name: "secret", typ: '0', mode: 0o600, body: []byte("mine\n")})))
	task := shTask(t, image, "cat /proc/self/uid_map /proc/self/gid_map; id -u; cat /secret; echo out > /output/f")
	started := 0
	task.Started = func() { started++ }
	res, err := e.Run(context.Background(), task)
	if err != nil || started != 1 {
		t.Fatalf("Run: %v, Started called %d times\nstderr: %s", err, started, res.Stderr)
	}
	fields := strings.Fields(string(res.Stdout))
	want := strings.Fields(fmt.Sprintf("0 %d %d 0 %d %d 0 mine", DefaultHostIDBase, IDRangeSize, DefaultHostIDBase, IDRangeSize))
	if strings.Join(fields, " ") != strings.Join(want, " ") {
		t.Fatalf("inside the container: %q, want %q", fields, want)
	}
	st, err := os.Stat(filepath.Join(task.OutputDir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != DefaultHostIDBase || sys.Gid != DefaultHostIDBase {
		t.Fatalf("/output/f is owned by %d:%d on the host, want the container's root %d", sys.Uid, sys.Gid, DefaultHostIDBase)
	}
}

// Without a user namespace (executor.oci.user_namespace = false) the
// container's root is the host's, as before.
func TestRunWithoutUserNamespace(t *testing.T) {
	e := newTestExecutor(t)
	e2, err := New(Config{CacheDir: t.TempDir(), BundleDir: t.TempDir(), CDISpecDirs: e.cfg.CDISpecDirs, NoUserNamespace: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	res, err := e2.Run(context.Background(), shTask(t, busyboxImage(t), "cat /proc/self/uid_map"))
	if err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, res.Stderr)
	}
	if f := strings.Fields(string(res.Stdout)); len(f) != 3 || f[0] != "0" || f[1] != "0" {
		t.Fatalf("uid map %q, want the host's (0 0 4294967295)", res.Stdout)
	}
}

// The runtime creates a mount point for each GPU library and device; it
// must land in the task's own overlay layer, never in the rootfs cached for
// every task of the image. (Before the overlay, the cached rootfs of an
// image grew /usr/lib/x86_64-linux-gnu/libcuda.so.1 and /dev files after a
// GPU job.)
func TestMountPointsStayOutOfTheCachedRootfs(t *testing.T) {
	e := newTestExecutor(t)
	dir, _, _ := testCDISpec(t)
	e.cfg.CDISpecDirs = []string{dir}
	task := shTask(t, busyboxImage(t), "cat /usr/lib/x86_64-linux-gnu/libcuda.so.1")
	task.GPUs = []string{"GPU-1111"}
	if res, err := e.Run(context.Background(), task); err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, res.Stderr)
	}
	entries := e.cache.Stats().Entries
	if entries != 1 {
		t.Fatalf("%d cache entries, want 1", entries)
	}
	roots, _ := filepath.Glob(filepath.Join(e.cfg.CacheDir, "*", "rootfs"))
	for _, stray := range []string{"usr/lib/x86_64-linux-gnu/libcuda.so.1", "usr"} {
		if _, err := os.Lstat(filepath.Join(roots[0], stray)); err == nil {
			t.Errorf("the cached rootfs gained /%s from a task's mounts", stray)
		}
	}
}

// A task leaves nothing mounted or staged, and a stage a crashed daemon left
// mounted is unmounted and removed by the next start, without touching what
// was mounted there.
func TestStageCleanedUp(t *testing.T) {
	e := newTestExecutor(t)
	if res, err := e.Run(context.Background(), shTask(t, busyboxImage(t), "true")); err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, res.Stderr)
	}
	if left, err := mountsUnder(e.cfg.StageDir, false); err != nil || len(left) > 0 {
		t.Fatalf("mounts left in the stage after the task: %v %v", left, err)
	}
	if list, _ := os.ReadDir(e.cfg.StageDir); len(list) > 0 {
		t.Fatalf("stage not emptied: %v", list)
	}

	// A crash mid-task: a staged bind of a directory holding a file.
	source := t.TempDir()
	if err := os.WriteFile(filepath.Join(source, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	stage, err := newTaskStage(e.cfg.StageDir, "vft-task-crashed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stage.bind(source, "input-0", false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(filepath.Join(stage.dir, "input-0"), unix.MNT_DETACH) })
	again, err := New(Config{CacheDir: e.cfg.CacheDir, BundleDir: t.TempDir(), CDISpecDirs: e.cfg.CDISpecDirs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if left, err := mountsUnder(e.cfg.StageDir, false); err != nil || len(left) > 0 {
		t.Fatalf("mounts left after a restart: %v %v", left, err)
	}
	if _, err := os.Stat(stage.dir); !os.IsNotExist(err) {
		t.Fatalf("crashed task's stage still there: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(source, "keep")); err != nil || string(b) != "x" {
		t.Fatalf("the staged source lost its file: %q %v", b, err)
	}
}

func TestCheckHostIDBase(t *testing.T) {
	for _, tc := range []struct {
		base uint32
		ok   bool
	}{
		{0, false}, {1000, false}, {IDRangeSize - 1, false}, {IDRangeSize, true},
		{DefaultHostIDBase, true}, {1<<32 - 1 - IDRangeSize, true}, {1<<32 - IDRangeSize, false},
	} {
		if err := CheckHostIDBase(tc.base); (err == nil) != tc.ok {
			t.Errorf("CheckHostIDBase(%d) = %v, want ok %v", tc.base, err, tc.ok)
		}
	}
}

// A rootfs unpacked for another owner (the user namespace switched on or
// off, or another host_id_base) is dropped at start and unpacked again.
func TestCacheDropsOtherOwners(t *testing.T) {
	dir := t.TempDir()
	img := openImage(t, "hello")
	old, err := OpenCache(dir, 1<<20, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, release, _, err := old.Get(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	release()
	owned, err := OpenCache(dir, 1<<20, DefaultHostIDBase, nil)
	if err != nil {
		t.Fatal(err)
	}
	if owned.Has(img.Digest.Hex) {
		t.Fatal("an entry owned by the daemon's user kept for the container's root")
	}
	root, release, hit, err := owned.Get(context.Background(), img)
	if err != nil || hit {
		t.Fatalf("Get: hit %v, %v", hit, err)
	}
	release()
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "data"), &st); err != nil || st.Uid != DefaultHostIDBase {
		t.Fatalf("unpacked file owner %d (%v), want %d", st.Uid, err, DefaultHostIDBase)
	}
	reopened, err := OpenCache(dir, 1<<20, DefaultHostIDBase, nil)
	if err != nil || !reopened.Has(img.Digest.Hex) {
		t.Fatalf("an entry of the same owner was dropped: %v", err)
	}
}

func TestUserNamespaceCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enabled bool
		base    uint32
		want    executor.Severity
		mention string
	}{
		{"on", true, DefaultHostIDBase, executor.SeverityOK, "host ids 1610612736-1610678271"},
		{"off", false, 0, executor.SeverityWarn, "host's root"},
		{"overlapping accounts", true, 1000, executor.SeverityFail, "host id base 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := UserNamespaceCheck(tc.enabled, tc.base)
			if c.Name != CheckUserNS || c.Severity != tc.want || !strings.Contains(c.Detail, tc.mention) {
				t.Fatalf("%+v, want %v mentioning %q", c, tc.want, tc.mention)
			}
		})
	}
}
