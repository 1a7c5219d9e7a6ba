package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/boxo/files"
	unixfile "github.com/ipfs/boxo/ipld/unixfs/file"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Get fetches the DAG under c (see Fetch) and writes it to outPath as a
// file, directory or symlink. outPath must not exist; the content is
// written next to it and moved into place only when complete.
func (s *Store) Get(ctx context.Context, c cid.Cid, outPath string, opts FetchOptions) (FetchResult, error) {
	res, err := s.Fetch(ctx, c, opts)
	if err != nil {
		return res, err
	}
	// Read through the online DAG: a block found corrupt while exporting
	// is deleted and fetched again instead of failing the export.
	if err := s.export(ctx, s.dag, c, outPath); err != nil {
		return res, err
	}
	return res, nil
}

// Export writes local content to outPath (which must not exist) without
// touching the network; a missing block is an error naming it.
func (s *Store) Export(ctx context.Context, c cid.Cid, outPath string) error {
	if err := s.live(); err != nil {
		return err
	}
	return s.export(ctx, s.localDAG, c, outPath)
}

func (s *Store) export(ctx context.Context, dag ipld.DAGService, c cid.Cid, outPath string) error {
	if dag == s.localDAG {
		// Check the DAG is all here first: the UnixFS reader's errors do
		// not say which block is missing.
		if _, err := s.fetchDAG(ctx, s.offline, c, nil, nil); err != nil {
			return fmt.Errorf("export %s: %w", c, err)
		}
	}
	if _, err := os.Lstat(outPath); err == nil {
		return fmt.Errorf("export %s: %s already exists; remove it or choose another output path", c, outPath)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("export %s: %w", c, err)
	}
	nd, err := s.open(ctx, dag, c)
	if err != nil {
		return err
	}
	defer nd.Close()
	tmp := filepath.Join(filepath.Dir(outPath), ".vft-get-"+filepath.Base(outPath)+".tmp")
	_ = os.RemoveAll(tmp) // left over from a crash
	corruptBefore := s.guard.nCorrupt.Load()
	if err := writeNode(ctx, nd, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		if bad := s.guard.corruptCIDs(); s.guard.nCorrupt.Load() > corruptBefore && len(bad) > 0 {
			err = fmt.Errorf("%w: block %s did not match its hash and was deleted; fetch the content again from a peer", ErrCorruptBlock, bad[0])
		}
		return fmt.Errorf("export %s to %s: %w", c, outPath, s.explainLocal(err))
	}
	if err := os.Rename(tmp, outPath); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("export %s: %w", c, err)
	}
	return nil
}

func (s *Store) open(ctx context.Context, dag ipld.DAGService, c cid.Cid) (files.Node, error) {
	root, err := dag.Get(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", c, s.explainLocal(err))
	}
	nd, err := unixfile.NewUnixfsFile(ctx, dag, root)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", c, err)
	}
	return nd, nil
}

// explainLocal names the missing block and says whether it was corrupt.
func (s *Store) explainLocal(err error) error {
	var nf ipld.ErrNotFound
	if errors.As(err, &nf) {
		if s.guard.wasCorrupt(nf.Cid) {
			return fmt.Errorf("%w: block %s did not match its hash and was deleted; fetch the content again from a peer", ErrCorruptBlock, nf.Cid)
		}
		return fmt.Errorf("block %s is not in the local store; fetch the content first", nf.Cid)
	}
	return err
}

// Cat returns length bytes (all remaining when length < 0) of the local
// UnixFS file c, starting at offset.
func (s *Store) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	nd, err := s.open(ctx, s.localDAG, c)
	if err != nil {
		return nil, err
	}
	f, ok := nd.(files.File)
	if !ok {
		nd.Close()
		return nil, fmt.Errorf("cat %s: %w", c, ErrNotFile)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, err
	}
	if offset < 0 || offset > size {
		f.Close()
		return nil, fmt.Errorf("cat %s: offset %d is outside the file (size %d)", c, offset, size)
	}
	seeker, ok := f.(io.Seeker)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("cat %s: file reader cannot seek", c)
	}
	if _, err := seeker.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("cat %s: %w", c, err)
	}
	var r io.Reader = f
	if length >= 0 {
		r = io.LimitReader(f, length)
	}
	return readCloser{Reader: &localReader{r: r, s: s}, Closer: f}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

type localReader struct {
	r io.Reader
	s *Store
}

func (l *localReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF {
		err = l.s.explainLocal(err)
	}
	return n, err
}

// writeNode writes nd at path. Every entry is created exclusively, so a
// DAG with duplicate names cannot make a symlink redirect a later write.
func writeNode(ctx context.Context, nd files.Node, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch n := nd.(type) {
	case *files.Symlink:
		return os.Symlink(n.Target, path)
	case files.File:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, &ctxReader{ctx: ctx, r: n})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case files.Directory:
		if err := os.Mkdir(path, 0o755); err != nil {
			return err
		}
		it := n.Entries()
		for it.Next() {
			name := it.Name()
			if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
				return fmt.Errorf("refusing unsafe entry name %q in %s", name, path)
			}
			if err := writeNode(ctx, it.Node(), filepath.Join(path, name)); err != nil {
				return err
			}
		}
		return it.Err()
	}
	return fmt.Errorf("unsupported UnixFS node %T at %s", nd, path)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
