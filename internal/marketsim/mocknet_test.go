package marketsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/marcopolo/simnet"
	"github.com/vft-network/vft/identity"
)

// The mocknet transport (config.Transport "mocknet"): go-libp2p's mocknet
// (p2p/net/mock) hosts, with no TLS, no QUIC and no packets: a stream is
// a pipe between two goroutines. Mocknet's own link latency is left at
// zero and the latency is added here, on each host's streams, because
// mocknet's stream delivers one write of 256 bytes or more per link
// latency (its delivery goroutine waits out each such write's arrival
// before it takes the next one): at 20–100 ms a GossipSub stream would
// carry 10–50 messages a second, and a heartbeat round of 1,000 nodes
// would overflow every queue. Here a write is queued with its arrival
// time and the next write does not wait for it, as on a real link.
//
// What a link costs (simHost, delayedStream):
//   - latency: the sender's half plus the receiver's half, per write;
//   - bandwidth: each node's uplink sends one write after the other at
//     config.Bandwidth (the downlink is not limited);
//   - a new connection: two round trips before its first stream can be
//     used (a QUIC handshake, then identify), as over simnet; the
//     handshake itself costs no CPU here.
//
// Timers and goroutines only, all started inside the synctest bubble:
// time is virtual as with simnet.

// simNet is the mocknet and each peer's share of a link's latency.
type simNet struct {
	mn        mocknet.Mocknet
	half      map[peer.ID]time.Duration
	bandwidth int // bits per second, each node's uplink

	mu     sync.Mutex
	upFree map[peer.ID]time.Time // when a node's uplink is free again
	// closed ends every stream's delivery goroutine at teardown (mocknet
	// resets its own streams, not the wrappers): synctest.Test waits for
	// every goroutine of the bubble.
	closed    chan struct{}
	closeOnce sync.Once
}

func newSimNet(bandwidth int) *simNet {
	return &simNet{mn: mocknet.New(), half: map[peer.ID]time.Duration{}, bandwidth: bandwidth,
		upFree: map[peer.ID]time.Time{}, closed: make(chan struct{})}
}

// Close stops the deliveries, then closes every host of the mocknet.
func (n *simNet) Close() error {
	n.closeOnce.Do(func() { close(n.closed) })
	return n.mn.Close()
}

// newHost adds host i to the mocknet, without a connection manager:
// mocknet's hosts take none (see docs/BENCHMARKS.md).
func (n *simNet) newHost(i int, key *identity.Key, half time.Duration) (host.Host, error) {
	addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/%s/tcp/8000", simnet.IntToPublicIPv4(i)))
	if err != nil {
		return nil, err
	}
	h, err := n.mn.AddPeer(key.LibP2P(), addr)
	if err != nil {
		return nil, err
	}
	n.half[h.ID()] = half
	return &simHost{Host: h, net: n}, nil
}

// start has nothing to do: mocknet needs no start.
func (n *simNet) start() {}

// gossipBeforeDials: on mocknet GossipSub starts on every node before the
// dials. Started after them, one node in five runs of 20 was left with a
// few topic peers among its 14 connections: a peer's stream to a node
// whose GossipSub was not up yet failed while that node's identify push
// (it now speaks GossipSub) arrived, and GossipSub dropped the peer for
// good. With no latency on identify and handshakes that window is wide;
// over simnet it did not show.
func (n *simNet) gossipBeforeDials() bool { return true }

// latency is the one-way latency between a and b.
func (n *simNet) latency(a, b peer.ID) time.Duration { return n.half[a] + n.half[b] }

// arrival is when size bytes written now by from reach to: after from's
// uplink has sent what it had queued and these bytes, plus the latency.
func (n *simNet) arrival(from, to peer.ID, size int) time.Time {
	now := time.Now()
	n.mu.Lock()
	sent := now
	if free := n.upFree[from]; free.After(now) {
		sent = free
	}
	if n.bandwidth > 0 {
		sent = sent.Add(time.Duration(int64(size) * 8 * int64(time.Second) / int64(n.bandwidth)))
	}
	n.upFree[from] = sent
	n.mu.Unlock()
	return sent.Add(n.latency(from, to))
}

// simHost is a mocknet host whose streams carry the simulated latency
// and bandwidth; every part of the node (GossipSub, the market, the
// worker, the content fetch) uses it in place of the host.
type simHost struct {
	host.Host
	net *simNet
}

// link makes sure mocknet lets the two peers connect (mocknet needs a
// link between each pair; linking all pairs of 1,000 nodes up front
// would be half a million links) and, if they are not connected yet,
// waits out a handshake's two round trips.
func (h *simHost) link(ctx context.Context, p peer.ID) error {
	if h.Network().Connectedness(p) == network.Connected {
		return nil
	}
	if len(h.net.mn.LinksBetweenPeers(h.ID(), p)) == 0 {
		if _, err := h.net.mn.LinkPeers(h.ID(), p); err != nil {
			return err
		}
	}
	t := time.NewTimer(4 * h.net.latency(h.ID(), p))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-h.net.closed:
		return net.ErrClosed
	}
}

func (h *simHost) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if err := h.link(ctx, ai.ID); err != nil {
		return err
	}
	return h.Host.Connect(ctx, ai)
}

func (h *simHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if err := h.link(ctx, p); err != nil {
		return nil, err
	}
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.delayed(s), nil
}

func (h *simHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.delayed(s)) })
}

func (h *simHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(h.delayed(s)) })
}

func (h *simHost) delayed(s network.Stream) *delayedStream {
	return &delayedStream{Stream: s, net: h.net, from: h.ID(), to: s.Conn().RemotePeer(),
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1), reset: make(chan struct{}), stopped: make(chan struct{})}
}

// streamWindow is how many bytes a stream may have in flight before its
// writer waits, as a QUIC stream's flow-control window makes it (quic-go
// starts at 512 KiB).
const streamWindow = 512 << 10

// write is one Write waiting for its arrival time; closeWrite marks the
// end of the stream's writes.
type write struct {
	data       []byte
	at         time.Time
	closeWrite bool
}

// delayedStream delivers each write at its arrival time, in order,
// through the mocknet stream below (which adds no latency of its own).
type delayedStream struct {
	network.Stream
	net      *simNet
	from, to peer.ID

	mu          sync.Mutex
	queue       []write   // written, not yet delivered
	inFlight    int       // bytes in queue
	last        time.Time // arrival of the last write queued
	started     bool
	writeClosed bool
	wake        chan struct{} // a write was queued
	space       chan struct{} // a write was delivered
	reset       chan struct{} // closed by Reset
	resetOnce   sync.Once
	stopped     chan struct{} // closed when deliver returns
}

var errWriteClosed = errors.New("marketsim: write on a stream closed for writing")

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *delayedStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.inFlight > 0 && s.inFlight+len(p) > streamWindow {
		s.mu.Unlock()
		select {
		case <-s.space:
		case <-s.reset:
		case <-s.stopped:
		}
		s.mu.Lock()
		select {
		case <-s.reset:
			return 0, network.ErrReset
		case <-s.stopped:
			return 0, network.ErrReset
		default:
		}
	}
	if s.writeClosed {
		return 0, errWriteClosed
	}
	at := s.net.arrival(s.from, s.to, len(p))
	if at.Before(s.last) {
		at = s.last // in order: a stream is a byte stream
	}
	s.last = at
	s.queue = append(s.queue, write{data: append([]byte(nil), p...), at: at})
	s.inFlight += len(p)
	if !s.started {
		s.started = true
		go s.deliver()
	}
	signal(s.wake)
	return len(p), nil
}

// deliver writes each queued write through at its arrival time, then
// closes the stream for writing if asked.
func (s *delayedStream) deliver() {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-s.reset:
				return
			case <-s.net.closed:
				return
			}
		}
		w := s.queue[0]
		s.queue[0] = write{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		if d := time.Until(w.at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.reset:
				t.Stop()
				return
			case <-s.net.closed:
				t.Stop()
				return
			}
		}
		if w.closeWrite {
			s.Stream.CloseWrite()
			return
		}
		if _, err := s.Stream.Write(w.data); err != nil {
			return
		}
		s.mu.Lock()
		s.inFlight -= len(w.data)
		s.mu.Unlock()
		signal(s.space)
	}
}

// CloseWrite closes the stream for writing once the queued writes have
// arrived; it does not wait for them.
func (s *delayedStream) CloseWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writeClosed {
		return nil
	}
	s.writeClosed = true
	if !s.started {
		return s.Stream.CloseWrite()
	}
	s.queue = append(s.queue, write{at: s.last, closeWrite: true})
	signal(s.wake)
	return nil
}

func (s *delayedStream) Close() error {
	s.Stream.CloseRead()
	return s.CloseWrite()
}

func (s *delayedStream) Reset() error {
	s.resetOnce.Do(func() { close(s.reset) })
	return s.Stream.Reset()
}

func (s *delayedStream) ResetWithError(code network.StreamErrorCode) error {
	s.resetOnce.Do(func() { close(s.reset) })
	return s.Stream.ResetWithError(code)
}
