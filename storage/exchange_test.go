package storage

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

func TestExchange(t *testing.T) {
	big := randomBytes(3<<20+17, 10)
	tests := []struct {
		name string
		tree map[string][]byte
		file bool // add tree["file"] alone
	}{
		{"file", map[string][]byte{"file": big}, true},
		{"directory", map[string][]byte{
			"x/one.bin":  big[:1<<20],
			"x/two.txt":  []byte("two"),
			"three.bin":  big[5:400_000],
			"empty-dir":  nil,
			"x/y/z.data": big[2<<20:],
			// An empty file is a 0-byte raw block, which bitswap never
			// sends: the fetch must still complete.
			"x/empty.txt": {},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			nodes := newNodes(t, 2, testConfig())
			src := writeTree(t, tt.tree)
			in := src
			if tt.file {
				in = filepath.Join(src, "file")
			}
			c, err := nodes[0].s.Add(ctx, in, AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var lastDone, lastTotal int64
			out := filepath.Join(t.TempDir(), "out")
			res, err := nodes[1].s.Get(ctx, c, out, FetchOptions{Pin: true, Progress: func(done, total int64) {
				lastDone, lastTotal = done, total
			}})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if res.Fetched != res.Blocks || res.Blocks < 2 {
				t.Errorf("FetchResult = %+v, want every block fetched", res)
			}
			if lastDone != lastTotal || lastDone != res.Bytes {
				t.Errorf("last progress %d/%d, want %d/%d", lastDone, lastTotal, res.Bytes, res.Bytes)
			}
			if tt.file {
				got, err := os.ReadFile(out)
				if err != nil || !bytes.Equal(got, big) {
					t.Fatalf("fetched file differs (%d bytes, err %v)", len(got), err)
				}
			} else {
				sameTree(t, readTree(t, src), readTree(t, out))
			}
			if pins, _ := nodes[1].s.Pins(ctx); len(pins) != 1 || pins[0] != c {
				t.Errorf("pins on the fetching node = %v, want [%s]", pins, c)
			}
			// A second Get finds everything on disk.
			res2, err := nodes[1].s.Fetch(ctx, c, FetchOptions{})
			if err != nil || res2.Fetched != 0 || res2.Blocks != res.Blocks {
				t.Errorf("second Fetch = %+v, %v; want %d blocks, none fetched", res2, err, res.Blocks)
			}
		})
	}
}

func TestResumeAfterCancel(t *testing.T) {
	cfg := testConfig()
	cfg.FetchConcurrency = 2
	nodes := newNodes(t, 2, cfg)
	ctx := context.Background()
	data := randomBytes(5<<20, 11) // 80 leaves of 64 KiB
	c, err := nodes[0].s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := nodes[1].s

	ctx1, cancel := context.WithCancel(ctx)
	_, err = b.Fetch(ctx1, c, FetchOptions{Progress: func(done, total int64) {
		if done > 2<<20 {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("cancelled fetch succeeded")
	}
	st, err := b.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks < 20 || st.Blocks > 70 {
		t.Fatalf("%d blocks on disk after cancelling at 2 MiB of 5, want a partial DAG", st.Blocks)
	}

	writtenBefore := b.guard.written.Load()
	out := filepath.Join(t.TempDir(), "out")
	res, err := b.Get(ctx, c, out, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Fetched counts what bitswap delivered; written counts what reached
	// the disk. Both must be exactly the blocks that were missing.
	if want := res.Blocks - int(st.Blocks); res.Fetched != want {
		t.Errorf("resumed fetch got %d blocks from the network, want the %d missing ones (FetchResult %+v)", res.Fetched, want, res)
	}
	if w := b.guard.written.Load() - writtenBefore; w != int64(res.Fetched) {
		t.Errorf("resumed fetch wrote %d blocks, want %d", w, res.Fetched)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed file differs (%d bytes, err %v)", len(got), err)
	}
}

// A block corrupted on disk is deleted when read and fetched again from a peer.
// The block was fetched moments before, so hash_on_read skips its SHA-256
// (guardedBlockstore.hashedRecently): the pack record's CRC-32C is what
// catches the rot here.
func TestCorruptBlockRefetched(t *testing.T) {
	ctx := context.Background()
	nodes := newNodes(t, 2, testConfig())
	data := randomBytes(1<<20, 12)
	c, err := nodes[0].s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := nodes[1].s
	if _, err := b.Fetch(ctx, c, FetchOptions{Pin: true}); err != nil {
		t.Fatal(err)
	}
	leaf := firstLeaf(t, b, c)
	corruptBlock(t, b, leaf)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := b.Get(ctx, c, out, FetchOptions{}); err != nil {
		t.Fatalf("Get with a corrupt local block: %v", err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, data) {
		t.Fatal("content differs after repair")
	}
	st, _ := b.Stat(ctx)
	if st.CorruptBlocks != 1 {
		t.Errorf("CorruptBlocks = %d, want 1", st.CorruptBlocks)
	}
	if blk, err := b.Blockstore().Get(ctx, leaf); err != nil || !blk.Cid().Equals(leaf) {
		t.Errorf("repaired block: %v", err)
	}
}

func TestFetchOverQuota(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	nodes := newNodes(t, 1, cfg)
	c, err := nodes[0].s.AddReader(ctx, bytes.NewReader(randomBytes(2<<20, 13)), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxBytes = 1 << 20
	h := newHost(t)
	b := newStore(t, cfg, h, nil)
	connect(t, h, nodes[0].h)
	_, err = b.Get(ctx, c, filepath.Join(t.TempDir(), "out"), FetchOptions{Pin: true})
	if !errors.Is(err, ErrQuotaExceeded) || !strings.Contains(err.Error(), "storage.max_bytes") {
		t.Fatalf("Get over quota = %v, want ErrQuotaExceeded naming storage.max_bytes", err)
	}
	t.Logf("error a user sees: %v", err)
	st, err := b.Stat(ctx)
	if err != nil || st.Pins != 0 || st.Bytes > cfg.MaxBytes {
		t.Fatalf("Stat after refused fetch = %+v, %v", st, err)
	}
}

// The fetching node is not connected to the one that has the content:
// it learns of it from the provider record the importer put on the DHT.
// The fetcher runs no DHT of its own (it asks node 0's), so nothing but
// a provider lookup can connect it to the owner. A fetch then streams the
// DAG from the owner; before, it asked only its connected peers for a
// stream, and bitswap found the owner a second later, through its own
// provider search, to fetch block by block (the stream case failed: the
// owner streamed 0 of the DAG's blocks). Bitswap alone (NoStream) still
// finds the owner by its provider search.
func TestFetchViaDHTProvider(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noStream bool
	}{{"stream", false}, {"bitswap", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			nodes := newNodes(t, 2, testConfig())
			owner := nodes[1]
			h := newHost(t)
			rt := &countingRouting{ContentRouting: nodes[0].d, owner: owner.h.ID()}
			fetcher := newStore(t, testConfig(), h, rt)
			connect(t, h, nodes[0].h)

			data := randomBytes(3<<20, 14)
			c, err := owner.s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			waitProvided(t, nodes[0].d, c, owner.h.ID())
			if h.Network().Connectedness(owner.h.ID()) == network.Connected {
				t.Fatal("fetcher is connected to the owner before fetching")
			}
			out := filepath.Join(t.TempDir(), "out")
			res, err := fetcher.Get(ctx, c, out, FetchOptions{NoStream: tc.noStream})
			if err != nil {
				t.Fatalf("Get via DHT provider: %v", err)
			}
			got, _ := os.ReadFile(out)
			if !bytes.Equal(got, data) {
				t.Fatal("content differs")
			}
			if rt.found.Load() == 0 {
				t.Error("the owner was never found through the DHT")
			}
			streamed, want := owner.s.carSent.Load(), int64(res.Blocks)
			if tc.noStream {
				want = 0
			}
			if streamed != want {
				t.Errorf("the owner streamed %d of the DAG's %d blocks, want %d", streamed, res.Blocks, want)
			}
		})
	}
}

// waitProvided waits until d finds owner's provider record for c (a
// provide runs in the background).
func waitProvided(t testing.TB, d *dht.IpfsDHT, c cid.Cid, owner peer.ID) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		provs, _ := d.FindProviders(context.Background(), c)
		if len(provs) > 0 && provs[0].ID == owner {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("owner's provider record never reached the DHT")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countingRouting counts provider lookups that return owner.
type countingRouting struct {
	routing.ContentRouting
	owner peer.ID
	found atomic.Int64
}

func (r *countingRouting) FindProvidersAsync(ctx context.Context, c cid.Cid, n int) <-chan peer.AddrInfo {
	in := r.ContentRouting.FindProvidersAsync(ctx, c, n)
	out := make(chan peer.AddrInfo)
	go func() {
		defer close(out)
		for ai := range in {
			if ai.ID == r.owner {
				r.found.Add(1)
			}
			select {
			case out <- ai:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// The hosts connect before the stores exist, as when the node dials its
// bootstrap peers first: bitswap must still use that connection. Then
// Close must stop everything the Store started: the goroutine count goes
// back to what the hosts and DHTs alone use.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	ctx := context.Background()
	ha, hb := newHost(t), newHost(t)
	da, db := newDHT(t, ha), newDHT(t, hb)
	connect(t, hb, ha)
	time.Sleep(200 * time.Millisecond) // let the DHTs settle after connecting
	before := runtime.NumGoroutine()

	cfg := testConfig()
	cfg.ReprovideInterval = time.Hour
	a, err := New(cfg, t.TempDir(), ha, da, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg, t.TempDir(), hb, db, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.AddReader(ctx, bytes.NewReader(randomBytes(500_000, 15)), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Fetch(ctx, c, FetchOptions{Pin: true}); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(a.Close(), b.Close()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("%d goroutines after Close, %d before New:\n%s", runtime.NumGoroutine(), before, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
