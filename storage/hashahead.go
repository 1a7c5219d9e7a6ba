package storage

import (
	"context"
	"io"
	"runtime"
	"sync"
	"unsafe"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/go-cid"
)

// hashAhead runs the read and hash stages of an import in parallel with
// the DAG builder: one goroutine pulls chunks from the chunker (read
// syscalls included) a few chunks ahead, and workers hash each raw leaf
// as soon as it is read. The DAG builder, single-threaded in boxo, then
// finds each leaf's CID ready in the builder returned by Builder instead
// of hashing it itself. Without raw leaves the leaf CID covers a UnixFS
// wrapper, so only the read-ahead applies. The CIDs are the ones the
// wrapped builder computes, so imports stay byte-identical to kubo's.
type hashAhead struct {
	base     cid.Builder // the import's CID builder, raw codec
	hashRaw  bool
	out      chan *aheadChunk
	stop     chan struct{}
	done     chan struct{}
	onChunk  func(n int) // on the consuming goroutine
	mu       sync.Mutex
	ready    map[chunkID]cid.Cid
	stopOnce sync.Once
	err      error // after out is closed
}

type aheadChunk struct {
	data   []byte
	err    error
	c      cid.Cid
	hashed chan struct{}
}

// chunkID names a chunk by where its bytes are: the builder is handed
// the very slice the splitter returned.
type chunkID struct {
	p *byte
	n int
}

func idOf(b []byte) chunkID { return chunkID{unsafe.SliceData(b), len(b)} }

// newHashAhead starts reading spl. Close must be called (it stops the
// reader and waits for it); onChunk, when set, is called with each
// chunk's size as the builder takes it.
func newHashAhead(ctx context.Context, spl chunker.Splitter, base cid.Builder, rawLeaves bool, onChunk func(int)) *hashAhead {
	workers := max(1, runtime.GOMAXPROCS(0))
	// The reader runs at most one chunk per worker ahead of the builder:
	// enough to keep the workers hashing, and each chunk is a MiB the
	// collector lets the heap grow twice over. Twice as many took a 10 GiB
	// import's peak RSS 4–5 MB higher, no faster (docs/BENCHMARKS.md).
	h := &hashAhead{
		base:    base.WithCodec(cid.Raw),
		hashRaw: rawLeaves,
		out:     make(chan *aheadChunk, workers),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		onChunk: onChunk,
		ready:   map[chunkID]cid.Cid{},
	}
	go h.read(ctx, spl, workers)
	return h
}

func (h *hashAhead) read(ctx context.Context, spl chunker.Splitter, workers int) {
	defer close(h.done)
	defer close(h.out)
	sem := make(chan struct{}, workers)
	for {
		data, err := spl.NextBytes()
		if err == nil {
			err = ctx.Err()
		}
		ch := &aheadChunk{data: data, err: err, hashed: make(chan struct{})}
		if err == nil && h.hashRaw && len(data) > 0 {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				ch.c, ch.err = h.base.Sum(ch.data)
				close(ch.hashed)
			}()
		} else {
			close(ch.hashed)
		}
		select {
		case h.out <- ch:
		case <-h.stop:
			<-ch.hashed
			recycle(ch.data)
			return
		}
		if err != nil {
			return
		}
	}
}

// NextBytes hands the builder the next chunk, its CID already known.
func (h *hashAhead) NextBytes() ([]byte, error) {
	ch, ok := <-h.out
	if !ok {
		return nil, h.err
	}
	<-ch.hashed
	if ch.err != nil {
		recycle(ch.data) // a chunk read as the import was cancelled
		h.err = ch.err
		return nil, ch.err
	}
	if h.hashRaw {
		h.mu.Lock()
		h.ready[idOf(ch.data)] = ch.c
		h.mu.Unlock()
	}
	if h.onChunk != nil {
		h.onChunk(len(ch.data))
	}
	return ch.data, nil
}

// Reader is part of chunker.Splitter; the builder does not use it.
func (h *hashAhead) Reader() io.Reader { return nil }

// Close stops the reader goroutine and waits for it. The chunks it read
// that the builder never took go back to their pool.
func (h *hashAhead) Close() {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
	for ch := range h.out {
		<-ch.hashed
		recycle(ch.data)
	}
}

// Builder returns a CID builder that takes leaf CIDs from the hash workers.
// b must be the builder newHashAhead was given.
func (h *hashAhead) Builder(b cid.Builder) cid.Builder { return &aheadBuilder{Builder: b, h: h} }

type aheadBuilder struct {
	cid.Builder
	h *hashAhead
	// raw is set on the builder the DAG builder derives for raw leaves
	// (WithCodec(cid.Raw)): the one whose CIDs the workers computed.
	raw bool
}

func (b *aheadBuilder) Sum(data []byte) (cid.Cid, error) {
	if b.raw && len(data) > 0 {
		b.h.mu.Lock()
		c, ok := b.h.ready[idOf(data)]
		delete(b.h.ready, idOf(data))
		b.h.mu.Unlock()
		if ok {
			return c, nil
		}
	}
	return b.Builder.Sum(data)
}

func (b *aheadBuilder) WithCodec(codec uint64) cid.Builder {
	return &aheadBuilder{Builder: b.Builder.WithCodec(codec), h: b.h, raw: codec == cid.Raw}
}
