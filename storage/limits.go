package storage

import (
	"context"
	"fmt"
	"math"
	"path/filepath"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// DefaultMaxEntries bounds the files, directories and symlinks one export
// writes when the caller names no limit. A DAG of a few small blocks can
// declare millions of entries by linking the same directory many times.
const DefaultMaxEntries = 1 << 20

// maxExportDepth bounds directory nesting; paths this deep would fail
// with ENAMETOOLONG anyway, and it keeps the walks' recursion bounded.
const maxExportDepth = 2048

// ExportLimits bounds what one export writes. The zero value is safe: it
// allows what fits on the output's file system (less a reserve), up to
// DefaultMaxEntries entries, and symlinks only when they point inside the
// output.
type ExportLimits struct {
	// MaxBytes is the most file content the export writes. 0 means the
	// free space on the file system holding the output, less a reserve of
	// 1 GiB or 5% of its size (the smaller), so a bomb cannot fill the disk.
	MaxBytes int64
	// MaxEntries is the most files, directories and symlinks written, the
	// root included. 0 means DefaultMaxEntries.
	MaxEntries int64
	// NoSymlinks refuses any symlink. Job inputs and modules must be
	// regular files and directories: a symlink to /dev/zero in a module
	// would otherwise be followed by whatever opens it.
	NoSymlinks bool
}

// resolve fills in the defaults for an export to outPath.
func (l ExportLimits) resolve(outPath string) (ExportLimits, error) {
	if l.MaxBytes < 0 || l.MaxEntries < 0 {
		return l, fmt.Errorf("export limits must not be negative (max bytes %d, max entries %d)", l.MaxBytes, l.MaxEntries)
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxBytes == 0 {
		dir := filepath.Dir(outPath)
		free, total, err := freeSpace(dir)
		if err != nil {
			return l, fmt.Errorf("cannot tell the free space for %s (%v); give a byte limit", outPath, err)
		}
		l.MaxBytes = max(free-diskReserve(total), 0)
	}
	return l, nil
}

// diskReserve is what an export without an explicit byte limit leaves
// free: 1 GiB, or 5% on a file system smaller than 20 GiB.
func diskReserve(total int64) int64 {
	return min(1<<30, total/20)
}

// tally is what a DAG declares it will write, counted with multiplicity
// (a block linked twice counts twice) and saturating at MaxInt64.
type tally struct {
	bytes, entries int64
}

func (t *tally) add(o tally) {
	t.bytes = satAdd(t.bytes, o.bytes)
	t.entries = satAdd(t.entries, o.entries)
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// declared measures the DAG under root as export would write it, without
// reading file contents: file sizes come from their root blocks, entries
// from the directories' links. Each distinct block is decoded once (the
// result is memoized per CID), so a bomb linking one block a million
// times costs a million additions, not a million reads.
type declared struct {
	ctx  context.Context
	dag  ipld.NodeGetter
	memo map[string]tally // key: role byte + CID bytes
}

func measure(ctx context.Context, dag ipld.NodeGetter, root cid.Cid) (tally, error) {
	d := &declared{ctx: ctx, dag: dag, memo: make(map[string]tally)}
	return d.entry(root, 0)
}

// entry measures c as a file, directory or symlink.
func (d *declared) entry(c cid.Cid, depth int) (tally, error) {
	key := "e" + c.KeyString()
	if t, ok := d.memo[key]; ok {
		return t, nil
	}
	if depth > maxExportDepth {
		return tally{}, fmt.Errorf("directories nest deeper than %d levels", maxExportDepth)
	}
	if err := d.ctx.Err(); err != nil {
		return tally{}, err
	}
	nd, err := d.dag.Get(d.ctx, c)
	if err != nil {
		return tally{}, err
	}
	t := tally{entries: 1}
	switch n := nd.(type) {
	case *merkledag.RawNode:
		t.bytes = int64(len(n.RawData()))
	case *merkledag.ProtoNode:
		fsn, err := ft.FSNodeFromBytes(n.Data())
		if err != nil {
			return tally{}, fmt.Errorf("block %s: %w", c, err)
		}
		switch fsn.Type() {
		case ft.TFile, ft.TRaw:
			t.bytes = int64(min(fsn.FileSize(), math.MaxInt64))
		case ft.TMetadata:
			if len(n.Links()) == 0 {
				return tally{}, fmt.Errorf("block %s: metadata node without content", c)
			}
			return d.entry(n.Links()[0].Cid, depth)
		case ft.TSymlink:
		case ft.TDirectory:
			for _, l := range n.Links() {
				ct, err := d.entry(l.Cid, depth+1)
				if err != nil {
					return tally{}, err
				}
				t.add(ct)
			}
		case ft.THAMTShard:
			ct, err := d.shard(c, n, fsn, depth)
			if err != nil {
				return tally{}, err
			}
			t.add(ct)
		default:
			return tally{}, fmt.Errorf("block %s: unsupported UnixFS type %s", c, fsn.Type())
		}
	default:
		return tally{}, fmt.Errorf("block %s: codec 0x%x is not UnixFS (dag-pb or raw)", c, c.Type())
	}
	d.memo[key] = t
	return t, nil
}

// shard measures the entries of a HAMT directory shard. A link whose name
// is only the bucket prefix is a sub-shard; a longer name is an entry.
func (d *declared) shard(c cid.Cid, n *merkledag.ProtoNode, fsn *ft.FSNode, depth int) (tally, error) {
	key := "s" + c.KeyString()
	if t, ok := d.memo[key]; ok {
		return t, nil
	}
	if depth > maxExportDepth {
		return tally{}, fmt.Errorf("directory shards nest deeper than %d levels", maxExportDepth)
	}
	fanout := fsn.Fanout()
	if fanout < 2 || fanout > 1<<16 || fanout&(fanout-1) != 0 {
		return tally{}, fmt.Errorf("block %s: HAMT fanout %d is invalid", c, fanout)
	}
	padLen := len(fmt.Sprintf("%X", fanout-1))
	var t tally
	for _, l := range n.Links() {
		var ct tally
		var err error
		switch {
		case len(l.Name) > padLen:
			ct, err = d.entry(l.Cid, depth+1)
		case len(l.Name) == padLen:
			var sub ipld.Node
			if sub, err = d.dag.Get(d.ctx, l.Cid); err != nil {
				return tally{}, err
			}
			pn, ok := sub.(*merkledag.ProtoNode)
			if !ok {
				return tally{}, fmt.Errorf("block %s: HAMT shard link %q is not a dag-pb shard", c, l.Name)
			}
			sfsn, ferr := ft.FSNodeFromBytes(pn.Data())
			if ferr != nil || sfsn.Type() != ft.THAMTShard {
				return tally{}, fmt.Errorf("block %s: HAMT shard link %q is not a shard", c, l.Name)
			}
			ct, err = d.shard(l.Cid, pn, sfsn, depth+1)
		default:
			return tally{}, fmt.Errorf("block %s: HAMT link name %q is shorter than its prefix", c, l.Name)
		}
		if err != nil {
			return tally{}, err
		}
		t.add(ct)
	}
	d.memo[key] = t
	return t, nil
}
