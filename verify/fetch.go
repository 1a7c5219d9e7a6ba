package verify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Fetcher writes the UnixFS content under a CID (a file or a directory)
// to path, which must not exist yet. The node's content store implements
// it; verify only needs the bytes on disk to compare them. It refuses
// content that declares or holds more than maxBytes of files before
// writing past it (0: the free space at path, less a reserve), so a result
// that is a dedup bomb cannot fill the verifier's disk.
type Fetcher interface {
	Get(ctx context.Context, cid, path string, maxBytes int64) error
}

// ErrTooLarge is a result bigger than a matcher is allowed to compare.
var ErrTooLarge = errors.New("result too large to compare")

// fetched is a pair of results (and perhaps a verifier module) in a
// scratch directory of their own; Close removes it all.
type fetched struct {
	dir string
}

func newFetched(scratchDir string) (*fetched, error) {
	if err := os.MkdirAll(scratchDir, 0o700); err != nil {
		return nil, fmt.Errorf("scratch dir %s: %w", scratchDir, err)
	}
	dir, err := os.MkdirTemp(scratchDir, "match-")
	if err != nil {
		return nil, fmt.Errorf("scratch dir %s: %w", scratchDir, err)
	}
	return &fetched{dir: dir}, nil
}

// get fetches cid to dir/name and, when maxBytes > 0, refuses content
// larger than that. The Fetcher stops at maxBytes while writing; the
// check after it is for Fetchers that count differently, and says which
// CID was too big.
func (f *fetched) get(ctx context.Context, fe Fetcher, cid, name string, maxBytes int64) (string, error) {
	path := filepath.Join(f.dir, name)
	if err := fe.Get(ctx, cid, path, maxBytes); err != nil {
		return "", fmt.Errorf("fetch %s: %w", cid, err)
	}
	if maxBytes > 0 {
		size, err := treeSize(path)
		if err != nil {
			return "", fmt.Errorf("size of %s: %w", cid, err)
		}
		if size > maxBytes {
			return "", fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrTooLarge, cid, size, maxBytes)
		}
	}
	return path, nil
}

func (f *fetched) Close() error { return os.RemoveAll(f.dir) }

// treeSize is the total size of the regular files under root.
func treeSize(root string) (int64, error) {
	var size int64
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		size += info.Size()
		return nil
	})
	return size, err
}
