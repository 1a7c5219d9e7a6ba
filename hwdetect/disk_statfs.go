//go:build linux || darwin || freebsd

package hwdetect

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// diskUsage reports the file system holding dir. Free counts the blocks an
// unprivileged user may write (Bavail), as df does: that is what jobs get.
func diskUsage(dir string) (Disk, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return Disk{Path: dir}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bsize := uint64(st.Bsize)
	return Disk{
		Path:       dir,
		TotalBytes: uint64(st.Blocks) * bsize,
		FreeBytes:  uint64(st.Bavail) * bsize,
	}, nil
}
