package main

import (
	"fmt"
	"unsafe"
)

// pathOpen is WASI's path_open, called directly: the Go runtime cleans paths
// before it calls WASI, a hostile module does not.
//
//go:wasmimport wasi_snapshot_preview1 path_open
func pathOpen(fd int32, dirflags uint32, path unsafe.Pointer, pathLen uint32, oflags uint32,
	rightsBase uint64, rightsInheriting uint64, fdflags uint32, newFd unsafe.Pointer) uint32

// rawEscape tries relative escapes from every preopened directory and
// reports whether any open succeeded.
func rawEscape() bool {
	// Control: fd 3 is /input and a plain name in it opens, so the refusals
	// below are about the paths, not a wrong descriptor.
	name := []byte("a.txt")
	var fd3 int32
	if errno := pathOpen(3, 0, unsafe.Pointer(&name[0]), uint32(len(name)), 0, rightRead, rightRead, 0, unsafe.Pointer(&fd3)); errno != 0 {
		fmt.Println("CONTROL FAILED: cannot open a.txt in fd 3: errno", errno)
		return true
	}
	escaped := false
	for fd := int32(3); fd <= 5; fd++ {
		for _, p := range []string{"../secret", "../../secret", "..", "../../../../etc/passwd", "/etc/passwd", "a/../../secret"} {
			b := []byte(p)
			var newFd int32
			errno := pathOpen(fd, 0, unsafe.Pointer(&b[0]), uint32(len(b)), 0, rightRead, rightRead, 0, unsafe.Pointer(&newFd))
			if errno == 0 {
				fmt.Printf("OPENED fd %d %q\n", fd, p)
				escaped = true
			} else {
				fmt.Printf("refused fd %d %q: errno %d\n", fd, p, errno)
			}
		}
	}
	return escaped
}

// rightRead is WASI's fd_read right; asking for write rights on /input would
// be refused for that reason alone.
const rightRead = 1 << 1
