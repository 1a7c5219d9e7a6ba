package storage

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// fuzzSeeds are real encoded blocks: an imported file and directory, a
// symlink, a HAMT shard, and the bombs of export_limits_test.go.
func fuzzSeeds(f *testing.F, s *Store) (roots [][]byte) {
	f.Helper()
	ctx := context.Background()
	raw := func(c cid.Cid) []byte {
		nd, err := s.localDAG.Get(ctx, c)
		if err != nil {
			f.Fatal(err)
		}
		return nd.RawData()
	}
	file, err := s.AddReader(ctx, strings.NewReader(strings.Repeat("seed data ", 20000)), AddOptions{NoPin: true})
	if err != nil {
		f.Fatal(err)
	}
	dir, err := s.AddNode(ctx, files.NewMapDirectory(map[string]files.Node{
		"a.txt": files.NewBytesFile([]byte("a")),
		"sub":   files.NewMapDirectory(map[string]files.Node{"b.bin": files.NewBytesFile([]byte{0, 1, 2})}),
		"link":  files.NewLinkFile("a.txt", nil),
	}), AddOptions{NoPin: true}, -1)
	if err != nil {
		f.Fatal(err)
	}
	cfg := testConfig()
	cfg.HAMTThreshold = 1 // every directory becomes a HAMT shard
	hs := newStore(f, cfg, nil, nil)
	hamt, err := hs.AddNode(ctx, files.NewMapDirectory(map[string]files.Node{
		"x": files.NewBytesFile([]byte("x")), "y": files.NewBytesFile([]byte("y")),
	}), AddOptions{NoPin: true}, -1)
	if err != nil {
		f.Fatal(err)
	}
	hnd, err := hs.localDAG.Get(ctx, hamt)
	if err != nil {
		f.Fatal(err)
	}
	sym, _ := ft.SymlinkData("/dev/zero")
	return [][]byte{
		raw(file), raw(dir), hnd.RawData(), sym,
		raw(fileBomb(f, s, 1<<10, true, 1024, 1024)),
		raw(fileBomb(f, s, 1<<10, false, 64, 64)),
		raw(dirBomb(f, s, 50)),
		merkledag.NodeWithData(ft.FolderPBData()).RawData(),
	}
}

// FuzzBlockLinks decodes arbitrary bytes as a dag-pb and a raw block, as a
// fetch does with every block a peer sends: it must never panic.
func FuzzBlockLinks(f *testing.F) {
	s := newStore(f, testConfig(), nil, nil)
	for _, seed := range fuzzSeeds(f, s) {
		f.Add(seed)
	}
	f.Add([]byte{})
	f.Add([]byte{0x12, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, codec := range []uint64{cid.DagProtobuf, cid.Raw} {
			c, err := cid.Prefix{Version: 1, Codec: codec, MhType: 0x12, MhLength: -1}.Sum(data)
			if err != nil {
				t.Fatal(err)
			}
			blk, err := blocks.NewBlockWithCid(data, c)
			if err != nil {
				t.Fatal(err)
			}
			if links, err := blockLinks(blk); err == nil && codec == cid.Raw && len(links) != 0 {
				t.Fatalf("a raw block has links %v", links)
			}
		}
	})
}

// FuzzExport stores arbitrary bytes as a dag-pb root (next to real blocks
// it may link to) and exports it with a small budget. Whatever the bytes,
// the export must not panic, write outside its output, write more than
// the budget, or leave a symlink that points outside the output.
func FuzzExport(f *testing.F) {
	s := newStore(f, testConfig(), nil, nil)
	for _, seed := range fuzzSeeds(f, s) {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	lim := ExportLimits{MaxBytes: 64 << 10, MaxEntries: 64}
	f.Fuzz(func(t *testing.T, data []byte, noSymlinks bool) {
		ctx := context.Background()
		nd, err := merkledag.DecodeProtobuf(data)
		if err != nil {
			return
		}
		nd.SetCidBuilder(merkledag.V1CidPrefix())
		if err := s.localDAG.Add(ctx, nd); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		l := lim
		l.NoSymlinks = noSymlinks
		err = s.Export(ctx, nd.Cid(), out, l)
		if err != nil {
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("failed export (%v) left %v behind", err, left)
			}
			return
		}
		if left, _ := os.ReadDir(dir); len(left) != 1 {
			t.Fatalf("export wrote %v next to its output", left)
		}
		var size, entries int64
		err = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			entries++
			info, err := d.Info()
			if err != nil {
				return err
			}
			switch {
			case info.Mode().IsRegular():
				size += info.Size()
			case info.Mode()&fs.ModeSymlink != 0:
				if noSymlinks {
					t.Fatalf("symlink %s written with NoSymlinks", path)
				}
				target, _ := os.Readlink(path)
				resolved := filepath.Join(filepath.Dir(path), target)
				if filepath.IsAbs(target) || (resolved != out && !strings.HasPrefix(resolved, out+string(filepath.Separator))) {
					t.Fatalf("symlink %s -> %q points outside %s", path, target, out)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if size > l.MaxBytes || entries > l.MaxEntries {
			t.Fatalf("export wrote %d bytes in %d entries, over %+v", size, entries, l)
		}
	})
}

// FuzzMeasure checks that the declared tally never panics and that an
// export it lets through stays within what it declared or is stopped.
func FuzzMeasure(f *testing.F) {
	s := newStore(f, testConfig(), nil, nil)
	for _, seed := range fuzzSeeds(f, s) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		nd, err := merkledag.DecodeProtobuf(data)
		if err != nil {
			return
		}
		nd.SetCidBuilder(merkledag.V1CidPrefix())
		if err := s.localDAG.Add(ctx, nd); err != nil {
			t.Fatal(err)
		}
		d, err := measure(ctx, s.localDAG, nd.Cid())
		if err != nil {
			return // missing or malformed blocks are errors, not panics
		}
		if d.bytes < 0 || d.entries < 1 {
			t.Fatalf("tally %+v: bytes must not be negative and the root counts as an entry", d)
		}
	})
}

// FuzzImportRoundTrip imports arbitrary bytes (as `vft add` of a file, with
// chunks small enough that some inputs span several leaves) and exports
// them again: the bytes must come back unchanged.
func FuzzImportRoundTrip(f *testing.F) {
	cfg := testConfig()
	cfg.Chunker = "size-256"
	s := newStore(f, cfg, nil, nil)
	f.Add([]byte{})
	f.Add([]byte("hello"))
	f.Add([]byte(strings.Repeat("\x00\xff", 700)))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		c, err := s.AddReader(ctx, bytes.NewReader(data), AddOptions{NoPin: true})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		if err := s.Export(ctx, c, out, ExportLimits{MaxBytes: int64(len(data)), MaxEntries: 1}); err != nil {
			t.Fatalf("export of %d imported bytes within exactly that budget: %v", len(data), err)
		}
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip of %d bytes gave %d bytes, %v", len(data), len(got), err)
		}
	})
}
