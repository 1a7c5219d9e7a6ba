package storage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"
)

// splitNodes returns n providers that each hold data and a client
// connected to all of them (and only to them).
func splitNodes(t *testing.T, n int, data []byte) (providers []node, client *Store, clientHost host.Host, root cid.Cid) {
	t.Helper()
	return splitNodesWith(t, testConfig(), n, data)
}

func splitNodesWith(t *testing.T, cfg Config, n int, data []byte) (providers []node, client *Store, clientHost host.Host, root cid.Cid) {
	t.Helper()
	ctx := context.Background()
	for range n {
		h := newHost(t)
		s := newStore(t, cfg, h, nil)
		c, err := s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if root.Defined() && c != root {
			t.Fatalf("providers hold different roots %s and %s", root, c)
		}
		root = c
		providers = append(providers, node{h: h, s: s})
	}
	clientHost = newHost(t)
	client = newStore(t, cfg, clientHost, nil)
	for _, p := range providers {
		connect(t, clientHost, p.h)
	}
	return providers, client, clientHost, root
}

// checkComplete asserts that the client holds the whole DAG (verified by
// an offline walk, which hashes every block) and that it reads as data.
func checkComplete(t *testing.T, s *Store, root cid.Cid, data []byte) {
	t.Helper()
	if _, err := s.fetchDAG(context.Background(), s.offline, root, nil, nil); err != nil {
		t.Fatalf("DAG incomplete after the fetch: %v", err)
	}
	if got := readAll(t, s, root); !bytes.Equal(got, data) {
		t.Fatal("fetched content differs")
	}
}

// A fetch from three providers that each hold the DAG takes part of it
// from each of them over /vft/car/2, and only the top over bitswap.
func TestFetchSplitsOverProviders(t *testing.T) {
	data := randomBytes(16<<20, 50)
	providers, client, _, root := splitNodes(t, 3, data)
	var mu sync.Mutex
	var last int64
	progress := func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		last = done
	}
	res, err := client.Fetch(context.Background(), root, FetchOptions{Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	var sent int64
	for i, p := range providers {
		n := p.s.carSent.Load()
		if n == 0 {
			t.Errorf("provider %d sent no block; want every provider to deliver a part", i)
		}
		sent += n
	}
	if res.Fetched != res.Blocks {
		t.Errorf("fetch %+v: want every block fetched", res)
	}
	st, err := client.bswap.Stat()
	if err != nil {
		t.Fatal(err)
	}
	// The root is asked of every peer at once: up to one copy from each.
	if st.BlocksReceived > uint64(len(providers)) {
		t.Errorf("%d blocks came over bitswap, want only the root (at most one copy from each provider)", st.BlocksReceived)
	}
	if sent < int64(res.Blocks-1) {
		t.Errorf("streams sent %d blocks, want at least the %d below the root", sent, res.Blocks-1)
	}
	if last < int64(len(data)) {
		t.Errorf("progress ended at %d, want at least %d", last, len(data))
	}
	checkComplete(t, client, root, data)
}

// A split fetch leaves nothing of its own running once it returns: its
// workers, streams and bitswap session end with it. (Bitswap keeps its
// per-peer streams open, as after any fetch: those are not counted.)
func TestFetchSplitLeavesNoGoroutines(t *testing.T) {
	data := randomBytes(4<<20, 57)
	_, client, _, root := splitNodes(t, 3, data)
	before := fetchGoroutines()
	if _, err := client.Fetch(context.Background(), root, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := fetchGoroutines()
		if len(left) <= len(before) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of a fetch after it returned, %d before:\n%s", len(left), len(before), strings.Join(left, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fetchGoroutines returns the stacks of the goroutines that run this
// package's fetch code or a bitswap session.
func fetchGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") {
			continue
		}
		if strings.Contains(g, "vft/storage.(*Store).carWorker") || strings.Contains(g, "vft/storage.(*Store).fetchMulti") ||
			strings.Contains(g, "vft/storage.(*carSched)") || strings.Contains(g, "session.(*Session).run") ||
			strings.Contains(g, "vft/storage.(*carServer)") {
			out = append(out, g)
		}
	}
	return out
}

// A deep DAG (4 links a node: root, 4, 16, then 64 leaves) is split at
// the level that has enough subtrees; the interior blocks above it come
// over bitswap, all of one level at once.
func TestFetchSplitsDeepDAG(t *testing.T) {
	cfg := testConfig()
	cfg.MaxLinks = 4
	data := randomBytes(4<<20, 60)
	providers, client, _, root := splitNodesWith(t, cfg, 3, data)
	items, err := client.topItems(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := 0
	for _, it := range items {
		if it.c.Type() == cid.Raw {
			raw++
		}
	}
	if len(items) != 64 || raw != 64 {
		t.Errorf("split into %d subtrees (%d leaves), want the 64 leaves", len(items), raw)
	}
	res, err := client.Fetch(context.Background(), root, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sent int64
	for _, p := range providers {
		sent += p.s.carSent.Load()
	}
	if sent < 64 || res.Fetched != res.Blocks-(1+4+16) {
		t.Errorf("streams sent %d blocks, fetch %+v; want the 64 leaves by stream, the %d blocks above them here already", sent, res, 1+4+16)
	}
	checkComplete(t, client, root, data)
}

// A provider that goes away part way is dropped and its subtrees go to
// the others.
func TestFetchSplitProviderKilled(t *testing.T) {
	data := randomBytes(16<<20, 51)
	providers, client, _, root := splitNodes(t, 3, data)
	var once sync.Once
	progress := func(done, total int64) {
		if done > int64(len(data))/4 {
			once.Do(func() { go providers[0].h.Close() })
		}
	}
	if _, err := client.Fetch(context.Background(), root, FetchOptions{Progress: progress}); err != nil {
		t.Fatal(err)
	}
	checkComplete(t, client, root, data)
}

// carSections writes blocks as CAR block sections (no header), as a
// /vft/car/2 reply carries them.
func carSections(blks ...blocks.Block) []byte {
	var b bytes.Buffer
	for _, blk := range blks {
		cb := blk.Cid().Bytes()
		b.Write(binary.AppendUvarint(nil, uint64(len(cb)+len(blk.RawData()))))
		b.Write(cb)
		b.Write(blk.RawData())
	}
	return b.Bytes()
}

// A provider that sends a block that does not match its CID is dropped
// after its first subtree; the fetch completes from the honest ones and
// stores nothing of the lie.
func TestFetchSplitLyingProvider(t *testing.T) {
	data := randomBytes(8<<20, 52)
	_, client, clientHost, root := splitNodes(t, 2, data)
	liar := newHost(t)
	var asked atomic.Int32
	liar.SetStreamHandler(CARMultiProtocol, func(st network.Stream) {
		defer st.Close()
		asked.Add(1)
		items, err := readCARRequests(bufio.NewReader(st))
		if err != nil {
			st.Reset()
			return
		}
		lie, _ := blocks.NewBlockWithCid([]byte("not the block you asked for"), items[0].root)
		st.Write(append([]byte{carOK}, carSections(lie)...))
	})
	connect(t, clientHost, liar)
	if _, err := client.Fetch(context.Background(), root, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the lying provider was asked %d times, want once (then dropped)", n)
	}
	checkComplete(t, client, root, data)
}

// A provider that takes subtrees and then sends nothing does not hold the
// fetch up for storage.fetch_timeout: once the queue is empty, the idle
// providers take copies of its subtrees (end-game), the first copy wins,
// and its stream is reset when the fetch completes.
func TestFetchSplitStalledProvider(t *testing.T) {
	data := randomBytes(8<<20, 58)
	_, client, clientHost, root := splitNodes(t, 2, data)
	client.cfg.FetchTimeout = time.Hour // only end-game can finish in time
	staller := newHost(t)
	reset := make(chan struct{})
	staller.SetStreamHandler(CARMultiProtocol, func(st network.Stream) {
		br := bufio.NewReader(st)
		if _, err := readCARRequests(br); err != nil {
			st.Reset()
			return
		}
		st.Write([]byte{carOK})
		io.Copy(io.Discard, br) // further frames; ends when the client resets
		st.Reset()
		close(reset)
	})
	connect(t, clientHost, staller)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := client.Fetch(ctx, root, FetchOptions{}); err != nil {
		t.Fatalf("fetch with a stalled provider: %v; want the others to take its subtrees", err)
	}
	checkComplete(t, client, root, data)
	<-reset
}

// A provider that holds only part of the DAG is dropped at the first
// subtree it lacks; the other provider delivers the rest.
func TestFetchSplitPartialProvider(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(8<<20, 53)
	providers, client, _, root := splitNodes(t, 2, data)
	// Leave the first provider the root and every other leaf.
	part := providers[0].s
	rootBlk, err := part.Blockstore().Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	links, _ := blockLinks(rootBlk)
	for i, l := range links {
		if i%2 == 1 {
			if err := part.Blockstore().DeleteBlock(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := client.Fetch(ctx, root, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched != res.Blocks {
		t.Errorf("fetch %+v: want every block fetched", res)
	}
	checkComplete(t, client, root, data)
}

// A split fetch resumes: subtrees already here are not asked for, and
// only the missing blocks are written.
func TestFetchSplitResumes(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(8<<20, 54)
	providers, client, _, root := splitNodes(t, 2, data)
	// The client has the root and the first half of the leaves.
	src := providers[0].s
	rootBlk, err := src.Blockstore().Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	links, _ := blockLinks(rootBlk)
	have := append([]cid.Cid{root}, links[:len(links)/2]...)
	for _, c := range have {
		blk, err := src.Blockstore().Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Blockstore().Put(ctx, blk); err != nil {
			t.Fatal(err)
		}
	}
	res, err := client.Fetch(ctx, root, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := res.Blocks - len(have); res.Fetched != want {
		t.Errorf("fetched %d blocks, want the %d missing", res.Fetched, want)
	}
	// End-game may send a missing leaf twice, but no leaf the client
	// had: the providers together sent fewer than the whole DAG.
	if sent := providers[0].s.carSent.Load() + providers[1].s.carSent.Load(); sent >= int64(res.Blocks) {
		t.Errorf("providers sent %d blocks for %d missing of %d", sent, res.Blocks-len(have), res.Blocks)
	}
	checkComplete(t, client, root, data)
}

// A peer that does not speak /vft/car/2 beside one that has the DAG:
// the fetch still streams it.
func TestFetchSplitOldPeer(t *testing.T) {
	data := randomBytes(4<<20, 55)
	providers, client, clientHost, root := splitNodes(t, 1, data)
	connect(t, clientHost, newHost(t)) // speaks neither version
	res, err := client.Fetch(context.Background(), root, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sent := providers[0].s.carSent.Load(); sent < int64(res.Blocks-1) {
		t.Errorf("provider streamed %d of %d blocks", sent, res.Blocks)
	}
	checkComplete(t, client, root, data)
}

// A CID nobody has fails a split fetch with ErrFetchTimeout naming it,
// as a fetch from one peer does.
func TestFetchSplitUnknownCIDTimesOut(t *testing.T) {
	_, client, _, _ := splitNodes(t, 2, randomBytes(1<<10, 56))
	client.cfg.FetchTimeout = 300 * time.Millisecond
	h, _ := mh.Sum([]byte("nobody has this either"), mh.SHA2_256, -1)
	c := cid.NewCidV1(cid.Raw, h)
	_, err := client.Fetch(context.Background(), c, FetchOptions{})
	if !errors.Is(err, ErrFetchTimeout) || !strings.Contains(err.Error(), c.String()) || !strings.Contains(err.Error(), "fetch_timeout") {
		t.Fatalf("Fetch(unknown) = %v, want ErrFetchTimeout naming %s", err, c)
	}
}

// A provider serves one stream per peer, /vft/car/2 included: a second
// stream while the first is open is answered "busy".
func TestCARMultiOneStreamPerPeer(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(256<<10, 59)
	providers, _, clientHost, root := splitNodes(t, 1, data)
	p := providers[0].h.ID()
	frame := appendCARRequest(nil, []carRequestItem{{root, 0}})
	status := func(st network.Stream) byte {
		t.Helper()
		if _, err := st.Write(frame); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := io.ReadFull(st, b[:]); err != nil {
			t.Fatal(err)
		}
		return b[0]
	}
	first, err := clientHost.NewStream(ctx, p, CARMultiProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Reset()
	if got := status(first); got != carOK {
		t.Fatalf("first stream: status %d, want %d (ok)", got, carOK)
	}
	for _, proto := range []protocol.ID{CARMultiProtocol, CARProtocol} {
		second, err := clientHost.NewStream(ctx, p, proto)
		if err != nil {
			t.Fatal(err)
		}
		if proto == CARProtocol {
			frame = append(binary.AppendUvarint(nil, uint64(len(root.Bytes()))), root.Bytes()...)
			frame = binary.AppendUvarint(frame, 0) // skip
		}
		if got := status(second); got != carBusy {
			t.Errorf("%s stream beside an open /vft/car/2 one: status %d, want %d (busy)", proto, got, carBusy)
		}
		second.Reset()
	}
}

func TestReadCARRequests(t *testing.T) {
	a := blocks.NewBlock([]byte("a")).Cid()
	b := blocks.NewBlock([]byte("b")).Cid()
	many := make([]carRequestItem, carMaxRoots+1)
	for i := range many {
		many[i] = carRequestItem{a, 0}
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"two subtrees", appendCARRequest(nil, []carRequestItem{{a, 0}, {b, 7}}), ""},
		{"no subtree", []byte{0}, "want 1 to 64"},
		{"too many subtrees", appendCARRequest(nil, many), "request for 65 subtrees"},
		{"cut short", appendCARRequest(nil, []carRequestItem{{a, 0}, {b, 7}})[:10], io.ErrUnexpectedEOF.Error()},
		{"CID over the limit", append([]byte{1}, binary.AppendUvarint(nil, 1000)...), "root CID of 1000 bytes"},
		{"empty", nil, io.EOF.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := readCARRequests(bufio.NewReader(bytes.NewReader(tc.frame)))
			if tc.want == "" {
				if err != nil || len(items) != 2 || items[0].root != a || items[1].root != b || items[1].skip != 7 {
					t.Fatalf("got %v, %v", items, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, %v; want an error saying %q", items, err, tc.want)
			}
		})
	}
}

// FuzzCARRequests feeds arbitrary bytes to the provider's request
// decoder: it must never panic or return more than carMaxRoots subtrees,
// and what it accepts must encode back to the bytes it read.
func FuzzCARRequests(f *testing.F) {
	a := blocks.NewBlock([]byte("a")).Cid()
	f.Add(appendCARRequest(nil, []carRequestItem{{a, 0}}))
	f.Add(appendCARRequest(nil, []carRequestItem{{a, 3}, {a, 1 << 40}}))
	f.Add([]byte{0x41})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		items, err := readCARRequests(r)
		if err != nil {
			return
		}
		if len(items) == 0 || len(items) > carMaxRoots {
			t.Fatalf("accepted %d subtrees", len(items))
		}
		consumed := len(data) - r.Buffered()
		if enc := appendCARRequest(nil, items); !bytes.Equal(enc, data[:consumed]) && !errors.Is(err, io.EOF) {
			// Non-minimal varints decode to the same items: compare
			// what they mean, not the bytes.
			again, err := readCARRequests(bufio.NewReader(bytes.NewReader(enc)))
			if err != nil || len(again) != len(items) {
				t.Fatalf("re-encoded request does not decode: %v", err)
			}
			for i := range items {
				if again[i] != items[i] {
					t.Fatalf("item %d changed on re-encoding: %v vs %v", i, again[i], items[i])
				}
			}
		}
	})
}

// A fetch that names the DAG's holders streams it from them only: a peer
// it is merely connected to is not asked. Splitting over those (8 of a
// miner's 50 connections, most without the DAG) cost each worker of a job
// at 50 nodes 0.1–0.5 s to stage a 16 KiB input. And a DAG already whole
// here opens no stream, named holders or not.
func TestFetchStreamsOnlyFromNamedHolders(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(3<<20, 61)
	holder := newNodes(t, 1, testConfig())[0]
	root, err := holder.s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clientHost := &carStreamCounter{Host: newHost(t)}
	client := newStore(t, testConfig(), clientHost, nil)
	connect(t, clientHost, holder.h)
	var asked atomic.Int32
	for range 4 {
		h := newHost(t)
		for _, proto := range []protocol.ID{CARProtocol, CARMultiProtocol} {
			h.SetStreamHandler(proto, func(st network.Stream) {
				asked.Add(1)
				st.Reset()
			})
		}
		connect(t, clientHost, h)
	}
	if _, err := client.Fetch(ctx, root, FetchOptions{From: []peer.ID{holder.h.ID()}}); err != nil {
		t.Fatal(err)
	}
	checkComplete(t, client, root, data)
	if n := asked.Load(); n != 0 {
		t.Errorf("the fetch asked %d streams of connected peers it did not name", n)
	}
	if sent := holder.s.carSent.Load(); sent == 0 {
		t.Error("the named holder streamed nothing")
	}

	clientHost.opened.Store(0)
	for _, opts := range []FetchOptions{{From: []peer.ID{holder.h.ID()}}, {}} {
		if _, err := client.Fetch(ctx, root, opts); err != nil {
			t.Fatal(err)
		}
	}
	if n := clientHost.opened.Load(); n != 0 {
		t.Errorf("fetching a DAG already here opened %d streams", n)
	}
}

// carStreamCounter counts the /vft/car streams its host opens.
type carStreamCounter struct {
	host.Host
	opened atomic.Int32
}

func (h *carStreamCounter) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if slices.Contains(pids, CARProtocol) || slices.Contains(pids, CARMultiProtocol) {
		h.opened.Add(1)
	}
	return h.Host.NewStream(ctx, p, pids...)
}
