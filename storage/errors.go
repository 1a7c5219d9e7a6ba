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
)
