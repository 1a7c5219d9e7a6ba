package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// putNode stores a hand-made block, as a peer would serve it.
func putNode(t testing.TB, s *Store, nd ipld.Node) cid.Cid {
	t.Helper()
	if err := s.localDAG.Add(context.Background(), nd); err != nil {
		t.Fatal(err)
	}
	return nd.Cid()
}

// fileNode is a UnixFS file node linking child n times, each link
// declaring childSize bytes; when honest is false it declares no sizes
// at all (a file size of 0) while still linking the content.
func fileNode(t testing.TB, child cid.Cid, childSize uint64, n int, honest bool) *merkledag.ProtoNode {
	t.Helper()
	fsn := ft.NewFSNode(ft.TFile)
	nd := new(merkledag.ProtoNode)
	nd.SetCidBuilder(merkledag.V1CidPrefix())
	for range n {
		if honest {
			fsn.AddBlockSize(childSize)
		}
		if err := nd.AddRawLink("", &ipld.Link{Cid: child, Size: childSize}); err != nil {
			t.Fatal(err)
		}
	}
	data, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	nd.SetData(data)
	return nd
}

// dirNode is a UnixFS directory with n entries prefix0000... all linking child.
func dirNode(t testing.TB, prefix string, child cid.Cid, n int) *merkledag.ProtoNode {
	t.Helper()
	nd := merkledag.NodeWithData(ft.FolderPBData())
	nd.SetCidBuilder(merkledag.V1CidPrefix())
	for i := range n {
		if err := nd.AddRawLink(fmt.Sprintf("%s%05d", prefix, i), &ipld.Link{Cid: child, Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return nd
}

// fileBomb builds a file of len(leaf) * fans[0] * fans[1] * ... bytes out
// of 1+len(fans) blocks, every level linking the one below many times.
func fileBomb(t testing.TB, s *Store, leafSize int, honest bool, fans ...int) cid.Cid {
	t.Helper()
	c := putNode(t, s, merkledag.NewRawNode(bytes.Repeat([]byte{'A'}, leafSize)))
	size := uint64(leafSize)
	for i, fan := range fans {
		// Only the root lies about its size: the reader walks the links.
		c = putNode(t, s, fileNode(t, c, size, fan, honest || i < len(fans)-1))
		size *= uint64(fan)
	}
	return c
}

// dirBomb builds a directory of 1 + n*(1+n) entries out of three blocks.
func dirBomb(t testing.TB, s *Store, n int) cid.Cid {
	t.Helper()
	leaf := putNode(t, s, merkledag.NewRawNode([]byte("x")))
	sub := putNode(t, s, dirNode(t, "f", leaf, n))
	return putNode(t, s, dirNode(t, "d", sub, n))
}

// Issue #13 item 4: three small blocks can declare a terabyte file or a
// directory of millions of entries. Export must refuse before writing,
// naming the declared size and the limit, and nothing may be left behind.
func TestExportRefusesBombs(t *testing.T) {
	s := newStore(t, testConfig(), nil, nil)
	const tib = int64(1) << 40
	tests := []struct {
		name string
		root func() cid.Cid
		lim  ExportLimits
		want []string // in the error
	}{
		{"1 TiB file from 3 blocks, 64 MiB limit", func() cid.Cid { return fileBomb(t, s, 1<<20, true, 1024, 1024) },
			ExportLimits{MaxBytes: 64 << 20}, []string{fmt.Sprint(tib), "1.0 TiB", fmt.Sprint(64 << 20)}},
		{"1 PiB file from 4 blocks, default limit (free disk)", func() cid.Cid { return fileBomb(t, s, 1<<20, true, 1024, 1024, 1024) },
			ExportLimits{}, []string{fmt.Sprint(tib << 10), "1.0 PiB"}},
		{"4 million entries from 3 blocks, default limit", func() cid.Cid { return dirBomb(t, s, 2000) },
			ExportLimits{}, []string{fmt.Sprint(1 + 2000*2001), fmt.Sprint(DefaultMaxEntries)}},
		{"4 million entries, explicit 1000", func() cid.Cid { return dirBomb(t, s, 2000) },
			ExportLimits{MaxEntries: 1000}, []string{fmt.Sprint(1 + 2000*2001), "limit of 1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A safety net for running this against code without limits:
			// the old export would write until the disk was full.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			root := tt.root()
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			err := s.Export(ctx, root, out, tt.lim)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Export of a bomb = %v, want ErrTooLarge", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			t.Logf("error a user sees: %v", err)
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("export left %v behind", left)
			}
		})
	}
}

// Declared sizes can lie: a file root that declares 0 bytes but links a
// terabyte must still stop at the byte limit, having written no more.
func TestExportStopsLyingFileAtLimit(t *testing.T) {
	s := newStore(t, testConfig(), nil, nil)
	root := fileBomb(t, s, 1<<20, false, 1024, 1024)
	const limit = 3<<20 + 12345
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dir := t.TempDir()
	err := s.Export(ctx, root, filepath.Join(dir, "out"), ExportLimits{MaxBytes: limit})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(limit)) {
		t.Fatalf("Export of a lying file = %v, want ErrTooLarge naming the limit %d", err, limit)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("export left %v behind", left)
	}

	// What the writer put on disk before it stopped (export removes it).
	nd, err := s.open(ctx, s.localDAG, root)
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	path := filepath.Join(dir, "partial")
	e := &exporter{ctx: ctx, lim: ExportLimits{MaxBytes: limit, MaxEntries: 10}}
	if err := e.write(nd, path, ""); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write = %v, want ErrTooLarge", err)
	}
	if info, err := os.Stat(path); err != nil || info.Size() != limit {
		t.Fatalf("partial file = %v, %v; want exactly the limit, %d bytes", info, err, limit)
	}
}

// A DAG within its limits still exports (directories, files, links).
func TestExportWithinLimits(t *testing.T) {
	s := newStore(t, testConfig(), nil, nil)
	root := dirBomb(t, s, 3) // 1 + 3*4 = 13 entries, 9 bytes
	out := filepath.Join(t.TempDir(), "out")
	if err := s.Export(context.Background(), root, out, ExportLimits{MaxBytes: 9, MaxEntries: 13}); err != nil {
		t.Fatalf("Export within limits: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "d00002", "f00001")); string(got) != "x" {
		t.Fatalf("exported file = %q", got)
	}
	for _, lim := range []ExportLimits{{MaxBytes: 8, MaxEntries: 13}, {MaxBytes: 9, MaxEntries: 12}} {
		if err := s.Export(context.Background(), root, filepath.Join(t.TempDir(), "out"), lim); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Export one over %+v = %v, want ErrTooLarge", lim, err)
		}
	}
}

// symlinkTree is a directory holding one symlink to target at path
// (a/b/link), or the symlink itself when path is empty.
func symlinkTree(t testing.TB, s *Store, path, target string) cid.Cid {
	t.Helper()
	data, err := ft.SymlinkData(target)
	if err != nil {
		t.Fatal(err)
	}
	link := merkledag.NodeWithData(data)
	link.SetCidBuilder(merkledag.V1CidPrefix())
	c := putNode(t, s, link)
	if path == "" {
		return c
	}
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		dir := merkledag.NodeWithData(ft.FolderPBData())
		dir.SetCidBuilder(merkledag.V1CidPrefix())
		if err := dir.AddRawLink(parts[i], &ipld.Link{Cid: c, Size: 1}); err != nil {
			t.Fatal(err)
		}
		// A sibling file and directory, so links inside have a target.
		if i == 0 {
			f := putNode(t, s, merkledag.NewRawNode([]byte("inside")))
			if err := dir.AddRawLink("file", &ipld.Link{Cid: f, Size: 6}); err != nil {
				t.Fatal(err)
			}
		}
		c = putNode(t, s, dir)
	}
	return c
}

// Issue #13 items 12 and 1: symlinks are written only when they stay
// inside the output, and not at all where content must be plain files
// (a job module that is a symlink to /dev/zero crashed WASM miners).
func TestExportSymlinks(t *testing.T) {
	s := newStore(t, testConfig(), nil, nil)
	tests := []struct {
		name, path, target string
		noSymlinks         bool
		ok                 bool
	}{
		{"module is a symlink to /dev/zero (item 1)", "", "/dev/zero", true, false},
		{"input dir holds a symlink to /dev/zero", "in/zero", "/dev/zero", true, false},
		{"relative link where links are refused", "a/link", "../file", true, false},
		{"root is a symlink", "", "file", false, false},
		{"absolute target", "link", "/etc/passwd", false, false},
		{"escapes the root", "a/link", "../../etc/passwd", false, false},
		{"escapes from the top", "link", "../x", false, false},
		{"dot-dot after a name", "link", "a/../../x", false, false},
		{"dot-dot through a link", "a/link", "b/../../file", false, false},
		{"empty target", "link", "", false, false},
		{"sibling", "link", "file", false, true},
		{"up one, inside", "a/link", "../file", false, true},
		{"dot prefix", "a/b/link", "./../../file", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := symlinkTree(t, s, tt.path, tt.target)
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			err := s.Export(context.Background(), root, out, ExportLimits{NoSymlinks: tt.noSymlinks})
			if tt.ok {
				if err != nil {
					t.Fatalf("Export = %v, want the link written", err)
				}
				got, err := os.Readlink(filepath.Join(out, tt.path))
				if err != nil || got != tt.target {
					t.Fatalf("link = %q, %v; want %q", got, err, tt.target)
				}
				return
			}
			if !errors.Is(err, ErrSymlink) {
				t.Fatalf("Export = %v, want ErrSymlink", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.target)) {
				t.Errorf("error %q does not name the target %q", err, tt.target)
			}
			if tt.path != "" && !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the link %s", err, tt.path)
			}
			t.Logf("error a user sees: %v", err)
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("export left %v behind", left)
			}
		})
	}
}

// A HAMT-sharded directory is measured through its shards: sub-shards
// are not entries, the names behind the bucket prefix are.
func TestExportCountsShardedDirectory(t *testing.T) {
	cfg := testConfig()
	cfg.HAMTThreshold = 1024
	s := newStore(t, cfg, nil, nil)
	entries := map[string]files.Node{}
	for i := range 600 {
		entries[fmt.Sprintf("file-%03d", i)] = files.NewBytesFile([]byte("ab"))
	}
	ctx := context.Background()
	root, err := s.AddNode(ctx, files.NewMapDirectory(entries), AddOptions{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	if nd, _ := s.localDAG.Get(ctx, root); !strings.Contains(fmt.Sprint(mustFSType(t, nd)), "HAMT") {
		t.Fatalf("root is %v, want a HAMT shard", mustFSType(t, nd))
	}
	d, err := measure(ctx, s.localDAG, root)
	if err != nil || d != (tally{bytes: 1200, entries: 601}) {
		t.Fatalf("measure = %+v, %v; want 1200 bytes in 601 entries", d, err)
	}
	if err := s.Export(ctx, root, filepath.Join(t.TempDir(), "out"), ExportLimits{MaxBytes: 1200, MaxEntries: 601}); err != nil {
		t.Fatalf("Export at the limits: %v", err)
	}
	if err := s.Export(ctx, root, filepath.Join(t.TempDir(), "out"), ExportLimits{MaxBytes: 1200, MaxEntries: 600}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Export one entry over = %v, want ErrTooLarge", err)
	}
}

func mustFSType(t *testing.T, nd ipld.Node) string {
	t.Helper()
	fsn, err := ft.ExtractFSNode(nd)
	if err != nil {
		t.Fatal(err)
	}
	return fsn.Type().String()
}
