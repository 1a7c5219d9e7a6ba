//go:build !(linux || darwin || freebsd)

package storage

import (
	"fmt"
	"runtime"
)

func freeSpace(dir string) (free, total int64, err error) {
	return 0, 0, fmt.Errorf("free space of %s: not implemented on %s", dir, runtime.GOOS)
}
