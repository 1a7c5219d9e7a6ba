package executor

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// CleanGuestPath validates a Mount.Guest path and returns it in canonical
// form: slash-separated, relative to /input, "." for /input itself. Absolute
// paths and any ".." element are rejected with ErrBadMount, even when they
// would resolve back inside /input: a path that needs ".." is a mistake.
func CleanGuestPath(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, `\`) || filepath.IsAbs(p) {
		return "", fmt.Errorf("%w: input path %q must be relative to /input", ErrBadMount, p)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", fmt.Errorf("%w: input path %q must not contain \"..\"", ErrBadMount, p)
		}
	}
	return path.Clean(p), nil
}

// CheckMounts validates every mount: the guest path (CleanGuestPath), that
// the host path exists, that "." is a directory, that no two mounts claim the
// same guest path, and that no host tree contains anything but regular files
// and directories (a symbolic link could point the task at any file of the
// host; a FIFO or a device could block it or expose the host). It returns the mounts with
// cleaned guest paths and absolute host paths.
func CheckMounts(mounts []Mount) ([]Mount, error) {
	out := make([]Mount, 0, len(mounts))
	seen := make(map[string]string, len(mounts))
	for _, m := range mounts {
		guest, err := CleanGuestPath(m.Guest)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[guest]; dup {
			return nil, fmt.Errorf("%w: %s and %s are both mounted at /input/%s", ErrBadMount, prev, m.Host, guest)
		}
		host, err := filepath.Abs(m.Host)
		if err != nil {
			return nil, fmt.Errorf("%w: input %q: %v", ErrBadMount, m.Host, err)
		}
		st, err := os.Lstat(host)
		if err != nil {
			return nil, fmt.Errorf("%w: input %q: %v", ErrBadMount, m.Host, err)
		}
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			return nil, fmt.Errorf("%w: input %q is a symbolic link; mount its target instead", ErrBadMount, m.Host)
		case st.IsDir():
			if err := checkPlainTree(host); err != nil {
				return nil, err
			}
		case st.Mode().IsRegular():
			if guest == "." {
				return nil, fmt.Errorf("%w: input file %q needs a file name under /input", ErrBadMount, m.Host)
			}
		default:
			return nil, fmt.Errorf("%w: input %q is neither a file nor a directory", ErrBadMount, m.Host)
		}
		seen[guest] = m.Host
		out = append(out, Mount{Host: host, Guest: guest})
	}
	return out, nil
}

func checkPlainTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%w: input %q: %v", ErrBadMount, p, err)
		}
		// A link could point the task at any host file; a FIFO would block
		// its reader (past the timeout: a read in the host is not
		// interruptible); a device could expose the host's hardware.
		if t := d.Type(); t&fs.ModeSymlink != 0 || !(t.IsRegular() || t.IsDir()) {
			return fmt.Errorf("%w: input %q contains %s (%s); inputs must be plain files and directories", ErrBadMount, root, describeMode(t), p)
		}
		return nil
	})
}

// PrepareOutputDir creates dir if needed and checks that it is an empty
// directory, so that everything in it after the run was written by the task.
func PrepareOutputDir(dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("%w: no output directory given", ErrBadMount)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%w: output %q: %v", ErrBadMount, dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("%w: output %q: %v", ErrBadMount, dir, err)
	}
	st, err := os.Lstat(abs)
	if err != nil || !st.IsDir() {
		return "", fmt.Errorf("%w: output %q is not a directory", ErrBadMount, dir)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return "", fmt.Errorf("%w: output %q: %v", ErrBadMount, dir, err)
	}
	if len(entries) > 0 {
		return "", fmt.Errorf("%w: output directory %q is not empty", ErrBadMount, dir)
	}
	return abs, nil
}

// EntryCost is what each file or directory under /output costs against
// Limits.MaxOutputBytes besides its bytes: the disk, the result's DAG and
// every verifier pay for an entry even when it is empty, so a million empty
// files are not free.
const EntryCost = 1 << 10

// Usage is what a directory tree holds: the bytes of its regular files and
// its entries (files, directories and anything else, the root not counted).
type Usage struct {
	Bytes   int64
	Entries int64
}

// Cost is what the tree costs against Limits.MaxOutputBytes.
func (u Usage) Cost() int64 { return u.Bytes + u.Entries*EntryCost }

// DirUsage measures the tree under dir in one walk.
func DirUsage(dir string) (Usage, error) {
	var u Usage
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			u.Entries++
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			u.Bytes += info.Size()
		}
		return nil
	})
	return u, err
}

// CheckPlainOutput refuses an output tree that holds anything but regular
// files and directories: the node imports it as the job's result, and would
// block on a FIFO, and a symbolic link would be handed to the submitter as
// is (a WASM task cannot make either).
func CheckPlainOutput(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%w: output %q: %v", ErrBadMount, p, err)
		}
		if t := d.Type(); !(t.IsRegular() || t.IsDir()) {
			rel, _ := filepath.Rel(dir, p)
			return fmt.Errorf("%w: the task left %s at /output/%s; results must be plain files and directories", ErrBadMount, describeMode(t), filepath.ToSlash(rel))
		}
		return nil
	})
}
