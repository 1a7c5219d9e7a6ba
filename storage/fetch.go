package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	pin "github.com/ipfs/boxo/pinning/pinner"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// FetchOptions tune one fetch.
type FetchOptions struct {
	// Pin pins the root recursively once every block is here.
	Pin bool
	// Progress reports bytes of blocks present so far against the DAG's
	// cumulative size (known once the root block is here, -1 before).
	Progress Progress
	// Limits bounds what Get writes (Fetch writes no files and ignores
	// it); the zero value is what fits on the output's disk.
	Limits ExportLimits
	// From names peers known to hold the whole DAG (a job's submitter, a
	// worker with its result): only they are asked to stream it (one
	// CARProtocol stream, or a split over several). Without From, the
	// peers the DHT's provider records name are (findHolders), or, when
	// it names none within holderWait, the connected peers. Bitswap asks
	// every connected peer either way.
	From []peer.ID
	// NoStream fetches over bitswap only (benchmarks compare the two).
	NoStream bool
}

// FetchResult says what a fetch did.
type FetchResult struct {
	Root   cid.Cid
	Blocks int   // blocks in the DAG
	Bytes  int64 // bytes of those blocks
	// Fetched counts blocks that came from the network; the rest were
	// already on disk (from an earlier, interrupted fetch for instance).
	Fetched int
}

// Fetch makes every block of the DAG under c present locally, asking
// peers (bitswap, DHT providers) for what is missing with at most
// storage.fetch_concurrency requests at a time. Each block is written to
// disk as it arrives, so a fetch that is cancelled or fails resumes from
// there the next time. When no block arrives for storage.fetch_timeout
// the fetch fails with ErrFetchTimeout, naming the block it waited for.
func (s *Store) Fetch(ctx context.Context, c cid.Cid, opts FetchOptions) (FetchResult, error) {
	if err := s.live(); err != nil {
		return FetchResult{}, err
	}
	if !c.Defined() {
		return FetchResult{}, errors.New("fetch: undefined CID")
	}
	unlock := s.gcl.PinLock(ctx)
	defer unlock.Unlock(ctx)

	streamed := 0
	walkProgress := opts.Progress
	if s.host != nil && !opts.NoStream && !s.whole(ctx, c) {
		// Streams from the peers that have it all, when there are any;
		// the walk below then finds every block here and fetches over
		// bitswap only what no stream delivered. Workers of a split
		// fetch report progress concurrently.
		var mu sync.Mutex
		var done, total int64 = 0, -1
		progress := func(blk blocks.Block) {
			mu.Lock()
			defer mu.Unlock()
			if blk.Cid() == c {
				total = dagTotal(blk)
			}
			done += int64(len(blk.RawData()))
			if total >= 0 {
				done = min(done, total) // end-game copies arrive twice
			}
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
		}
		holders := opts.From
		if len(holders) == 0 {
			holders = s.findHolders(ctx, c)
		}
		providers := s.carProviders(holders)
		spoke := false
		if len(providers) > 1 {
			// Several candidates: split the DAG over all that have it.
			var err error
			streamed, spoke, err = s.fetchMulti(ctx, c, providers, progress)
			if err != nil {
				return FetchResult{Root: c}, fmt.Errorf("fetch %s: %w", c, err)
			}
		}
		if !spoke {
			// One provider, or none speaking /vft/car/2: one stream.
			n, _ := s.fetchCAR(ctx, c, providers, progress)
			streamed += n
		}
		mu.Lock()
		streamedBytes := done
		mu.Unlock()
		if opts.Progress != nil && streamedBytes > 0 {
			// The walk counts from zero again; a bar must not go back.
			walkProgress = func(d, t int64) { opts.Progress(max(d, streamedBytes), t) }
		}
	}
	res, err := s.fetchDAG(ctx, s.bserv, c, walkProgress, nil)
	res.Fetched += streamed
	if err != nil {
		return res, fmt.Errorf("fetch %s: %w", c, err)
	}
	if opts.Pin {
		if err := s.pinner.PinWithMode(ctx, c, pin.Recursive, ""); err != nil {
			return res, fmt.Errorf("pin %s: %w", c, err)
		}
		if err := s.pinner.Flush(ctx); err != nil {
			return res, fmt.Errorf("pin %s: %w", c, err)
		}
		s.provide(c)
	}
	return res, nil
}

// whole says whether every block of the DAG under c is here, as a
// stream's request would find (a module the submitter checks before its
// offer, an input a worker staged for an earlier job): then no peer is
// asked for a stream.
func (s *Store) whole(ctx context.Context, c cid.Cid) bool {
	order, _, err := s.localPrefix(ctx, c)
	return err == nil && len(order.stack) == 0
}

// A fetch that names no holder looks them up on the DHT first: it waits
// up to holderWait for a provider record, and once one is found up to
// holderGrace for more, so that the DAG can be split over several.
// Bitswap alone would find a holder it is not connected to only after its
// own provider search, which starts a second after the fetch, and would
// then fetch block by block.
const (
	holderWait  = time.Second
	holderGrace = 100 * time.Millisecond
)

// findHolders returns the peers that provider records on the DHT name as
// holders of c, connected to, at most carMaxProviders; none without a
// DHT, or when none answers in time.
func (s *Store) findHolders(ctx context.Context, c cid.Cid) []peer.ID {
	if s.rt == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, holderWait)
	defer cancel()
	found := s.rt.FindProvidersAsync(ctx, c, carMaxProviders)
	var holders []peer.ID
	var grace <-chan time.Time
	for {
		select {
		case ai, ok := <-found:
			if !ok {
				return holders
			}
			if ai.ID == s.host.ID() || slices.Contains(holders, ai.ID) {
				continue
			}
			if err := s.host.Connect(ctx, ai); err != nil {
				s.log.Debug("provider of a fetch not reachable", "cid", c, "peer", ai.ID, "err", err)
				continue
			}
			holders = append(holders, ai.ID)
			if grace == nil {
				grace = time.After(holderGrace)
			}
		case <-grace:
			return holders
		case <-ctx.Done():
			return holders
		}
	}
}

// walker is a bounded worker pool over a queue of CIDs to visit.
type walker struct {
	s        *Store
	ctx      context.Context
	root     cid.Cid
	ses      *blockservice.Session
	progress Progress
	onBlock  func(cid.Cid)

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []cid.Cid
	seen     map[string]struct{}
	inflight int
	waiting  map[cid.Cid]time.Time // blocks being requested, since when
	lastDone time.Time
	err      error
	res      FetchResult
	total    int64
}

// fetchDAG walks the DAG under root through bserv; with the offline
// blockservice it only checks that the DAG is complete. onBlock, when
// set, is called (serially) with every CID of the DAG.
func (s *Store) fetchDAG(ctx context.Context, bserv blockservice.BlockService, root cid.Cid, progress Progress, onBlock func(cid.Cid)) (FetchResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := &walker{
		s: s, ctx: ctx, root: root, progress: progress, onBlock: onBlock,
		ses:      blockservice.NewSession(ctx, bserv),
		queue:    []cid.Cid{root},
		seen:     map[string]struct{}{root.KeyString(): {}},
		total:    -1,
		res:      FetchResult{Root: root},
		waiting:  map[cid.Cid]time.Time{},
		lastDone: time.Now(),
	}
	w.cond = sync.NewCond(&w.mu)
	stop := make(chan struct{})
	defer close(stop)
	go w.watchdog(cancel, stop)
	var wg sync.WaitGroup
	for range s.cfg.FetchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work()
		}()
	}
	wg.Wait()
	return w.res, w.err
}

func (w *walker) work() {
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && w.inflight > 0 && w.err == nil {
			w.cond.Wait()
		}
		if w.err != nil || len(w.queue) == 0 {
			w.cond.Broadcast()
			w.mu.Unlock()
			return
		}
		c := w.queue[0]
		w.queue = w.queue[1:]
		w.inflight++
		w.waiting[c] = time.Now()
		w.mu.Unlock()

		links, size, fetched, err := w.visit(c)

		w.mu.Lock()
		w.inflight--
		delete(w.waiting, c)
		w.lastDone = time.Now()
		if err != nil && w.err == nil {
			w.err = err
		}
		if err == nil {
			w.res.Blocks++
			w.res.Bytes += size
			if fetched {
				w.res.Fetched++
			}
			if w.onBlock != nil {
				w.onBlock(c)
			}
			for _, l := range links {
				if _, ok := w.seen[l.KeyString()]; !ok {
					w.seen[l.KeyString()] = struct{}{}
					w.queue = append(w.queue, l)
				}
			}
			if w.progress != nil {
				w.progress(w.res.Bytes, w.total)
			}
		}
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

// visit makes c present and returns its links. A raw leaf already on disk
// is not read at all, which keeps resuming a large fetch cheap.
func (w *walker) visit(c cid.Cid) (links []cid.Cid, size int64, fetched bool, err error) {
	has, err := w.s.bstore.Has(w.ctx, c)
	if err != nil {
		return nil, 0, false, err
	}
	if has && c.Type() == cid.Raw && c != w.root {
		n, err := w.s.bstore.GetSize(w.ctx, c)
		return nil, int64(n), false, err
	}
	if !has {
		// An empty raw block is never sent over bitswap (boxo answers a
		// want for a 0-byte block with HAVE only), so a file that is empty
		// in a result could never be fetched. Its content is known from
		// its CID: check the hash and store it locally.
		if blk, ok := emptyBlock(c); ok {
			if err := w.s.bstore.Put(w.ctx, blk); err != nil {
				return nil, 0, false, err
			}
			return nil, 0, true, nil
		}
	}
	blk, err := w.ses.GetBlock(w.ctx, c)
	if err != nil {
		return nil, 0, false, w.explain(c, err)
	}
	links, err = blockLinks(blk)
	if err != nil {
		return nil, 0, false, err
	}
	if c == w.root {
		w.setTotal(blk)
	}
	return links, int64(len(blk.RawData())), !has || w.s.guard.wasCorrupt(c), nil
}

func (w *walker) setTotal(blk blocks.Block) {
	total := dagTotal(blk)
	w.mu.Lock()
	w.total = total
	w.mu.Unlock()
}

// dagTotal is the size of the DAG under a root block, as the block
// declares it (its own size for a raw block).
func dagTotal(blk blocks.Block) int64 {
	total := int64(len(blk.RawData()))
	if blk.Cid().Type() == cid.DagProtobuf {
		if nd, err := merkledag.DecodeProtobuf(blk.RawData()); err == nil {
			if sz, err := nd.Size(); err == nil {
				total = int64(sz)
			}
		}
	}
	return total
}

// watchdog fails the fetch when no block has arrived for
// storage.fetch_timeout, naming the block waited on longest. A stall
// timeout rather than one per block: on a slow link a large DAG keeps
// many requests queued, and none of them is lost while blocks flow.
func (w *walker) watchdog(cancel context.CancelCauseFunc, stop <-chan struct{}) {
	timeout := w.s.cfg.FetchTimeout
	tick := time.NewTicker(min(timeout/4, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		w.mu.Lock()
		var stuck cid.Cid
		var since time.Time
		for c, t := range w.waiting {
			if !stuck.Defined() || t.Before(since) {
				stuck, since = c, t
			}
		}
		stalled := stuck.Defined() && time.Since(w.lastDone) > timeout && time.Since(since) > timeout
		w.mu.Unlock()
		if stalled {
			cancel(w.timeoutError(stuck))
			return
		}
	}
}

func (w *walker) timeoutError(c cid.Cid) error {
	what := "block " + c.String()
	if c == w.root {
		what = "root block " + c.String()
	}
	note := ""
	if w.s.guard.wasCorrupt(c) {
		note = " (the copy on disk was corrupt and has been deleted)"
	}
	return fmt.Errorf("%w: no peer sent %s within storage.fetch_timeout = %s%s; check that a peer that has it is connected",
		ErrFetchTimeout, what, w.s.cfg.FetchTimeout, note)
}

// explain turns a failed block request into an error a user can act on.
func (w *walker) explain(c cid.Cid, err error) error {
	if cause := context.Cause(w.ctx); cause != nil {
		return cause // the watchdog's timeout, or the caller's cancellation
	}
	return w.s.explainLocal(err)
}

// blockLinks returns the children of a UnixFS block (dag-pb or raw).
func blockLinks(blk blocks.Block) ([]cid.Cid, error) {
	switch blk.Cid().Type() {
	case cid.Raw:
		return nil, nil
	case cid.DagProtobuf:
		nd, err := merkledag.DecodeProtobuf(blk.RawData())
		if err != nil {
			return nil, fmt.Errorf("decode block %s: %w", blk.Cid(), err)
		}
		out := make([]cid.Cid, 0, len(nd.Links()))
		for _, l := range nd.Links() {
			out = append(out, l.Cid)
		}
		return out, nil
	}
	return nil, fmt.Errorf("block %s: codec 0x%x is not UnixFS (dag-pb or raw)", blk.Cid(), blk.Cid().Type())
}

// emptyBlock returns the 0-byte raw block when c is its CID (any CID
// version and hash function the node supports).
func emptyBlock(c cid.Cid) (blocks.Block, bool) {
	if c.Type() != cid.Raw {
		return nil, false
	}
	sum, err := c.Prefix().Sum(nil)
	if err != nil || !sum.Equals(c) {
		return nil, false
	}
	blk, err := blocks.NewBlockWithCid(nil, c)
	return blk, err == nil
}
