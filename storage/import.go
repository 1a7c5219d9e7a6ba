package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	ihelper "github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	pin "github.com/ipfs/boxo/pinning/pinner"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Progress is called with the bytes done so far and the total expected
// (-1 when unknown). It runs on the calling goroutine; keep it quick.
type Progress func(done, total int64)

// AddOptions tune one import.
type AddOptions struct {
	// NoPin leaves the result unpinned (GC may remove it). By default the
	// root is pinned recursively once the whole DAG is written.
	NoPin bool
	// Progress reports bytes of file data read.
	Progress Progress
	// IncludeHidden imports dot files and directories for this import even
	// when storage.include_hidden is off (`vft add --hidden`).
	IncludeHidden bool
}

// Add imports the file or directory at path as UnixFS and returns the
// root CID, the one `ipfs add -r` (with the same settings) prints. Hidden
// files in directories are skipped unless storage.include_hidden or
// opts.IncludeHidden is set (CountHidden says how many); symlinks are
// stored as symlinks.
func (s *Store) Add(ctx context.Context, path string, opts AddOptions) (cid.Cid, error) {
	st, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return cid.Undef, fmt.Errorf("import %s: no such file or directory", path)
		}
		return cid.Undef, fmt.Errorf("import %s: %w", path, err)
	}
	hidden := s.cfg.IncludeHidden || opts.IncludeHidden
	filter, err := files.NewFilter("", nil, hidden)
	if err != nil {
		return cid.Undef, err
	}
	nd, err := files.NewSerialFileWithFilter(path, filter, st)
	if err != nil {
		return cid.Undef, fmt.Errorf("import %s: %w", path, err)
	}
	total := int64(-1)
	if opts.Progress != nil {
		total = sizeOnDisk(path, st, hidden)
	}
	c, err := s.AddNode(ctx, nd, opts, total)
	if err != nil {
		return cid.Undef, fmt.Errorf("import %s: %w", path, err)
	}
	return c, nil
}

// AddReader imports the bytes of r as one UnixFS file.
func (s *Store) AddReader(ctx context.Context, r io.Reader, opts AddOptions) (cid.Cid, error) {
	return s.AddNode(ctx, files.NewReaderFile(r), opts, -1)
}

// AddNode imports a files.Node (a file, directory or symlink, on disk or
// in memory). total is the byte count for progress, or -1.
func (s *Store) AddNode(ctx context.Context, nd files.Node, opts AddOptions, total int64) (cid.Cid, error) {
	if err := s.live(); err != nil {
		return cid.Undef, err
	}
	defer nd.Close()
	// Hold the pin lock from the first block to the pin, so a concurrent GC
	// cannot remove blocks of a DAG that is not pinned yet.
	unlock := s.gcl.PinLock(ctx)
	defer unlock.Unlock(ctx)

	im := &importer{s: s, ctx: ctx, progress: opts.Progress, total: total}
	root, err := im.add(nd)
	if err != nil {
		return cid.Undef, err
	}
	if !opts.NoPin {
		// Every block is written by now, so pin without walking the DAG
		// again (kubo's adder does the same).
		if err := s.pinner.PinWithMode(ctx, root.Cid(), pin.Recursive, ""); err != nil {
			return cid.Undef, fmt.Errorf("pin %s: %w", root.Cid(), err)
		}
		if err := s.pinner.Flush(ctx); err != nil {
			return cid.Undef, fmt.Errorf("pin %s: %w", root.Cid(), err)
		}
	}
	if opts.Progress != nil {
		opts.Progress(im.done, max(im.done, total))
	}
	s.provide(root.Cid())
	return root.Cid(), nil
}

// IncludesHidden says whether Add with opts imports dot files.
func (s *Store) IncludesHidden(opts AddOptions) bool {
	return s.cfg.IncludeHidden || opts.IncludeHidden
}

// CountHidden counts the dot files and directories under the directory
// path that an import without hidden files leaves out; a skipped
// directory counts once, whatever it holds. A file path has none.
func CountHidden(path string) (int, error) {
	n := 0
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && isHidden(d.Name()) {
			n++
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("count hidden files in %s: %w", path, err)
	}
	return n, nil
}

func isHidden(name string) bool { return len(name) > 0 && name[0] == '.' }

// sizeOnDisk sums the regular files under path that Add will read.
func sizeOnDisk(path string, st os.FileInfo, hidden bool) int64 {
	if !st.IsDir() {
		return st.Size()
	}
	var n int64
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if p != path && !hidden && isHidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// importer builds the DAG the way kubo's coreunix.Adder does: balanced
// file layout through the configured chunker, and directories as
// dynamic (basic or HAMT) UnixFS directories with kubo's thresholds.
type importer struct {
	s        *Store
	ctx      context.Context
	progress Progress
	total    int64
	done     int64
}

func (im *importer) add(nd files.Node) (ipld.Node, error) {
	if err := im.ctx.Err(); err != nil {
		return nil, err
	}
	switch f := nd.(type) {
	case files.Directory:
		return im.addDir(f)
	case *files.Symlink:
		return im.addSymlink(f)
	case files.File:
		return im.addFile(f)
	}
	return nil, fmt.Errorf("unsupported file type %T", nd)
}

func (im *importer) addFile(f files.File) (_ ipld.Node, err error) {
	cfg := im.s.cfg
	spl, err := newLeafSplitter(&ctxReader{ctx: im.ctx, r: f}, cfg.Chunker, cfg.RawLeaves)
	if err != nil {
		return nil, err
	}
	// Read and hash ahead on other cores while the builder links and the
	// batches are written.
	ahead := newHashAhead(im.ctx, spl, cfg.cidBuilder(), cfg.RawLeaves, im.chunkDone)
	defer ahead.Close()
	bufDAG := newBatchDAG(im.ctx, im.s.localDAG, im.stored)
	if im.s.syncWrites() {
		bufDAG.failed = recycleLeaves
	}
	if size, err := f.Size(); err == nil && size > directAfter {
		// A file this large is written past the page cache from its first
		// byte: its start would not stay cached for long anyway.
		bufDAG.directAfter = 0
	}
	defer func() {
		if err != nil {
			recycleLeaves(bufDAG.abandon())
		}
	}()
	params := ihelper.DagBuilderParams{
		Dagserv:    bufDAG,
		RawLeaves:  cfg.RawLeaves,
		Maxlinks:   cfg.MaxLinks,
		CidBuilder: ahead.Builder(cfg.cidBuilder()),
	}
	db, err := params.New(ahead)
	if err != nil {
		return nil, err
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		return nil, err
	}
	// A file of one chunk is its own root, and its leaf's buffer goes back
	// to the pool once written: the caller gets a copy.
	if raw, ok := nd.(*merkledag.RawNode); ok {
		blk, err := blocks.NewBlockWithCid(bytes.Clone(raw.RawData()), raw.Cid())
		if err != nil {
			return nil, err
		}
		nd = &merkledag.RawNode{Block: blk}
	}
	if err := bufDAG.Commit(); err != nil {
		return nil, err
	}
	return nd, nil
}

// stored follows each batch of a file's blocks onto disk. They are
// written past bitswap (to the local DAG) and announced to it here
// (announceImported), so that the raw leaves' buffers can go back to
// their pool (recycleLeaves).
func (im *importer) stored(nodes []ipld.Node) {
	im.s.announceImported(nodes)
	recycleLeaves(nodes)
}

// announceImported tells bitswap about blocks an import stored, as the
// online blockservice does for what it writes. Its server keeps only
// their CIDs and reads the blocks from the store when a peer wants one. A
// local fetch waiting for one of them is handed the DAG's inner nodes as
// they are, but a raw leaf only as a copy, and only when it is wanted:
// the import gives the leaf's buffer back to the chunker once it is
// stored (recycleLeaves), and a waiting fetch would keep the block.
func (s *Store) announceImported(nodes []ipld.Node) {
	if s.bswap == nil {
		return
	}
	wanted := map[cid.Cid]bool{}
	for _, c := range s.bswap.GetWantlist() {
		wanted[c] = true
	}
	all := make([]blocks.Block, 0, len(nodes))
	var local []blocks.Block
	for _, nd := range nodes {
		all = append(all, nd)
		switch c := nd.Cid(); {
		case c.Type() != cid.Raw:
			local = append(local, nd)
		case wanted[c]:
			if cp, err := blocks.NewBlockWithCid(bytes.Clone(nd.RawData()), c); err == nil {
				local = append(local, cp)
			}
		}
	}
	if s.bswap.Server != nil {
		_ = s.bswap.Server.NotifyNewBlocks(s.ctx, all...)
	}
	if len(local) > 0 {
		_ = s.bswap.Client.NotifyNewBlocks(s.ctx, local...)
	}
}

func (im *importer) addDir(d files.Directory) (ipld.Node, error) {
	cfg := im.s.cfg
	mode, _ := cfg.sizeEstimation()
	dir, err := uio.NewDirectory(im.s.dag,
		uio.WithCidBuilder(cfg.cidBuilder()),
		uio.WithMaxLinks(0), // kubo: Import.UnixFSDirectoryMaxLinks = 0
		uio.WithMaxHAMTFanout(cfg.HAMTFanout),
		uio.WithSizeEstimationMode(mode),
	)
	if err != nil {
		return nil, err
	}
	dir.SetHAMTShardingSize(cfg.HAMTThreshold)
	it := d.Entries()
	for it.Next() {
		child, err := im.add(it.Node())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.Name(), err)
		}
		if err := dir.AddChild(im.ctx, it.Name(), child); err != nil {
			return nil, fmt.Errorf("%s: %w", it.Name(), err)
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	nd, err := dir.GetNode()
	if err != nil {
		return nil, err
	}
	if err := im.s.dag.Add(im.ctx, nd); err != nil {
		return nil, err
	}
	return nd, nil
}

func (im *importer) addSymlink(l *files.Symlink) (ipld.Node, error) {
	data, err := unixfs.SymlinkData(l.Target)
	if err != nil {
		return nil, err
	}
	nd := merkledag.NodeWithData(data)
	if err := nd.SetCidBuilder(im.s.cfg.cidBuilder()); err != nil {
		return nil, err
	}
	if err := im.s.dag.Add(im.ctx, nd); err != nil {
		return nil, err
	}
	return nd, nil
}

// chunkDone reports the bytes of a chunk the builder took; it runs on
// the importing goroutine, as Progress promises.
func (im *importer) chunkDone(n int) {
	im.done += int64(n)
	if im.progress != nil && n > 0 {
		im.progress(im.done, im.total)
	}
}
