package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/boxo/files"
	unixfile "github.com/ipfs/boxo/ipld/unixfs/file"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Get fetches the DAG under c (see Fetch) and writes it to outPath as a
// file, directory or symlink, within opts.Limits. outPath must not exist;
// the content is written next to it and moved into place only when
// complete.
func (s *Store) Get(ctx context.Context, c cid.Cid, outPath string, opts FetchOptions) (FetchResult, error) {
	res, err := s.Fetch(ctx, c, opts)
	if err != nil {
		return res, err
	}
	// Read through the online DAG: a block found corrupt while exporting
	// is deleted and fetched again instead of failing the export.
	if err := s.export(ctx, s.dag, c, outPath, opts.Limits); err != nil {
		return res, err
	}
	return res, nil
}

// Export writes local content to outPath (which must not exist) within
// lim, without touching the network; a missing block is an error naming
// it.
func (s *Store) Export(ctx context.Context, c cid.Cid, outPath string, lim ExportLimits) error {
	if err := s.live(); err != nil {
		return err
	}
	return s.export(ctx, s.localDAG, c, outPath, lim)
}

func (s *Store) export(ctx context.Context, dag ipld.DAGService, c cid.Cid, outPath string, lim ExportLimits) error {
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
	lim, err := lim.resolve(outPath)
	if err != nil {
		return fmt.Errorf("export %s: %w", c, err)
	}
	// Refuse before writing anything when the DAG declares more than the
	// limits: three blocks can declare a terabyte.
	decl, err := measure(ctx, dag, c)
	if err != nil {
		return fmt.Errorf("export %s: %w", c, s.explainLocal(err))
	}
	if err := lim.check(decl); err != nil {
		return fmt.Errorf("export %s to %s: %w", c, outPath, err)
	}
	nd, err := s.open(ctx, dag, c)
	if err != nil {
		return err
	}
	defer nd.Close()
	tmp := filepath.Join(filepath.Dir(outPath), ".vft-get-"+filepath.Base(outPath)+".tmp")
	_ = os.RemoveAll(tmp) // left over from a crash
	corruptBefore := s.guard.nCorrupt.Load()
	// Declared sizes can lie (a file's root may understate its leaves), so
	// the writer counts again as it goes.
	w := &exporter{ctx: ctx, lim: lim}
	if err := w.write(nd, tmp, ""); err != nil {
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

// check refuses a DAG that declares more than the limits allow.
func (l ExportLimits) check(d tally) error {
	if d.bytes > l.MaxBytes {
		return fmt.Errorf("%w: it declares %s of files, over the limit of %s; raise the byte limit only if you trust this content and have the space",
			ErrTooLarge, sizeString(d.bytes), sizeString(l.MaxBytes))
	}
	if d.entries > l.MaxEntries {
		return fmt.Errorf("%w: it declares %s files and directories, over the limit of %d; raise the entry limit only if you trust this content",
			ErrTooLarge, countString(d.entries), l.MaxEntries)
	}
	return nil
}

// sizeString gives bytes exactly and, when large, in binary units too.
func sizeString(n int64) string {
	if n == math.MaxInt64 {
		return "more than 8 EiB"
	}
	const units = "KMGTPE"
	if n < 1<<10 {
		return fmt.Sprintf("%d bytes", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%d bytes (%.1f %ciB)", n, v, units[i])
}

func countString(n int64) string {
	if n == math.MaxInt64 {
		return "more than 9.2e18"
	}
	return fmt.Sprint(n)
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

// exporter writes a UnixFS node to disk within its limits, counting
// bytes and entries as it writes them.
type exporter struct {
	ctx     context.Context
	lim     ExportLimits
	bytes   int64
	entries int64
}

// write writes nd at path; rel is its path inside the output ("" for the
// root), used to confine symlinks. Every entry is created exclusively, so
// a DAG with duplicate names cannot make a symlink redirect a later write,
// and no write ever goes through a symlink the export created.
func (e *exporter) write(nd files.Node, path, rel string) error {
	if err := e.ctx.Err(); err != nil {
		return err
	}
	if e.entries >= e.lim.MaxEntries {
		return fmt.Errorf("%w: more than %d files and directories (the DAG understated them); raise the entry limit only if you trust this content",
			ErrTooLarge, e.lim.MaxEntries)
	}
	e.entries++
	switch n := nd.(type) {
	case *files.Symlink:
		if err := e.checkSymlink(rel, n.Target); err != nil {
			return err
		}
		return os.Symlink(n.Target, path)
	case files.File:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(&budgetWriter{w: f, e: e}, &ctxReader{ctx: e.ctx, r: n})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case files.Directory:
		if strings.Count(rel, "/") >= maxExportDepth {
			return fmt.Errorf("directories nest deeper than %d levels at %s", maxExportDepth, rel)
		}
		if err := os.Mkdir(path, 0o755); err != nil {
			return err
		}
		it := n.Entries()
		for it.Next() {
			name := it.Name()
			if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
				return fmt.Errorf("refusing unsafe entry name %q in %s", name, path)
			}
			if err := e.write(it.Node(), filepath.Join(path, name), pathJoin(rel, name)); err != nil {
				return err
			}
		}
		return it.Err()
	}
	return fmt.Errorf("unsupported UnixFS node %T at %s", nd, path)
}

func pathJoin(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// checkSymlink allows a symlink only when its target, resolved from the
// link's directory, stays inside the output. The check is lexical, so it
// also requires every ".." to come first: "d/../x" goes through d, which
// may itself be a link, and the kernel's ".." from there is not the
// lexical one. Links checked this way can only ever lead to other entries
// of the output (each hop stays inside by the same rule).
func (e *exporter) checkSymlink(rel, target string) error {
	where := rel
	if where == "" {
		where = "the root"
	}
	if e.lim.NoSymlinks {
		return fmt.Errorf("%w: %s is a symlink to %q, and this content must hold only regular files and directories", ErrSymlink, where, target)
	}
	if rel == "" {
		return fmt.Errorf("%w: the content is itself a symlink (to %q); export the files it points to instead", ErrSymlink, target)
	}
	if target == "" || strings.ContainsRune(target, 0) || strings.HasPrefix(target, "/") || filepath.IsAbs(target) {
		return fmt.Errorf("%w: %s points to %q, outside the output; only relative links inside it are written", ErrSymlink, where, target)
	}
	up, descending := 0, false
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if descending {
				return fmt.Errorf("%w: %s points to %q, which has \"..\" after a name; only links that stay inside the output are written", ErrSymlink, where, target)
			}
			up++
		default:
			descending = true
		}
	}
	// The link's directory is strings.Count(rel, "/") levels below the root.
	if up > strings.Count(rel, "/") {
		return fmt.Errorf("%w: %s points to %q, outside the output; only relative links inside it are written", ErrSymlink, where, target)
	}
	return nil
}

// budgetWriter stops a file at the byte limit: it writes what still fits
// and then fails, so the export never writes more than it may.
type budgetWriter struct {
	w io.Writer
	e *exporter
}

func (b *budgetWriter) Write(p []byte) (int, error) {
	left := b.e.lim.MaxBytes - b.e.bytes
	if int64(len(p)) <= left {
		n, err := b.w.Write(p)
		b.e.bytes += int64(n)
		return n, err
	}
	n, err := b.w.Write(p[:max(left, 0)])
	b.e.bytes += int64(n)
	if err == nil {
		err = fmt.Errorf("%w: the files hold more than the limit of %s (the DAG understated its size); raise the byte limit only if you trust this content and have the space",
			ErrTooLarge, sizeString(b.e.lim.MaxBytes))
	}
	return n, err
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
