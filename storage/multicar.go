package storage

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// CARMultiProtocol streams several subtrees of a DAG in one stream, so a
// client can split one fetch over every provider that holds the DAG and
// give the faster ones more of it. The client walks the top of the DAG
// itself and asks each provider for batches of subtrees; it checks every
// block against its own walk of the subtree, as with CARProtocol.
//
// Request frame: uvarint n (1..carMaxRoots), then n times: uvarint
// length, subtree root CID bytes, uvarint skip (blocks of the subtree's
// walk the client already has). A client may write further frames on the
// same stream while it reads the replies (pipelining) and closes its
// write side when it wants no more. Reply, per requested subtree in
// order: one status byte (carOK, carNotFound, or carBusy for the first
// subtree of a stream the provider cannot serve now, after which it
// closes); after carOK, the block sections (uvarint length, CID, bytes)
// of the subtree in dagOrder from position skip on. There is no CAR
// header and no terminator: the client's own walk says where a subtree
// ends. A provider that lacks a block part way resets the stream.
const CARMultiProtocol = protocol.ID("/vft/car/2")

const (
	// carMaxRoots bounds the subtrees of one request frame.
	carMaxRoots = 64
	// A client asks each provider for batches of up to this many
	// subtrees or bytes (by the links' declared sizes)...
	carBatchItems = 16
	carBatchBytes = 8 << 20
	// ...and keeps this many batches requested ahead of the one it
	// reads, so a provider never waits a round trip for more work.
	carPipeline = 2
	// The client expands interior blocks at the top of the DAG (fetched
	// over bitswap) until it has this many subtrees to hand out.
	carMinItems = 64
)

// carRequestItem is one subtree of a request frame.
type carRequestItem struct {
	root cid.Cid
	skip uint64
}

func appendCARRequest(b []byte, items []carRequestItem) []byte {
	b = binary.AppendUvarint(b, uint64(len(items)))
	for _, it := range items {
		rb := it.root.Bytes()
		b = binary.AppendUvarint(b, uint64(len(rb)))
		b = append(b, rb...)
		b = binary.AppendUvarint(b, it.skip)
	}
	return b
}

// readCARRequests reads one request frame of CARMultiProtocol. It returns
// io.EOF when the stream ends cleanly before a frame.
func readCARRequests(r *bufio.Reader) ([]carRequestItem, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n == 0 || n > carMaxRoots {
		return nil, fmt.Errorf("request for %d subtrees, want 1 to %d", n, carMaxRoots)
	}
	items := make([]carRequestItem, 0, n)
	for range n {
		c, skip, err := readCARRequest(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		items = append(items, carRequestItem{c, skip})
	}
	return items, nil
}

// handleMulti answers CARMultiProtocol. It shares handle's caps: one
// stream per peer (of either version) and carMaxStreams in all.
func (cs *carServer) handleMulti(st network.Stream) {
	defer st.Close()
	s := cs.s
	p := st.Conn().RemotePeer()
	_ = st.SetReadDeadline(time.Now().Add(carStatusTimeout))
	br := bufio.NewReader(st)
	items, err := readCARRequests(br)
	if err != nil {
		s.log.Debug("car/2 stream: bad request", "peer", p, "err", err)
		st.Reset()
		return
	}
	if !cs.acquire(p) {
		st.Write([]byte{carBusy})
		return
	}
	defer cs.release(p)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	bw := bufio.NewWriterSize(st, 256<<10)
	sent := 0
	for {
		for _, it := range items {
			if has, err := s.bstore.Has(ctx, it.root); err != nil || !has {
				bw.WriteByte(carNotFound)
				bw.Flush()
				s.log.Debug("car/2 stream: subtree not here", "peer", p, "root", it.root, "sent", sent)
				return
			}
			bw.WriteByte(carOK)
			n, err := cs.stream(ctx, bw, it.root, it.skip)
			sent += n
			if err != nil {
				// Reset, not close: the client must not take a cut
				// subtree for a finished one.
				s.log.Debug("car/2 stream ended early", "peer", p, "root", it.root, "sent", sent, "err", err)
				st.Reset()
				return
			}
		}
		if err := bw.Flush(); err != nil {
			return
		}
		// The client pipelines its frames; one that goes quiet for a
		// whole fetch timeout without closing gives its slot back.
		_ = st.SetReadDeadline(time.Now().Add(s.cfg.FetchTimeout))
		items, err = readCARRequests(br)
		if errors.Is(err, io.EOF) {
			s.log.Debug("car/2 stream sent", "peer", p, "blocks", sent)
			return
		}
		if err != nil {
			s.log.Debug("car/2 stream: bad request", "peer", p, "err", err)
			st.Reset()
			return
		}
	}
}

// carItem is one subtree of a fetch split over providers.
type carItem struct {
	c      cid.Cid
	size   uint64 // declared by the parent's link; 0 when unknown
	done   bool
	copies int       // workers fetching it now
	since  time.Time // when the first of them asked
}

// carSched hands subtrees to provider workers as they ask (pull-based:
// a faster provider asks more often and so gets more), takes back those
// of a worker that failed, and at the tail lets an idle worker duplicate
// the item outstanding longest (end-game); the first copy to arrive wins.
type carSched struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*carItem
	active map[*carItem]struct{} // handed out, not done
	left   int                   // items not done
	cancel context.CancelFunc    // called when every item is done
	ctx    context.Context
	// stored holds the blocks a worker of this fetch is storing or has
	// stored: an end-game copy of a subtree is read and checked but not
	// written again, so the count of blocks written stays exact.
	stored sync.Map // cid.Cid → struct{}
}

func newCarSched(ctx context.Context, items []*carItem) *carSched {
	ctx, cancel := context.WithCancel(ctx)
	cs := &carSched{queue: items, active: map[*carItem]struct{}{}, left: len(items), ctx: ctx, cancel: cancel}
	cs.cond = sync.NewCond(&cs.mu)
	context.AfterFunc(ctx, func() {
		cs.mu.Lock()
		cs.cond.Broadcast()
		cs.mu.Unlock()
	})
	if len(items) == 0 {
		cancel()
	}
	return cs
}

// take returns the next batch for a worker. A busy worker (one with
// batches still to read) gets nil when the queue is empty; an idle one
// gets a duplicate of the oldest item only one worker is fetching, or
// waits. ok is false once every item is done or the fetch is cancelled.
func (cs *carSched) take(idle bool) (batch []*carItem, ok bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for {
		if cs.left == 0 || cs.ctx.Err() != nil {
			return nil, false
		}
		if len(cs.queue) > 0 {
			var bytes uint64
			for len(cs.queue) > 0 && len(batch) < carBatchItems && (len(batch) == 0 || bytes+cs.queue[0].size <= carBatchBytes) {
				it := cs.queue[0]
				cs.queue = cs.queue[1:]
				bytes += it.size
				it.copies++
				it.since = time.Now()
				cs.active[it] = struct{}{}
				batch = append(batch, it)
			}
			return batch, true
		}
		if !idle {
			return nil, true
		}
		var oldest *carItem
		for it := range cs.active {
			if it.copies == 1 && (oldest == nil || it.since.Before(oldest.since)) {
				oldest = it
			}
		}
		if oldest != nil {
			oldest.copies++
			return []*carItem{oldest}, true
		}
		cs.cond.Wait()
	}
}

// finish records that a copy of it arrived whole.
func (cs *carSched) finish(it *carItem) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	it.copies--
	if !it.done {
		it.done = true
		cs.left--
		delete(cs.active, it)
		if cs.left == 0 {
			cs.cancel()
		}
	}
	cs.cond.Broadcast()
}

// release gives back the items of a worker that stopped: those no other
// worker is fetching go back to the front of the queue.
func (cs *carSched) release(items []*carItem) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var back []*carItem
	for _, it := range items {
		it.copies--
		if !it.done && it.copies == 0 {
			delete(cs.active, it)
			back = append(back, it)
		}
	}
	cs.queue = append(back, cs.queue...)
	cs.cond.Broadcast()
}

// fetchMulti splits the DAG under root over providers with
// CARMultiProtocol: it takes the root and the interior blocks at the top
// from here or over bitswap, turns the subtrees below into items and runs
// one worker per provider. spoke is false when no provider speaks
// CARMultiProtocol (the caller then tries CARProtocol). Whatever no
// stream delivered is left to bitswap, as with fetchCAR.
//
// When no peer sends the root within storage.fetch_timeout it returns
// ErrFetchTimeout: the walk would only wait as long again for it.
func (s *Store) fetchMulti(ctx context.Context, root cid.Cid, providers []peer.ID, progress func(blocks.Block)) (written int, spoke bool, err error) {
	before := s.guard.written.Load()
	defer func() { written = int(s.guard.written.Load() - before) }()
	items, err := s.topItems(ctx, root, progress)
	if err != nil {
		if errors.Is(err, errRootTimeout) && ctx.Err() == nil {
			return 0, false, fmt.Errorf("%w: no peer sent root block %s within storage.fetch_timeout = %s; check that a peer that has it is connected",
				ErrFetchTimeout, root, s.cfg.FetchTimeout)
		}
		s.log.Debug("car/2: top of the DAG not fetched", "root", root, "err", err)
		return 0, false, nil
	}
	sched := newCarSched(ctx, items)
	defer sched.cancel()
	var opened atomic.Int32
	var wg sync.WaitGroup
	for _, p := range providers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.carWorker(sched, p, &opened, progress)
			if err != nil && sched.ctx.Err() == nil {
				s.log.Debug("car/2: provider dropped", "peer", p, "root", root, "blocks", n, "err", err)
				return
			}
			s.log.Debug("car/2: provider done", "peer", p, "root", root, "blocks", n)
		}()
	}
	wg.Wait()
	return 0, opened.Load() > 0, nil
}

var errRootTimeout = errors.New("root block not sent in time")

// topItems returns the subtrees to hand out: the root's, expanded level
// by level through interior blocks until there are carMinItems of them.
func (s *Store) topItems(ctx context.Context, root cid.Cid, progress func(blocks.Block)) ([]*carItem, error) {
	// The bitswap session lives as long as its context: end it here.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ses := blockservice.NewSession(ctx, s.bserv)
	items := []*carItem{{c: root}}
	for len(items) < carMinItems {
		var interior []cid.Cid
		for _, it := range items {
			if it.c.Type() == cid.DagProtobuf {
				interior = append(interior, it.c)
			}
		}
		if len(interior) == 0 {
			break
		}
		got, err := s.topBlocks(ctx, ses, interior, progress)
		if err != nil && len(interior) == 1 && interior[0] == root && errors.Is(err, context.DeadlineExceeded) {
			return nil, errRootTimeout
		}
		if err != nil {
			return nil, err
		}
		var next []*carItem
		seen := map[cid.Cid]bool{}
		for _, it := range items {
			blk, ok := got[it.c]
			if !ok {
				next = append(next, it)
				continue
			}
			nd, err := merkledag.DecodeProtobuf(blk.RawData())
			if err != nil {
				return nil, fmt.Errorf("decode block %s: %w", it.c, err)
			}
			for _, l := range nd.Links() {
				if !seen[l.Cid] {
					seen[l.Cid] = true
					next = append(next, &carItem{c: l.Cid, size: l.Size})
				}
			}
		}
		items = next
	}
	return items, nil
}

// topBlocks returns the blocks cs from here or, all asked at once and
// within storage.fetch_timeout, over bitswap (which verifies and stores
// them).
func (s *Store) topBlocks(ctx context.Context, ses *blockservice.Session, cs []cid.Cid, progress func(blocks.Block)) (map[cid.Cid]blocks.Block, error) {
	got := make(map[cid.Cid]blocks.Block, len(cs))
	var missing []cid.Cid
	for _, c := range cs {
		if blk, err := s.bstore.Get(ctx, c); err == nil {
			got[c] = blk
		} else {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return got, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	for blk := range ses.GetBlocks(ctx, missing) {
		got[blk.Cid()] = blk
		if progress != nil {
			progress(blk)
		}
	}
	if len(got) < len(cs) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%d of %d blocks at the top of the DAG not received", len(cs)-len(got), len(cs))
	}
	return got, nil
}

// carPending is a subtree requested from a provider, with the client's
// walk of it from where the request skipped to.
type carPending struct {
	it    *carItem
	order *dagOrder
}

// carWorker fetches batches of subtrees from p until none are left or p
// fails; its outstanding items then go back to the scheduler.
func (s *Store) carWorker(sched *carSched, p peer.ID, opened *atomic.Int32, progress func(blocks.Block)) (blocks int, err error) {
	ctx := sched.ctx
	st, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, "car"), p, CARMultiProtocol)
	if err != nil {
		return 0, err
	}
	opened.Add(1)
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	var pending [][]carPending
	defer func() {
		for _, batch := range pending {
			items := make([]*carItem, len(batch))
			for i, pd := range batch {
				items[i] = pd.it
			}
			sched.release(items)
		}
		if err != nil {
			st.Reset()
		} else {
			st.Close()
		}
	}()
	br := bufio.NewReaderSize(st, 256<<10)
	closed := false
	for {
		for !closed && len(pending) < carPipeline {
			batch, ok := sched.take(len(pending) == 0)
			if !ok {
				if len(pending) == 0 {
					return blocks, nil
				}
				closed = true
				st.CloseWrite()
				break
			}
			if batch == nil {
				break
			}
			req, wanted, err := s.carRequest(ctx, sched, batch)
			if err != nil {
				return blocks, err
			}
			if len(wanted) == 0 {
				continue
			}
			pending = append(pending, wanted)
			if _, err := st.Write(req); err != nil {
				return blocks, err
			}
		}
		if len(pending) == 0 {
			if closed {
				return blocks, nil
			}
			continue
		}
		for len(pending[0]) > 0 {
			pd := pending[0][0]
			n, err := s.readCARItem(ctx, sched, st, br, pd, progress)
			blocks += n
			if err != nil {
				return blocks, fmt.Errorf("subtree %s: %w", pd.it.c, err)
			}
			pending[0] = pending[0][1:]
			sched.finish(pd.it)
		}
		pending = pending[1:]
	}
}

// carRequest builds the request frame for batch, each subtree skipping
// what is here already; subtrees that are here whole are finished at once.
// On error it has given the whole batch back.
func (s *Store) carRequest(ctx context.Context, sched *carSched, batch []*carItem) ([]byte, []carPending, error) {
	var req []carRequestItem
	var wanted []carPending
	for i, it := range batch {
		order, skip, err := s.localPrefix(ctx, it.c)
		if err != nil {
			back := batch[i:]
			for _, pd := range wanted {
				back = append(back, pd.it)
			}
			sched.release(back)
			return nil, nil, err
		}
		if len(order.stack) == 0 {
			sched.finish(it)
			continue
		}
		req = append(req, carRequestItem{it.c, skip})
		wanted = append(wanted, carPending{it, order})
	}
	if len(req) == 0 {
		return nil, nil, nil
	}
	return appendCARRequest(nil, req), wanted, nil
}

// readCARItem reads one subtree's reply, checking every block against
// the client's walk, and stores it in batches.
func (s *Store) readCARItem(ctx context.Context, sched *carSched, st network.Stream, br *bufio.Reader, pd carPending, progress func(blocks.Block)) (int, error) {
	_ = st.SetReadDeadline(time.Now().Add(s.cfg.FetchTimeout))
	status, err := br.ReadByte()
	if err != nil {
		return 0, fmt.Errorf("status: %w", err)
	}
	switch status {
	case carOK:
	case carNotFound:
		return 0, errors.New("provider does not have it")
	case carBusy:
		return 0, errors.New("provider busy")
	default:
		return 0, fmt.Errorf("unknown status %d", status)
	}
	cr := &carReader{r: br, order: pd.order}
	n, err := s.readBatches(st, cr, progress, func(b []blocks.Block) error {
		if err := s.putClaimed(ctx, sched, b); err != nil {
			return err
		}
		recycleBlocks(b)
		return nil
	})
	if errors.Is(err, io.EOF) {
		return n, nil
	}
	return n, err
}

// putClaimed stores the blocks of batch that no other worker of the
// fetch has claimed.
func (s *Store) putClaimed(ctx context.Context, sched *carSched, batch []blocks.Block) error {
	mine := batch[:0:0]
	for _, blk := range batch {
		if _, taken := sched.stored.LoadOrStore(blk.Cid(), struct{}{}); !taken {
			mine = append(mine, blk)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	// Not cancelled with the fetch: a block claimed here may be the
	// only copy of a finished subtree that is being written.
	if err := s.bstore.PutMany(context.WithoutCancel(withHashedOnArrival(ctx)), mine); err != nil {
		for _, blk := range mine {
			sched.stored.Delete(blk.Cid())
		}
		return err
	}
	return nil
}
