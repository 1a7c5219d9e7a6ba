package storage

import "errors"

var (
	// ErrQuotaExceeded means a write would take the blocks over storage.max_bytes.
	ErrQuotaExceeded = errors.New("storage quota exceeded")
	// ErrFetchTimeout means no peer supplied a block within storage.fetch_timeout.
	ErrFetchTimeout = errors.New("content not found on the network in time")
	// ErrCorruptBlock means a block on disk did not match its hash.
	ErrCorruptBlock = errors.New("corrupt block on disk")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("storage is closed")
	// ErrNotFile is returned by Cat when the CID names a directory.
	ErrNotFile = errors.New("not a UnixFS file")
	// ErrTooLarge means content declares (or turns out to hold) more bytes
	// or entries than the export may write: a dedup or decompression bomb
	// can declare a terabyte in three small blocks.
	ErrTooLarge = errors.New("content too large to export")
	// ErrSymlink means an export met a symlink it must not write: one that
	// points outside the output, or any symlink where only regular files
	// and directories are allowed.
	ErrSymlink = errors.New("symlink refused")
)
