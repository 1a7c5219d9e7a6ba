package storage

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bspb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	blocks "github.com/ipfs/go-block-format"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Two imports at once, each of several batches of megabyte leaves,
// share the pool their leaves' buffers go back to (recycleLeaves): each
// file reads back as it was, and its DAG checks out block by block, in a
// pack store and in an older repo's flatfs.
func TestImportsSurviveLeafBufferReuse(t *testing.T) {
	cfg := testConfig()
	cfg.Chunker = "size-1048576"
	files := [][]byte{randomBytes(4*importBatchSize+3<<19, 46), randomBytes(4*importBatchSize+5<<18, 47)}
	for _, flat := range []bool{false, true} {
		t.Run(fmt.Sprintf("flatfs=%v", flat), func(t *testing.T) {
			repo := t.TempDir()
			if flat {
				makeFlatfsRepo(t, repo)
			}
			s, err := New(cfg, repo, nil, nil, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			roots := make([]cid.Cid, len(files))
			errs := make([]error, len(files))
			var wg sync.WaitGroup
			for i, data := range files {
				wg.Go(func() {
					roots[i], errs[i] = s.AddReader(context.Background(), bytes.NewReader(data), AddOptions{})
				})
			}
			wg.Wait()
			for i, data := range files {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				checkComplete(t, s, roots[i], data)
			}
		})
	}
}

// A peer whose want for a root reached this node before the root did is
// sent it as soon as an import stores it: imports write past bitswap and
// announce what they stored to its server (announceImported). The peer
// here is a bare bitswap endpoint that asks once and never again, so
// only the announcement can answer it.
func TestImportAnswersEarlierWant(t *testing.T) {
	cfg := testConfig()
	data := randomBytes(3<<20, 48)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// The root the import will have, from an offline store.
	want, err := newStore(t, cfg, nil, nil).AddReader(ctx, bytes.NewReader(data), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	holder := newNodes(t, 1, cfg)[0]
	asker := newHost(t)
	got := make(chan blocks.Block, 1)
	net := bsnet.NewFromIpfsHost(asker)
	net.Start(blockReceiver(got))
	t.Cleanup(net.Stop)
	connect(t, asker, holder.h)
	msg := bsmsg.New(true)
	msg.AddEntry(want, 1, bspb.Message_Wantlist_Block, false)
	if err := net.SendMessage(ctx, holder.h.ID(), msg); err != nil {
		t.Fatal(err)
	}
	for !slices.Contains(holder.s.bswap.WantlistForPeer(asker.ID()), want) {
		select {
		case <-ctx.Done():
			t.Fatal("the holder never recorded the want")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if c, err := holder.s.AddReader(ctx, bytes.NewReader(data), AddOptions{}); err != nil || c != want {
		t.Fatalf("import gave %s, %v; want %s", c, err, want)
	}
	select {
	case b := <-got:
		if b.Cid() != want {
			t.Fatalf("sent %s, want the root %s", b.Cid(), want)
		}
	case <-ctx.Done():
		t.Fatal("the root was never sent: the import did not tell bitswap it had it")
	}
}

// blockReceiver passes on the first block a bitswap endpoint receives.
type blockReceiver chan<- blocks.Block

func (r blockReceiver) ReceiveMessage(_ context.Context, _ peer.ID, m bsmsg.BitSwapMessage) {
	for _, b := range m.Blocks() {
		select {
		case r <- b:
		default:
		}
	}
}
func (blockReceiver) ReceiveError(error)       {}
func (blockReceiver) PeerConnected(peer.ID)    {}
func (blockReceiver) PeerDisconnected(peer.ID) {}

// A fetch on this node that waits for a leaf is handed it when an import
// here stores it (a copy: the import reuses the leaf's buffer). The node
// has no peers, so nothing else could answer the fetch.
func TestImportHandsWantedLeafToLocalFetch(t *testing.T) {
	cfg := testConfig()
	data := randomBytes(3<<20, 49)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s := newNodes(t, 1, cfg)[0].s
	root, err := s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf := firstLeaf(t, s, root)
	if err := s.Blockstore().DeleteBlock(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	fetched := make(chan error, 1)
	go func() {
		_, err := s.Fetch(ctx, root, FetchOptions{})
		fetched <- err
	}()
	for !slices.Contains(s.bswap.GetWantlist(), leaf) {
		select {
		case err := <-fetched:
			t.Fatalf("fetch ended before the leaf was there: %v", err)
		case <-ctx.Done():
			t.Fatal("the fetch never asked for the missing leaf")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if c, err := s.AddReader(ctx, bytes.NewReader(data), AddOptions{}); err != nil || c != root {
		t.Fatalf("import gave %s, %v; want %s", c, err, root)
	}
	if err := <-fetched; err != nil {
		t.Fatalf("the waiting fetch was not handed the imported leaf: %v", err)
	}
	checkComplete(t, s, root, data)
}
