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

	"github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multihash"
)

// CARProtocol streams a whole DAG in one request, in a fixed depth-first
// order, as the block sections of a CARv1 file (varint length, CID, bytes).
// Bitswap asks for blocks a few at a time and pays a round trip and a
// want-list update per batch; a peer that holds the whole DAG (a job's
// submitter, a worker with its result) can instead send it at the speed
// of the link. Bitswap stays for discovery, many providers and whatever a
// stream did not deliver.
//
// Request: uvarint length, root CID bytes, uvarint skip (blocks of the
// order the client already has, to resume). Reply: one status byte; when
// carOK, the CARv1 header (uvarint length, dag-cbor {roots: [root],
// version: 1}) and then the block sections from position skip on. The
// stream ends after the last block, or early when the provider lacks a
// block (the client fetches the rest over bitswap).
const CARProtocol = protocol.ID("/vft/car/1")

const (
	carOK       byte = 0
	carNotFound byte = 1
	carBusy     byte = 2

	// carMaxSection bounds one block section before anything is
	// allocated: the largest block bitswap moves (2 MiB) and its CID.
	carMaxSection = 2<<20 + 256
	carMaxCIDLen  = 256
	carMaxHeader  = 1 << 10
	// A provider serves one stream per peer at a time, and this many in all.
	carMaxStreams = 8
	// How long a client waits for a provider's status byte.
	carStatusTimeout = 5 * time.Second
)

// dagOrder is the order both ends walk a DAG: depth-first, links in
// order, each block once. The client checks that every block arriving is
// the next one of its own walk, so a provider can send nothing else.
type dagOrder struct {
	stack []cid.Cid
	seen  map[string]struct{}
}

func newDAGOrder(root cid.Cid) *dagOrder {
	return &dagOrder{stack: []cid.Cid{root}, seen: map[string]struct{}{root.KeyString(): {}}}
}

func (d *dagOrder) next() (cid.Cid, bool) {
	if len(d.stack) == 0 {
		return cid.Undef, false
	}
	c := d.stack[len(d.stack)-1]
	d.stack = d.stack[:len(d.stack)-1]
	return c, true
}

// push adds a visited block's links, so the first link comes next.
func (d *dagOrder) push(links []cid.Cid) {
	for i := len(links) - 1; i >= 0; i-- {
		k := links[i].KeyString()
		if _, ok := d.seen[k]; ok {
			continue
		}
		d.seen[k] = struct{}{}
		d.stack = append(d.stack, links[i])
	}
}

// unpop puts back the block next() just returned.
func (d *dagOrder) unpop(c cid.Cid) { d.stack = append(d.stack, c) }

// carServer answers CARProtocol requests from the local store.
type carServer struct {
	s      *Store
	sent   *atomic.Int64 // blocks sent, all streams (tests read it)
	mu     sync.Mutex
	active map[peer.ID]bool
	total  int
}

func (cs *carServer) acquire(p peer.ID) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.active[p] || cs.total >= carMaxStreams {
		return false
	}
	cs.active[p] = true
	cs.total++
	return true
}

func (cs *carServer) release(p peer.ID) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.active, p)
	cs.total--
}

func (cs *carServer) handle(st network.Stream) {
	defer st.Close()
	s := cs.s
	_ = st.SetReadDeadline(time.Now().Add(carStatusTimeout))
	br := bufio.NewReader(st)
	root, skip, err := readCARRequest(br)
	if err != nil {
		s.log.Debug("car stream: bad request", "peer", st.Conn().RemotePeer(), "err", err)
		st.Reset()
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	p := st.Conn().RemotePeer()
	if !cs.acquire(p) {
		st.Write([]byte{carBusy})
		return
	}
	defer cs.release(p)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	if has, err := s.bstore.Has(ctx, root); err != nil || !has {
		st.Write([]byte{carNotFound})
		return
	}
	bw := bufio.NewWriterSize(st, 256<<10)
	bw.WriteByte(carOK)
	if err := writeCARHeader(bw, root); err != nil {
		return
	}
	sent, err := cs.stream(ctx, bw, root, skip)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		s.log.Debug("car stream ended early", "peer", p, "root", root, "sent", sent, "err", err)
		return
	}
	s.log.Debug("car stream sent", "peer", p, "root", root, "blocks", sent, "skipped", skip)
}

// stream writes the DAG's blocks in dagOrder after the first skip.
func (cs *carServer) stream(ctx context.Context, w io.Writer, root cid.Cid, skip uint64) (int, error) {
	order := newDAGOrder(root)
	sent := 0
	var pos uint64
	var lenBuf [binary.MaxVarintLen64]byte
	var leafBuf []byte // each raw leaf is read into it (readLeaf)
	for {
		c, ok := order.next()
		if !ok {
			return sent, nil
		}
		if pos < skip && c.Type() == cid.Raw {
			pos++ // a leaf the client has: nothing to read
			continue
		}
		var data []byte
		if leaf, ok := cs.readLeaf(c, leafBuf); ok {
			data, leafBuf = leaf, leaf
		} else {
			blk, err := cs.get(ctx, c)
			if err != nil {
				return sent, fmt.Errorf("block %s: %w", c, err)
			}
			links, err := blockLinks(blk)
			if err != nil {
				return sent, err
			}
			order.push(links)
			data = blk.RawData()
		}
		if pos < skip {
			pos++
			continue
		}
		pos++
		cb := c.Bytes()
		n := binary.PutUvarint(lenBuf[:], uint64(len(cb)+len(data)))
		if _, err := w.Write(lenBuf[:n]); err != nil {
			return sent, err
		}
		if _, err := w.Write(cb); err != nil {
			return sent, err
		}
		if _, err := w.Write(data); err != nil {
			return sent, err
		}
		sent++
		cs.sent.Add(1)
	}
}

// get reads a block to send without hash_on_read's SHA-256: the client
// hashes every block it accepts anyway, and the pack store's CRC still
// keeps the server from sending what rotted on its disk. That was a fifth
// of the CPU of a stream between two nodes on one machine.
func (cs *carServer) get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if c.Prefix().MhType == multihash.IDENTITY {
		return cs.s.bstore.Get(ctx, c) // inline: not stored
	}
	return cs.s.guard.Blockstore.Get(ctx, c)
}

// readLeaf reads a raw leaf from the pack store into buf (readInto), which
// the caller reuses for the next leaf once it has written this one. It
// says false for any other block, and for a leaf it cannot read, which
// get then reads the usual way: a missing or corrupt one ends the stream
// there with get's error, as before, and the client fetches the rest
// over bitswap.
func (cs *carServer) readLeaf(c cid.Cid, buf []byte) ([]byte, bool) {
	pack, ok := cs.s.blocks.(*packStore)
	if !ok || c.Type() != cid.Raw || c.Prefix().MhType == multihash.IDENTITY {
		return nil, false
	}
	data, err := pack.getInto(dshelp.MultihashToDsKey(c.Hash()), buf)
	return data, err == nil
}

func readCARRequest(r *bufio.Reader) (cid.Cid, uint64, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return cid.Undef, 0, err
	}
	if n == 0 || n > carMaxCIDLen {
		return cid.Undef, 0, fmt.Errorf("root CID of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return cid.Undef, 0, err
	}
	_, c, err := cid.CidFromBytes(b)
	if err != nil {
		return cid.Undef, 0, err
	}
	skip, err := binary.ReadUvarint(r)
	return c, skip, err
}

// carHeader is the CARv1 header for one root: the dag-cbor map
// {"roots": [root], "version": 1}, encoded by hand (its shape is fixed).
func carHeader(root cid.Cid) []byte {
	cb := append([]byte{0}, root.Bytes()...) // tag 42 holds 0x00 + CID
	h := []byte{0xa2, 0x65}
	h = append(h, "roots"...)
	h = append(h, 0x81, 0xd8, 0x2a)
	h = appendCBORBytesHead(h, len(cb))
	h = append(h, cb...)
	h = append(h, 0x67)
	h = append(h, "version"...)
	return append(h, 0x01)
}

// writeCARHeader writes root's CARv1 header with its length prefix.
func writeCARHeader(w io.Writer, root cid.Cid) error {
	h := carHeader(root)
	_, err := w.Write(append(binary.AppendUvarint(nil, uint64(len(h))), h...))
	return err
}

func appendCBORBytesHead(b []byte, n int) []byte {
	switch {
	case n < 24:
		return append(b, 0x40|byte(n))
	case n < 256:
		return append(b, 0x58, byte(n))
	default:
		return append(b, 0x59, byte(n>>8), byte(n))
	}
}

// carReader reads a CAR stream for root and checks every block: its
// section is bounded before it is read, its CID must be the next one of
// the client's own walk, and its bytes must hash to that CID.
type carReader struct {
	r     *bufio.Reader
	order *dagOrder
}

func newCARReader(r io.Reader, root cid.Cid, order *dagOrder) (*carReader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("car header: %w", err)
	}
	if n == 0 || n > carMaxHeader {
		return nil, fmt.Errorf("car header of %d bytes, over the limit of %d", n, carMaxHeader)
	}
	h := make([]byte, n)
	if _, err := io.ReadFull(br, h); err != nil {
		return nil, fmt.Errorf("car header: %w", err)
	}
	if string(h) != string(carHeader(root)) {
		return nil, errors.New("car header does not name the requested root")
	}
	return &carReader{r: br, order: order}, nil
}

// next returns the next verified block, or io.EOF when the walk is
// complete. A stream that ends before that gives io.ErrUnexpectedEOF.
func (cr *carReader) next() (blocks.Block, error) {
	want, ok := cr.order.next()
	if !ok {
		return nil, io.EOF
	}
	n, err := binary.ReadUvarint(cr.r)
	if err != nil {
		cr.order.unpop(want)
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if n == 0 || n > carMaxSection {
		cr.order.unpop(want)
		return nil, fmt.Errorf("car section of %d bytes, over the limit of %d", n, carMaxSection)
	}
	// The CID first, from the reader's buffer, so that the block's bytes
	// go straight into a buffer of their own (blockBuf).
	head, err := cr.r.Peek(min(int(n), carMaxCIDLen))
	if err != nil {
		cr.order.unpop(want)
		return nil, io.ErrUnexpectedEOF
	}
	cn, c, err := cid.CidFromBytes(head)
	if err != nil || !c.Equals(want) {
		cr.order.unpop(want)
		return nil, fmt.Errorf("car stream sent %v where %s was next: not the requested DAG", c, want)
	}
	_, _ = cr.r.Discard(cn) // peeked: cannot fail
	data := blockBuf(int(n) - cn)
	if _, err := io.ReadFull(cr.r, data); err != nil {
		cr.order.unpop(want)
		return nil, io.ErrUnexpectedEOF
	}
	sum, err := c.Prefix().Sum(data)
	if err != nil || !sum.Equals(c) {
		cr.order.unpop(want)
		return nil, fmt.Errorf("car stream block %s does not match its hash", c)
	}
	blk, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		cr.order.unpop(want)
		return nil, err
	}
	links, err := blockLinks(blk)
	if err != nil {
		cr.order.unpop(want)
		return nil, err
	}
	cr.order.push(links)
	return blk, nil
}

// localPrefix walks the local copy of the DAG in dagOrder up to the first
// block that is not here: the blocks a resumed stream can skip.
func (s *Store) localPrefix(ctx context.Context, root cid.Cid) (*dagOrder, uint64, error) {
	order := newDAGOrder(root)
	var n uint64
	for {
		c, ok := order.next()
		if !ok {
			return order, n, nil
		}
		has, err := s.bstore.Has(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		if !has {
			order.unpop(c)
			return order, n, nil
		}
		if c.Type() != cid.Raw {
			blk, err := s.bstore.Get(ctx, c)
			if err != nil {
				// Deleted as corrupt just now: fetch it.
				order.unpop(c)
				return order, n, nil
			}
			links, err := blockLinks(blk)
			if err != nil {
				return nil, 0, err
			}
			order.push(links)
		}
		n++
	}
}

// fetchCAR asks providers, one after another, to stream the DAG under
// root, and stores what arrives until one stream completes it. It
// returns the blocks written (not counting those already here); a
// provider that does not have the DAG, is busy, or fails part way is
// logged and the next one asked. What no stream delivered is left to
// bitswap.
func (s *Store) fetchCAR(ctx context.Context, root cid.Cid, providers []peer.ID, progress func(blocks.Block)) (written int, complete bool) {
	for _, p := range providers {
		n, done, err := s.fetchCARFrom(ctx, p, root, progress)
		written += n
		if done {
			return written, true
		}
		if ctx.Err() != nil {
			return written, false
		}
		s.log.Debug("car stream did not complete the DAG", "peer", p, "root", root, "blocks", n, "err", err)
	}
	return written, false
}

func (s *Store) fetchCARFrom(ctx context.Context, p peer.ID, root cid.Cid, progress func(blocks.Block)) (written int, complete bool, err error) {
	order, skip, err := s.localPrefix(ctx, root)
	if err != nil {
		return 0, false, err
	}
	if len(order.stack) == 0 {
		return 0, true, nil // all here already
	}
	st, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, "car"), p, CARProtocol)
	if err != nil {
		return 0, false, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	var req []byte
	rb := root.Bytes()
	req = binary.AppendUvarint(req, uint64(len(rb)))
	req = append(req, rb...)
	req = binary.AppendUvarint(req, skip)
	if _, err := st.Write(req); err != nil {
		return 0, false, err
	}
	// A provider may send a small DAG whole and close before this close
	// gets out (over QUIC it then fails, the blocks still arriving): the
	// read below says whether the stream broke.
	_ = st.CloseWrite()
	_ = st.SetReadDeadline(time.Now().Add(carStatusTimeout))
	var status [1]byte
	if _, err := io.ReadFull(st, status[:]); err != nil {
		return 0, false, fmt.Errorf("status: %w", err)
	}
	switch status[0] {
	case carOK:
	case carNotFound:
		return 0, false, errors.New("provider does not have the root")
	case carBusy:
		return 0, false, errors.New("provider busy")
	default:
		return 0, false, fmt.Errorf("unknown status %d", status[0])
	}
	cr, err := newCARReader(st, root, order)
	if err != nil {
		return 0, false, err
	}
	// Blocks go to disk in batches on another goroutine while the next
	// ones are read and hashed. The stall timeout of Fetch applies per
	// block: a provider that stops sending is dropped.
	batches := make(chan []blocks.Block, 2)
	var werr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range batches {
			if werr != nil {
				continue
			}
			// Only blocks that were not here count: a resumed stream
			// also carries present blocks after the first missing one.
			before := s.guard.written.Load()
			if err := s.bstore.PutMany(withHashedOnArrival(ctx), b); err != nil {
				werr = err
				continue
			}
			written += int(s.guard.written.Load() - before)
			recycleBlocks(b)
		}
	}()
	_, rerr := s.readBatches(st, cr, progress, func(b []blocks.Block) error {
		batches <- b
		return nil
	})
	close(batches)
	wg.Wait()
	if werr != nil {
		return written, false, werr
	}
	if errors.Is(rerr, io.EOF) {
		return written, true, nil
	}
	return written, false, rerr
}

// readBatches reads cr's blocks off st until the stream or the walk ends,
// with the fetch's stall timeout per block, and hands them to put in
// batches of batchMaxNodes blocks or batchMaxSize bytes. It returns how
// many blocks it read and why it stopped: io.EOF when the walk is
// complete, or put's error.
func (s *Store) readBatches(st network.Stream, cr *carReader, progress func(blocks.Block), put func([]blocks.Block) error) (int, error) {
	var batch []blocks.Block
	size, n := 0, 0
	for {
		_ = st.SetReadDeadline(time.Now().Add(s.cfg.FetchTimeout))
		blk, rerr := cr.next()
		if rerr == nil {
			batch = append(batch, blk)
			size += len(blk.RawData())
			n++
			if progress != nil {
				progress(blk)
			}
		}
		if len(batch) > 0 && (rerr != nil || len(batch) >= batchMaxNodes || size >= batchMaxSize) {
			if err := put(batch); err != nil {
				return n, err
			}
			batch, size = nil, 0
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// carProviders lists whom Fetch asks for a stream, at most
// carMaxProviders: the peers the caller named as holders of the whole
// DAG, or, when it named none, the connected peers. A connected peer that
// was not named is not asked beside named ones: on a miner with 50
// connections most lack a job's input, and splitting a small DAG over
// them cost each a stream and the fetch a round of bitswap for the top
// of the DAG (0.1–0.5 s for a 16 KiB input at 50 nodes). Bitswap still
// asks every connected peer for whatever the streams did not deliver.
func (s *Store) carProviders(from []peer.ID) []peer.ID {
	var out []peer.ID
	seen := map[peer.ID]bool{s.host.ID(): true}
	add := func(p peer.ID) {
		if !seen[p] && len(out) < carMaxProviders {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range from {
		add(p)
	}
	if len(from) > 0 {
		return out
	}
	for _, p := range s.host.Network().Peers() {
		add(p)
	}
	return out
}

const carMaxProviders = 8
