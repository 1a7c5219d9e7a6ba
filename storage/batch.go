package storage

import (
	"context"
	"runtime"
	"sync"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Batch limits, as go-ipld-format's Batch (kubo's adder uses that one),
// for the blocks a fetch writes.
const (
	batchMaxNodes = 128
	batchMaxSize  = 8 << 20
)

// importBatchSize is an import's batch limit in bytes: a batch's leaves
// stay in memory until written, with up to max(2, cores) batches
// writing and one filling. A leaf of the default 1 MiB chunks fills a
// batch: the pack store's two lanes write two at once, and a 10 GiB
// import peaked at 54–56 MiB of RSS against 59–60 with 2 MiB batches and
// 82 with 8, no slower, when the leaves were on the heap
// (docs/BENCHMARKS.md).
const importBatchSize = 1 << 20

// directAfter is how much of a file's import goes through the page cache
// before its blocks are written past it (withDirectWrites,
// directAppender); a file known to be larger is written past it from its
// first byte (importer.addFile). Up to there the cache is the faster way,
// and what was just imported is often read soon (served to a job's
// workers); past it, on the project's test VM, a 10 GiB import took
// 7.3–7.8 s against 12.6–24 s (docs/BENCHMARKS.md). Fetched blocks, read
// back at once, always go through the cache.
const directAfter = 1 << 30

// batchDAG buffers nodes written by the importer and stores them in
// batches in the background, like ipld.BufferedDAG, but Commit, and
// abandon for a failed import, make sure no write is still running once
// an import has returned: otherwise blocks could land after the pin lock
// is released.
type batchDAG struct {
	ipld.DAGService
	ctx context.Context
	// stored, when set, is called with each batch once it is written,
	// and failed with each batch whose write failed.
	stored, failed func(nodes []ipld.Node)
	nodes          []ipld.Node
	size           int
	// flushed is the bytes of the batches sent to be written so far;
	// past directAfter they are written past the page cache.
	flushed, directAfter int64
	sem                  chan struct{}
	wg                   sync.WaitGroup
	mu                   sync.Mutex
	err                  error
}

func newBatchDAG(ctx context.Context, ds ipld.DAGService, stored func(nodes []ipld.Node)) *batchDAG {
	return &batchDAG{DAGService: ds, ctx: ctx, stored: stored, directAfter: directAfter, sem: make(chan struct{}, max(2, runtime.NumCPU()))}
}

func (b *batchDAG) Add(ctx context.Context, nd ipld.Node) error {
	// Kept even when an earlier batch failed: abandon returns it.
	b.nodes = append(b.nodes, nd)
	b.size += len(nd.RawData())
	if err := b.firstErr(); err != nil {
		return err
	}
	if len(b.nodes) >= batchMaxNodes || b.size >= importBatchSize {
		return b.flush()
	}
	return nil
}

func (b *batchDAG) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		if err := b.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

func (b *batchDAG) flush() error {
	if len(b.nodes) == 0 {
		return nil
	}
	select {
	case b.sem <- struct{}{}:
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
	nodes := b.nodes
	ctx := b.ctx
	if b.flushed >= b.directAfter {
		ctx = withDirectWrites(ctx)
	}
	b.flushed += int64(b.size)
	b.nodes, b.size = nil, 0
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() { <-b.sem }()
		if err := b.DAGService.AddMany(ctx, nodes); err != nil {
			b.mu.Lock()
			if b.err == nil {
				b.err = err
			}
			b.mu.Unlock()
			if b.failed != nil {
				b.failed(nodes)
			}
			return
		}
		if b.stored != nil {
			b.stored(nodes)
		}
	}()
	return nil
}

func (b *batchDAG) firstErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Commit writes what is buffered and waits for every write.
func (b *batchDAG) Commit() error {
	err := b.flush()
	b.wg.Wait()
	if err != nil {
		return err
	}
	return b.firstErr()
}

// abandon ends a failed import: it waits for the writes already started
// and returns the nodes that never went out.
func (b *batchDAG) abandon() []ipld.Node {
	b.wg.Wait()
	nodes := b.nodes
	b.nodes, b.size = nil, 0
	return nodes
}

// Get must see nodes still in the buffer (the balanced layout does not
// read back, but the interface allows it).
func (b *batchDAG) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	for _, nd := range b.nodes {
		if nd.Cid().Equals(c) {
			return nd, nil
		}
	}
	return b.DAGService.Get(ctx, c)
}

type directWritesKey struct{}

// withDirectWrites marks a context whose block writes should go past the
// page cache (the pack store's directAppender): an import's blocks after
// its first directAfter bytes (batchDAG).
func withDirectWrites(ctx context.Context) context.Context {
	return context.WithValue(ctx, directWritesKey{}, true)
}

func wantsDirect(ctx context.Context) bool { return ctx.Value(directWritesKey{}) != nil }
