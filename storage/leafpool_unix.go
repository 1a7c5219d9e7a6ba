//go:build unix

package storage

import "golang.org/x/sys/unix"

// mapLeaf maps size bytes of anonymous memory for a leafPool.
func mapLeaf(size int) ([]byte, error) {
	return unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

// releaseLeaf gives an idle buffer's pages back to the system; the
// mapping stays, and reads zeros until written again.
func releaseLeaf(b []byte) { _ = unix.Madvise(b, unix.MADV_DONTNEED) }
