package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"unsafe"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/files"
)

// The pooled splitter cuts a stream where boxo's size splitter does, so
// imports keep kubo's CIDs, and a chunker it does not pool is boxo's.
func TestLeafSplitterCutsAsBoxo(t *testing.T) {
	const chunk = 64 << 10
	spec := fmt.Sprintf("size-%d", chunk)
	for _, n := range []int{0, 1, chunk - 1, chunk, chunk + 1, 3*chunk + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := randomBytes(n, uint64(n))
			spl, err := newLeafSplitter(bytes.NewReader(data), spec, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, pooled := spl.(*leafSplitter); !pooled {
				t.Fatalf("%s with raw leaves: got %T, want a pooled splitter", spec, spl)
			}
			got := allChunks(t, spl)
			want := allChunks(t, chunker.NewSizeSplitter(bytes.NewReader(data), chunk))
			if len(got) != len(want) {
				t.Fatalf("%d chunks, boxo cuts %d", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("chunk %d differs from boxo's (%d and %d bytes)", i, len(got[i]), len(want[i]))
				}
			}
		})
	}
	for _, c := range []struct {
		spec string
		raw  bool
	}{{"rabin", true}, {"size-1024", true}, {spec, false}} {
		spl, err := newLeafSplitter(bytes.NewReader(nil), c.spec, c.raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, pooled := spl.(*leafSplitter); pooled {
			t.Errorf("%s (raw leaves %v) is pooled; want boxo's own splitter", c.spec, c.raw)
		}
	}
}

func allChunks(t *testing.T, spl chunker.Splitter) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		b, err := spl.NextBytes()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(b))
	}
}

// A buffer given back is the next one handed out; an idle pool gives the
// pages of all but leafPoolKeep buffers back; past leafPoolMaxMapped
// mappings the buffers come from the heap, and go back to
// go-buffer-pool's.
func TestLeafPoolReusesAndTrims(t *testing.T) {
	p := leafPoolFor(64<<10 + 4096) // a size no other test uses
	var bufs [][]byte
	for range leafPoolMaxMapped {
		b := p.get()
		b[0] = 1
		bufs = append(bufs, b)
	}
	heap := p.get()
	if putLeaf(heap) {
		t.Fatalf("buffer %d came from the pool's mappings; want the heap past %d", leafPoolMaxMapped+1, leafPoolMaxMapped)
	}
	for _, b := range bufs {
		if !putLeaf(b) {
			t.Fatal("a mapped buffer was not taken back by its pool")
		}
	}
	if again := p.get(); unsafe.SliceData(again) != unsafe.SliceData(bufs[len(bufs)-1]) {
		t.Error("the pool mapped a new buffer while one was idle")
	} else {
		putLeaf(again)
	}
	p.trim()
	p.mu.Lock()
	warm, cold := len(p.warm), len(p.cold)
	p.mu.Unlock()
	if warm != leafPoolKeep || cold != leafPoolMaxMapped-leafPoolKeep {
		t.Fatalf("after trim: %d buffers resident, %d given back; want %d and %d", warm, cold, leafPoolKeep, leafPoolMaxMapped-leafPoolKeep)
	}
	// A buffer whose pages went back reads as zeros: the system took them.
	p.mu.Lock()
	released := p.cold[0]
	p.mu.Unlock()
	if released[0] != 0 {
		t.Error("a trimmed buffer kept its bytes; its pages were not given back")
	}
}

// Every leaf buffer an import takes goes back to the pool: after a
// whole import, a file of exactly one chunk, an import cancelled half
// way, and one refused by the quota. The one-chunk file's root, which
// the import returns, keeps its bytes once the buffer is reused.
func TestImportGivesItsLeavesBack(t *testing.T) {
	const chunk = 64<<10 + 8192 // a pool of its own
	cfg := testConfig()
	cfg.Chunker = fmt.Sprintf("size-%d", chunk)
	pool := leafPoolFor(chunk)
	allBack := func(t *testing.T, what string) {
		t.Helper()
		pool.mu.Lock()
		mapped, idle := pool.mapped, len(pool.warm)+len(pool.cold)
		pool.mu.Unlock()
		if mapped == 0 {
			t.Fatalf("%s: no leaf came from the pool", what)
		}
		if idle != mapped {
			t.Fatalf("%s: %d of the pool's %d buffers came back", what, idle, mapped)
		}
	}
	ctx := context.Background()
	s := newStore(t, cfg, nil, nil)

	whole := randomBytes(20*chunk+17, 60)
	root, err := s.AddReader(ctx, bytes.NewReader(whole), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, s, root, whole)
	allBack(t, "a whole import")

	one := randomBytes(chunk, 61)
	im := &importer{s: s, ctx: ctx, total: -1}
	nd, err := im.addFile(files.NewBytesFile(one))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddReader(ctx, bytes.NewReader(randomBytes(8*chunk, 62)), AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(nd.RawData(), one) {
		t.Error("the root of a one-chunk file changed once its buffer went back to the pool")
	}
	allBack(t, "a one-chunk file")

	cctx, cancel := context.WithCancel(ctx)
	half := &cancelAfter{r: bytes.NewReader(randomBytes(40*chunk, 63)), n: 20 * chunk, cancel: cancel}
	if _, err := s.AddReader(cctx, half, AddOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled import: %v, want context.Canceled", err)
	}
	allBack(t, "a cancelled import")

	cfg.MaxBytes = 4 * chunk
	small := newStore(t, cfg, nil, nil)
	if _, err := small.AddReader(ctx, bytes.NewReader(randomBytes(30*chunk, 64)), AddOptions{}); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("import past the quota: %v, want ErrQuotaExceeded", err)
	}
	allBack(t, "an import past the quota")
}

// cancelAfter reads r and cancels its import after n bytes.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if c.n -= k; c.n <= 0 {
		c.cancel()
	}
	return k, err
}
