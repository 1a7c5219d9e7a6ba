package oci

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vft-network/vft/executor"
)

// The stage: in a user namespace the runtime resolves every mount source
// as the container's root, a host id that cannot search the daemon's 0700
// directories (the repo, the rootfs cache, the job's work directory). So
// for each task the daemon mounts the rootfs, the inputs and the output
// under a task directory of the stage root, which every id may search
// (0711) but no one else may list, and hands the runtime those paths. The
// rootfs is an overlay whose upper layer is the task's own: the mount
// points the runtime creates (a GPU library's path, say) land there, not
// in the cached rootfs that every task of the image shares. The stage
// root is a private mount, so nothing mounted in it propagates to other
// mount namespaces; a task's mounts go when it ends, and at the next start
// after a crash.

// prepareStage readies cfg's stage directory, emptied of what a crashed
// run left.
func prepareStage(cfg *Config) error {
	if cfg.StageDir == "" {
		sum := sha256.Sum256([]byte(cfg.CacheDir))
		cfg.StageDir = filepath.Join(DefaultStageRoot, hex.EncodeToString(sum[:6]))
	}
	if err := prepareStageRoot(filepath.Dir(cfg.StageDir)); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StageDir, stageRootMode); err != nil {
		return fmt.Errorf("stage directory: %w", err)
	}
	if err := os.Chmod(cfg.StageDir, stageRootMode); err != nil {
		return fmt.Errorf("stage directory: %w", err)
	}
	return cleanStage(cfg.StageDir)
}

// DefaultStageRoot holds the executors' stage directories: every id may
// search /run, and most systems empty it at boot.
const DefaultStageRoot = "/run/vft-oci-stage"

// stageRootMode lets the container's root reach the mount sources.
const stageRootMode = 0o711

var stageRootOnce sync.Map // stage root -> error of its preparation

// prepareStageRoot creates dir (0711 down from its first missing parent)
// and makes it a private mount. Every directory above it must be
// searchable by others (/run is).
func prepareStageRoot(dir string) error {
	if v, ok := stageRootOnce.Load(dir); ok {
		err, _ := v.(error)
		return err
	}
	err := prepareStageRootOnce(dir)
	stageRootOnce.Store(dir, err)
	return err
}

func prepareStageRootOnce(dir string) error {
	if err := os.MkdirAll(dir, stageRootMode); err != nil {
		return fmt.Errorf("stage directory: %w", err)
	}
	if err := os.Chmod(dir, stageRootMode); err != nil {
		return fmt.Errorf("stage directory: %w", err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stage directory: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("stage directory %s: %s (mode %o) is not searchable by others, so a container's root could not reach its files; chmod o+x %s or choose another executor.oci stage directory", dir, p, st.Mode().Perm(), p)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	mounts, err := mountsUnder(dir, true)
	if err != nil {
		return err
	}
	if !slices.Contains(mounts, dir) {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("stage directory %s: bind mount: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("stage directory %s: make it a private mount: %w", dir, err)
	}
	return nil
}

// cleanStage unmounts what a crashed daemon left mounted in its stage
// (dir) and removes the task directories, or says why it cannot.
func cleanStage(dir string) error {
	if err := unmountUnder(dir); err != nil {
		return err
	}
	list, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range list {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("stage: %w", err)
		}
	}
	return nil
}

// unmountUnder detaches every mount below dir (not dir itself), deepest
// first, and checks that none is left: only then may the caller remove
// what is under dir without reaching into a mount's source.
func unmountUnder(dir string) error {
	mounts, err := mountsUnder(dir, false)
	if err != nil {
		return err
	}
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("stage: unmount %s: %w", m, err)
		}
	}
	if left, err := mountsUnder(dir, false); err != nil || len(left) > 0 {
		return fmt.Errorf("stage: still mounted under %s: %v %v", dir, left, err)
	}
	return nil
}

// mountsUnder lists the mount points at or (with self false: only) below
// dir, from /proc/self/mountinfo.
func mountsUnder(dir string, self bool) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("mount table: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := executor.UnescapeMountinfo(fields[4])
		if (self && mp == dir) || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, sc.Err()
}

// taskStage is one task's directory in the stage root.
type taskStage struct {
	dir string
}

func newTaskStage(root, id string) (*taskStage, error) {
	dir := filepath.Join(root, id)
	if err := os.Mkdir(dir, stageRootMode); err != nil {
		return nil, fmt.Errorf("%w: stage: %v", ErrUnavailable, err)
	}
	return &taskStage{dir: dir}, nil
}

// bind mounts src at name in the stage (read-only unless rw) and returns
// the path the runtime is to use.
func (s *taskStage) bind(src, name string, rw bool) (string, error) {
	st, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(s.dir, name)
	if st.IsDir() {
		err = os.Mkdir(dst, 0o755)
	} else {
		err = os.WriteFile(dst, nil, 0o644)
	}
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", name, err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("stage: bind %s: %w", src, err)
	}
	if !rw {
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return "", fmt.Errorf("stage: make %s read-only: %w", name, err)
		}
	}
	return dst, nil
}

// overlay mounts a copy-on-write view of lower at name in the stage: reads
// come from lower, writes go to an upper directory of the task's own,
// owned by owner (-1: the daemon's user).
func (s *taskStage) overlay(lower, name string, owner int) (string, error) {
	// The option string separates with ',' and ':' and escapes with '\'.
	if strings.ContainsAny(lower+s.dir, ",:\\") {
		return "", fmt.Errorf("stage: the path %s or %s holds ',', ':' or '\\', which an overlay mount cannot name; move the repo", lower, s.dir)
	}
	upper, work, dst := filepath.Join(s.dir, name+".upper"), filepath.Join(s.dir, name+".work"), filepath.Join(s.dir, name)
	for _, d := range []string{upper, work, dst} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", fmt.Errorf("stage %s: %w", name, err)
		}
	}
	if owner >= 0 {
		if err := os.Chown(upper, owner, owner); err != nil {
			return "", fmt.Errorf("stage %s: %w", name, err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", dst, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return "", fmt.Errorf("stage: overlay on %s: %w", lower, err)
	}
	return dst, nil
}

// Close unmounts everything in the task's stage and removes it; a mount
// that will not go keeps the directory (and what it holds) in place.
func (s *taskStage) Close() error {
	if err := unmountUnder(s.dir); err != nil {
		return err
	}
	return os.RemoveAll(s.dir)
}
