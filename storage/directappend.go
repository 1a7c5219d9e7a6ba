//go:build linux

package storage

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// directAppender appends a lane's batches to its pack without going
// through the page cache (O_DIRECT), for the batches that ask: an
// import's past its first directAfter bytes. On this project's test VM a
// page of the cache first written costs a fault in the host once the VM
// has handed its free memory back: a 10 GiB import through the cache
// spent 15–30 s of system time and took 12.6–24 s, direct 1.9–3.3 s and
// 7.3–7.8 s (docs/BENCHMARKS.md). On any machine it keeps a large import
// from filling the cache. Below that size the cache is faster (a 512 MiB
// import took 0.25 s through it and 0.44 s direct), and what was just
// imported or fetched is often read soon, from the cache.
//
// O_DIRECT writes whole aligned blocks from an aligned buffer, and the
// pack format has records of any length, so a batch's records are copied
// into a stage, placed so that a byte's place in the stage and in the
// file agree modulo directAlign. The batch's whole blocks are written
// from there directly; its first bytes, up to the first block boundary,
// and its last, after the last one, go through the page cache on a
// second descriptor. Every byte a batch appended is so written before it
// is indexed, as the pack store's crash rule asks, and no block is ever
// written both ways (which would make the kernel write the cached page
// back before the direct write).
//
// Both descriptors write the same file as the lane's own, which Sync
// still fsyncs: fsync covers the file, not one descriptor.
type directAppender struct {
	direct *os.File // the pack, opened O_DIRECT
	plain  *os.File // the pack again, for the partial blocks
	buf    []byte   // the stage's memory, mapped (directStageSize)
	// During a batch, stage[skip():] are the bytes appended and not
	// written yet, from file offset at on.
	stage []byte
	at    int64
}

const (
	// directAlign is the alignment O_DIRECT needs of offsets, lengths and
	// buffers: the page size, a multiple of any disk's logical block.
	directAlign = 4096
	// directStageSize is a stage's capacity: most of a 1 MiB leaf's
	// record goes out in one direct write. This VM's disk takes 1 MiB
	// writes at twice the rate of 256 KiB ones on some days (`dd
	// oflag=direct`: 1.33 against 0.65 GB/s), and a 10 GiB import with
	// 256 KiB stages took 11.9–13.0 s against 9.0–9.3 s
	// (docs/BENCHMARKS.md).
	directStageSize = 1 << 20
)

// openDirectAppender opens the pack at path, a lane's current one, for
// direct appends.
func openDirectAppender(path string) (*directAppender, error) {
	direct, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil, err
	}
	plain, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		direct.Close()
		return nil, err
	}
	// Mapped, not from the heap: page-aligned, and outside what the
	// collector lets the heap grow to (a 10 GiB import's peak RSS is one
	// of issue #18's measures).
	stage, err := unix.Mmap(-1, 0, directStageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		direct.Close()
		plain.Close()
		return nil, fmt.Errorf("map a stage for direct writes: %w", err)
	}
	return &directAppender{direct: direct, plain: plain, buf: stage}, nil
}

// append stages b, which goes at file offset off, writing the stage out
// whenever it is full. A batch's appends are contiguous: off only starts
// its stage (the pack may have grown by appends through the cache since
// the last batch).
func (d *directAppender) append(b []byte, off int64) error {
	if d.stage == nil {
		d.at = off
		d.stage = d.buf[:d.skip()]
	}
	for len(b) > 0 {
		n := copy(d.stage[len(d.stage):cap(d.stage)], b)
		d.stage = d.stage[:len(d.stage)+n]
		b = b[n:]
		if len(d.stage) == cap(d.stage) {
			if err := d.write(false); err != nil {
				return err
			}
		}
	}
	return nil
}

// write writes what the stage holds: the bytes before its first block
// boundary through the cache, its whole blocks direct, and the rest
// through the cache if last, else kept at the stage's front.
func (d *directAppender) write(last bool) error {
	first := 0 // the stage's first whole block
	skip := d.skip()
	if skip > 0 {
		first = min(directAlign, len(d.stage))
		if _, err := d.plain.WriteAt(d.stage[skip:first], d.at); err != nil {
			return err
		}
	}
	whole := (len(d.stage) - first) &^ (directAlign - 1)
	blockAt := d.at + int64(first-skip) // file offset of stage[first]
	if whole > 0 {
		if _, err := d.direct.WriteAt(d.stage[first:first+whole], blockAt); err != nil {
			return fmt.Errorf("direct write: %w", err)
		}
	}
	rest := d.stage[first+whole:]
	restAt := blockAt + int64(whole)
	if last {
		if len(rest) > 0 {
			if _, err := d.plain.WriteAt(rest, restAt); err != nil {
				return err
			}
		}
		d.stage = nil
		return nil
	}
	d.stage = d.stage[:copy(d.stage, rest)]
	d.at = restAt // a block boundary: skip() is 0
	return nil
}

// flush ends a batch: everything appended is written.
func (d *directAppender) flush() error {
	if d.stage == nil {
		return nil
	}
	return d.write(true)
}

// skip is where the byte at file offset at sits in the stage: bytes
// agree with the file modulo directAlign, so whole blocks are aligned in
// memory too.
func (d *directAppender) skip() int { return int(d.at % directAlign) }

// close drops what is staged (a failed batch is not indexed) and frees
// the stage.
func (d *directAppender) close() {
	d.stage = nil
	unix.Munmap(d.buf)
	d.direct.Close()
	d.plain.Close()
}

// probeDirect fails where the file system holding dir does not take
// direct appends: some refuse O_DIRECT at open (an older kernel's tmpfs,
// some FUSE file systems), others could at the first write. A store there
// appends through the cache.
func probeDirect(dir string) error {
	path := filepath.Join(dir, "direct-probe")
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_DIRECT, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	page, err := unix.Mmap(-1, 0, directAlign, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	defer unix.Munmap(page)
	_, err = f.WriteAt(page, 0)
	return err
}
