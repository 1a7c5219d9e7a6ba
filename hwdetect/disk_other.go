//go:build !(linux || darwin || freebsd)

package hwdetect

import (
	"fmt"
	"runtime"
)

func diskUsage(dir string) (Disk, error) {
	return Disk{Path: dir}, fmt.Errorf("disk space of %s: not implemented on %s", dir, runtime.GOOS)
}
