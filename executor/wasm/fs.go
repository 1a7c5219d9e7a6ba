package wasm

import (
	"io/fs"
	"sync"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"

	"github.com/vft-network/vft/executor"
)

// noLinkFS refuses to create symbolic and hard links. wazero's WASI layer
// already rejects paths that escape a mount ("../", absolute paths), but it
// passes a symlink target through unchecked, and the host would follow such
// a link (/output/x -> /etc/passwd) on the next open. Inputs are checked for
// links before the run (executor.CheckMounts), so with this wrapper no link
// can exist inside a mount while the task runs.
type noLinkFS struct {
	experimentalsys.FS
}

func (noLinkFS) Symlink(string, string) experimentalsys.Errno { return experimentalsys.EPERM }
func (noLinkFS) Link(string, string) experimentalsys.Errno    { return experimentalsys.EPERM }

// inputFS mounts a host directory read-only.
func inputFS(dir string) experimentalsys.FS {
	return &sysfs.ReadFS{FS: noLinkFS{sysfs.DirFS(dir)}}
}

// outputFS mounts a host directory writable, with writes charged to budget.
type outputFS struct {
	noLinkFS
	budget *outputBudget
}

func newOutputFS(dir string, budget *outputBudget) *outputFS {
	return &outputFS{noLinkFS: noLinkFS{sysfs.DirFS(dir)}, budget: budget}
}

func (o *outputFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	// A new file is an entry of the result even when empty (EntryCost).
	if flag&experimentalsys.O_CREAT != 0 && !o.budget.reserve(executor.EntryCost) {
		return nil, experimentalsys.EIO
	}
	f, errno := o.noLinkFS.OpenFile(path, flag, perm)
	if errno != 0 {
		return nil, errno
	}
	return &budgetFile{File: f, budget: o.budget}, 0
}

func (o *outputFS) Mkdir(path string, perm fs.FileMode) experimentalsys.Errno {
	if !o.budget.reserve(executor.EntryCost) {
		return experimentalsys.EIO
	}
	return o.noLinkFS.Mkdir(path, perm)
}

// budgetFile charges writes against the output budget, so a task that writes
// without end is stopped when it passes the limit rather than filling the disk.
type budgetFile struct {
	experimentalsys.File
	budget *outputBudget
}

func (f *budgetFile) Write(buf []byte) (int, experimentalsys.Errno) {
	if !f.budget.reserve(int64(len(buf))) {
		return 0, experimentalsys.EIO
	}
	return f.File.Write(buf)
}

func (f *budgetFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if !f.budget.reserve(int64(len(buf))) {
		return 0, experimentalsys.EIO
	}
	return f.File.Pwrite(buf, off)
}

func (f *budgetFile) Truncate(size int64) experimentalsys.Errno {
	if !f.budget.reserve(size) {
		return experimentalsys.EIO
	}
	return f.File.Truncate(size)
}

// outputBudget tracks an upper bound of the bytes under /output. Every write
// is charged in full (an overwrite is counted twice); when the charge would
// pass the limit the directory is measured and the charge reset to the real
// size, so the bound is cheap in the common case and exact at the limit.
type outputBudget struct {
	mu       sync.Mutex
	dir      string
	limit    int64
	charged  int64
	exceeded bool
}

func (b *outputBudget) reserve(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.exceeded {
		return false
	}
	if b.charged+n <= b.limit {
		b.charged += n
		return true
	}
	usage, err := executor.DirUsage(b.dir)
	if err == nil && usage.Cost()+n <= b.limit {
		b.charged = usage.Cost() + n
		return true
	}
	b.exceeded = true
	return false
}

func (b *outputBudget) wasExceeded() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.exceeded
}
