package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func dsKey(c cid.Cid) string { return dshelp.MultihashToDsKey(c.Hash()).String()[1:] }

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string // empty: valid
	}{
		{"default", func(*Config) {}, ""},
		{"legacy", func(c *Config) { *c = LegacyConfig() }, ""},
		{"rabin", func(c *Config) { c.Chunker = "rabin-262144-524288-1048576" }, ""},
		{"bad chunker", func(c *Config) { c.Chunker = "size-abc" }, `storage.chunker = "size-abc"`},
		{"cid version", func(c *Config) { c.CIDVersion = 2 }, "storage.cid_version = 2"},
		{"max links", func(c *Config) { c.MaxLinks = 1 }, "storage.max_links = 1"},
		{"quota", func(c *Config) { c.MaxBytes = -5 }, "storage.max_bytes = -5"},
		{"fanout", func(c *Config) { c.HAMTFanout = 100 }, "storage.hamt_fanout = 100"},
		{"estimation", func(c *Config) { c.HAMTEstimation = "guess" }, `storage.hamt_estimation = "guess"`},
		{"timeout", func(c *Config) { c.FetchTimeout = 0 }, "storage.fetch_timeout = 0s"},
		{"concurrency", func(c *Config) { c.FetchConcurrency = 0 }, "storage.fetch_concurrency = 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	big := randomBytes(5<<20+123, 1)
	tests := []struct {
		name string
		tree map[string][]byte // a single "file" key means: add that file alone
		cfg  func() Config
	}{
		{"file 5MiB", map[string][]byte{"file": big}, testConfig},
		{"file 5MiB legacy", map[string][]byte{"file": big}, func() Config {
			c := LegacyConfig()
			c.Chunker = "size-65536"
			return c
		}},
		{"file rabin", map[string][]byte{"file": big[:1<<20]}, func() Config {
			c := testConfig()
			c.Chunker = "rabin-16384-65536-131072"
			return c
		}},
		{"empty file", map[string][]byte{"file": {}}, testConfig},
		{"directory", map[string][]byte{
			"a.txt":             []byte("hello\n"),
			"sub/b.bin":         big[:300_000],
			"sub/deeper/c.txt":  []byte("c"),
			"empty":             nil,
			"sub/empty-too":     nil,
			"zero-length-file":  {},
			"sub/deeper/d.data": big[1000:70000],
		}, testConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t, tt.cfg(), nil, nil)
			src := writeTree(t, tt.tree)
			in := src
			_, single := tt.tree["file"]
			if single {
				in = filepath.Join(src, "file")
			}
			var lastDone, lastTotal int64
			c, err := s.Add(ctx, in, AddOptions{Progress: func(done, total int64) { lastDone, lastTotal = done, total }})
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			var size int64
			for _, b := range tt.tree {
				size += int64(len(b))
			}
			if lastDone != size || lastTotal != size {
				t.Errorf("last progress = %d/%d, want %d/%d", lastDone, lastTotal, size, size)
			}
			out := filepath.Join(t.TempDir(), "out")
			if err := s.Export(ctx, c, out, ExportLimits{}); err != nil {
				t.Fatalf("Export: %v", err)
			}
			if single {
				got, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tt.tree["file"]) {
					t.Fatalf("exported file differs: %d bytes, want %d", len(got), len(tt.tree["file"]))
				}
			} else {
				sameTree(t, readTree(t, src), readTree(t, out))
			}
			pins, err := s.Pins(ctx)
			if err != nil || len(pins) != 1 || pins[0] != c {
				t.Errorf("Pins = %v, %v; want [%s]", pins, err, c)
			}
			if err := s.Export(ctx, c, out, ExportLimits{}); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("Export over an existing path = %v, want an 'already exists' error", err)
			}
		})
	}
}

func TestCatRanges(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, testConfig(), nil, nil)
	data := randomBytes(1<<20+77, 2)
	c, err := s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"all", 0, -1, data},
		{"head", 0, 10, data[:10]},
		{"across chunks", 65536 - 5, 10, data[65536-5 : 65536+5]},
		{"tail", int64(len(data)) - 7, -1, data[len(data)-7:]},
		{"past end", int64(len(data)) - 3, 100, data[len(data)-3:]},
		{"at end", int64(len(data)), -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Cat(ctx, c, tt.offset, tt.length)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
	if _, err := s.Cat(ctx, c, int64(len(data))+1, 1); err == nil {
		t.Error("Cat past the end succeeded")
	}
}

func TestAddErrors(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, testConfig(), nil, nil)
	missing := filepath.Join(t.TempDir(), "no-such-file.bin")
	_, err := s.Add(ctx, missing, AddOptions{})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Add(missing) = %v, want an error naming %s", err, missing)
	}
	t.Logf("error a user sees: %v", err)

	// A cancelled import leaves no pin, so nothing points at missing blocks.
	ctx2, cancel := context.WithCancel(ctx)
	// Cancel once more than one write batch (128 nodes = 8 MiB) is on disk.
	_, err = s.AddReader(ctx2, bytes.NewReader(randomBytes(12<<20, 3)), AddOptions{Progress: func(done, _ int64) {
		if done > 10<<20 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Add = %v, want context.Canceled", err)
	}
	if pins, _ := s.Pins(ctx); len(pins) != 0 {
		t.Fatalf("pins after a cancelled import: %v", pins)
	}
	// Whatever was written is garbage, and GC can walk every pin.
	if _, err := s.GC(ctx); err != nil {
		t.Fatalf("GC after cancelled import: %v", err)
	}
	if st, err := s.Stat(ctx); err != nil || st.Blocks != 0 {
		t.Fatalf("Stat after cancelled import + GC = %+v, %v; want no blocks", st, err)
	}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, testConfig(), nil, nil)
	kept, err := s.AddReader(ctx, bytes.NewReader(randomBytes(300_000, 4)), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := s.AddReader(ctx, bytes.NewReader(randomBytes(200_000, 5)), AddOptions{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 200_000 bytes in 64 KiB raw leaves is 4 leaves + 1 root node.
	if res.Blocks != 5 || res.Bytes < 200_000 {
		t.Errorf("GC removed %+v, want the 5 blocks (>= 200000 bytes) of the unpinned file", res)
	}
	if err := s.Export(ctx, kept, filepath.Join(t.TempDir(), "kept"), ExportLimits{}); err != nil {
		t.Errorf("pinned content lost: %v", err)
	}
	if err := s.Export(ctx, dropped, filepath.Join(t.TempDir(), "dropped"), ExportLimits{}); err == nil {
		t.Error("unpinned content still exportable after GC")
	}
	after, _ := s.Stat(ctx)
	if after.Blocks != before.Blocks-int64(res.Blocks) || after.Pins != 1 {
		t.Errorf("Stat after GC = %+v, before %+v", after, before)
	}
	// Pin works on content that is already here, and GC then keeps it.
	late, err := s.AddReader(ctx, bytes.NewReader(randomBytes(100_000, 9)), AddOptions{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, late); err != nil {
		t.Fatal(err)
	}
	if res, err := s.GC(ctx); err != nil || res.Blocks != 0 {
		t.Fatalf("GC after Pin = %+v, %v; want nothing removed", res, err)
	}
	if err := s.Unpin(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stat(ctx); st.Blocks != 0 || st.Pins != 0 {
		t.Errorf("Stat after unpin + GC = %+v, want empty", st)
	}
}

func TestQuota(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.MaxBytes = 1 << 20
	s := newStore(t, cfg, nil, nil)
	_, err := s.AddReader(ctx, bytes.NewReader(randomBytes(2<<20, 6)), AddOptions{})
	if !errors.Is(err, ErrQuotaExceeded) || !strings.Contains(err.Error(), "storage.max_bytes = 1048576") {
		t.Fatalf("Add over quota = %v, want ErrQuotaExceeded naming storage.max_bytes", err)
	}
	st, err := s.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pins != 0 || st.Bytes > cfg.MaxBytes || st.MaxBytes != cfg.MaxBytes {
		t.Fatalf("Stat after refused import = %+v", st)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddReader(ctx, bytes.NewReader(randomBytes(100_000, 7)), AddOptions{}); err != nil {
		t.Fatalf("small Add after GC: %v", err)
	}
}

// The pack store writes a header and the key with every block, and its
// usage counts them. The quota counted block bytes only, so the last batch
// it admitted took the blocks past storage.max_bytes: a 1 MiB block was
// admitted under a 1 MiB quota.
func TestQuotaCountsWhatABlockTakesOnDisk(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.MaxBytes = 1 << 20
	s := newStore(t, cfg, nil, nil)
	bs := s.Blockstore()
	used := func() int64 {
		st, err := s.Stat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Bytes
	}
	err := bs.Put(ctx, merkledag.NewRawNode(randomBytes(1<<20, 40)))
	if !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("Put of a block as large as the quota = %v, want ErrQuotaExceeded (its header does not fit)", err)
	}
	const blockLen = 100_000
	for i := 0; ; i++ {
		err := bs.Put(ctx, merkledag.NewRawNode(randomBytes(blockLen, uint64(41+i))))
		if u := used(); u > cfg.MaxBytes {
			t.Fatalf("after %d blocks the blocks take %d bytes, over storage.max_bytes = %d", i+1, u, cfg.MaxBytes)
		}
		if errors.Is(err, ErrQuotaExceeded) {
			if u := used(); u < cfg.MaxBytes-2*blockLen {
				t.Fatalf("refused with %d of %d bytes used: the quota is not filled", u, cfg.MaxBytes)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Issue #13 item 4: storage.max_bytes defaults to 0, and a fetch of a
// large DAG then filled the disk the node and its jobs share. Without a
// quota, a write that would leave less than the reserve free is refused.
func TestNoQuotaKeepsDiskReserve(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, testConfig(), nil, nil)
	const total = 100 << 30 // a 100 GiB disk keeps 1 GiB free
	start := int64(1<<30 + 1<<20)
	s.guard.free = func() (int64, int64, error) {
		used, err := s.blocks.DiskUsage(ctx)
		return start - int64(used), total, err
	}
	if _, err := s.AddReader(ctx, bytes.NewReader(randomBytes(512<<10, 8)), AddOptions{}); err != nil {
		t.Fatalf("Add that leaves the reserve free: %v", err)
	}
	_, err := s.AddReader(ctx, bytes.NewReader(randomBytes(2<<20, 9)), AddOptions{})
	if !errors.Is(err, ErrQuotaExceeded) || !strings.Contains(err.Error(), fmt.Sprint(1<<30)) {
		t.Fatalf("Add into the reserve = %v, want ErrQuotaExceeded naming the 1 GiB reserve", err)
	}
	t.Logf("error a user sees: %v", err)
	if pins, _ := s.Pins(ctx); len(pins) != 1 {
		t.Fatalf("refused import pinned something: %v", pins)
	}
}

// Both block stores: the pack store of new repos and the flatfs store of
// older ones.
func TestCorruptBlockDetected(t *testing.T) {
	for _, kind := range []string{"packs", "flatfs"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			repo := t.TempDir()
			if kind == "flatfs" {
				makeFlatfsRepo(t, repo)
			}
			s, err := New(testConfig(), repo, nil, nil, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			data := randomBytes(200_000, 8)
			c, err := s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			leaf := firstLeaf(t, s, c)
			corruptBlock(t, s, leaf)
			err = s.Export(ctx, c, filepath.Join(t.TempDir(), "out"), ExportLimits{})
			if !errors.Is(err, ErrCorruptBlock) || !strings.Contains(err.Error(), leaf.String()) {
				t.Fatalf("Export of corrupted content = %v, want ErrCorruptBlock naming %s", err, leaf)
			}
			t.Logf("error a user sees: %v", err)
			if has, _ := s.Blockstore().Has(ctx, leaf); has {
				t.Error("corrupt block was not deleted")
			}
			if st, _ := s.Stat(ctx); st.CorruptBlocks != 1 {
				t.Errorf("Stat.CorruptBlocks = %d, want 1", st.CorruptBlocks)
			}
			if _, err := s.GC(ctx); err == nil || !strings.Contains(err.Error(), "nothing was deleted") {
				t.Errorf("GC with an incomplete pin = %v, want a refusal", err)
			}
		})
	}
}

func firstLeaf(t testing.TB, s *Store, root cid.Cid) cid.Cid {
	t.Helper()
	nd, err := s.localDAG.Get(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if len(nd.Links()) == 0 {
		t.Fatalf("%s has no links", root)
	}
	return nd.Links()[0].Cid
}

func TestUnknownCIDTimesOut(t *testing.T) {
	cfg := testConfig()
	cfg.FetchTimeout = 300 * time.Millisecond
	nodes := newNodes(t, 2, cfg)
	h, _ := mh.Sum([]byte("nobody has this"), mh.SHA2_256, -1)
	c := cid.NewCidV1(cid.Raw, h)
	_, err := nodes[1].s.Get(context.Background(), c, filepath.Join(t.TempDir(), "out"), FetchOptions{})
	if !errors.Is(err, ErrFetchTimeout) || !strings.Contains(err.Error(), c.String()) || !strings.Contains(err.Error(), "fetch_timeout") {
		t.Fatalf("Get(unknown) = %v, want ErrFetchTimeout naming %s", err, c)
	}
	t.Logf("error a user sees: %v", err)
}

func TestCloseTwice(t *testing.T) {
	s, err := New(testConfig(), t.TempDir(), newHost(t), nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddReader(context.Background(), strings.NewReader("x"), AddOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v, want ErrClosed", err)
	}
}

// The package must read what it wrote after a restart: pins and blocks persist.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	repo := t.TempDir()
	s, err := New(testConfig(), repo, nil, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.AddNode(ctx, files.NewBytesFile([]byte("persist me")), AddOptions{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := New(testConfig(), repo, nil, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if pins, _ := s2.Pins(ctx); len(pins) != 1 || pins[0] != c {
		t.Fatalf("pins after reopen = %v", pins)
	}
}
