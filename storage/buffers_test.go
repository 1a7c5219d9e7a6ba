package storage

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

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
	files := [][]byte{randomBytes(4*batchMaxSize+3<<19, 46), randomBytes(4*batchMaxSize+5<<18, 47)}
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

// A peer that asked for a root before this node had it gets the DAG once
// an import stores it, though imports now write past bitswap and announce
// what they stored (announceImported). (Its session would also ask again
// within a second or so, so this shows the import is served, not that the
// announcement alone serves it.)
func TestImportServesWaitingPeer(t *testing.T) {
	cfg := testConfig()
	data := randomBytes(3<<20, 48)
	// The root the import will have, from an offline store.
	want, err := newStore(t, cfg, nil, nil).AddReader(context.Background(), bytes.NewReader(data), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodes := newNodes(t, 2, cfg)
	holder, fetcher := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	fetched := make(chan error, 1)
	go func() {
		_, err := fetcher.s.Fetch(ctx, want, FetchOptions{From: []peer.ID{holder.h.ID()}})
		fetched <- err
	}()
	for !slices.Contains(holder.s.bswap.WantlistForPeer(fetcher.h.ID()), want) {
		select {
		case err := <-fetched:
			t.Fatalf("fetch ended before the root was there: %v", err)
		case <-ctx.Done():
			t.Fatal("the fetcher never asked the holder for the root")
		case <-time.After(10 * time.Millisecond):
		}
	}
	got, err := holder.s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
	if err != nil || got != want {
		t.Fatalf("import gave %s, %v; want %s", got, err, want)
	}
	if err := <-fetched; err != nil {
		t.Fatalf("the waiting fetch did not get the imported DAG: %v", err)
	}
	checkComplete(t, fetcher.s, want, data)
}
