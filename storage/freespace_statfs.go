//go:build linux || darwin || freebsd

package storage

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// freeSpace reports the bytes an unprivileged user may still write on the
// file system holding dir (Bavail, as df shows) and its total size.
func freeSpace(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bsize := int64(st.Bsize)
	return int64(st.Bavail) * bsize, int64(st.Blocks) * bsize, nil
}
