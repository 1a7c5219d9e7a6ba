package executor

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ReadRegularFile reads a file that must be a plain file of at most limit
// bytes. Inputs and modules come from content other peers published: a
// symbolic link to /dev/zero, a FIFO or a device would make a plain
// os.ReadFile read forever or block (its size from stat is 0), and a link
// could point at any host file. So the path is opened without following a
// link (O_NOFOLLOW), without blocking on a FIFO (O_NONBLOCK), the opened file
// must be regular (fstat, which a swap after the check cannot fool), and the
// read stops at limit+1 bytes whatever the file claims. Errors wrap ErrBadTask.
func ReadRegularFile(path string, limit int64) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Sized by fstat, so that a module's megabytes are allocated once
	// instead of grown by doubling (io.ReadAll: about twice the file in
	// garbage, for every task). The extra byte is where a file that grew
	// since shows it is longer; it is still read to limit+1 at most.
	size := int64(512)
	if st, err := f.Stat(); err == nil {
		size = min(st.Size(), limit)
	}
	b := make([]byte, 0, size+1)
	r := io.LimitReader(f, limit+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %v", ErrBadTask, path, err)
		}
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is over the %d-byte limit", ErrBadTask, path, limit)
	}
	return b, nil
}

// OpenRegular opens path for reading if it is a regular file and not a
// symbolic link (see ReadRegularFile).
func OpenRegular(path string) (*os.File, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTask, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is %s, not a regular file; only plain files are accepted", ErrBadTask, path, describeMode(st.Mode()))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %v", ErrBadTask, path, err)
	}
	if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s changed into something other than a regular file while being opened", ErrBadTask, path)
	}
	return f, nil
}

// describeMode names a file type for an error message.
func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "a special file"
	}
}
