package job

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/wire"
)

// TestOnlyThePoolBids: on a network of 12 miners, a job for one worker is
// bid on by the 8 miners its submitter drew for the pool, answering their
// invitations, and by no other: the others hold the offer's gossip. Every
// miner used to bid on the gossip, and at 50 nodes the submitter took 49
// bid streams per job to choose among 8. The window here is ten minutes:
// the job is assigned because the whole pool answered.
func TestOnlyThePoolBids(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net := newInviteNet(ctx, t, 12, func(int) uint32 { return 1 }, true)
	assigned := watchAssigned(net.submitter.book)
	o := submitJob(ctx, t, net.submitter, 1)
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatal("not assigned: the window did not close when the whole pool had answered")
	}
	// Every miner has had the offer's gossip: held, or bid on.
	id := o.ID.String()
	for _, mm := range net.miners {
		for !mm.hasConsidered(id) {
			select {
			case <-ctx.Done():
				t.Fatalf("miner %s never had the offer's gossip", mm.key.PeerID())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // for any bid on the gossip to arrive
	net.submitter.mu.Lock()
	pool := net.submitter.pools[id]
	var bidders []peer.ID
	for _, b := range net.submitter.bids[id] {
		bidders = append(bidders, b.Worker)
	}
	net.submitter.mu.Unlock()
	if len(pool) != poolSize(1) {
		t.Fatalf("pool of %d, want %d", len(pool), poolSize(1))
	}
	for _, b := range bidders {
		if !pool[b] {
			t.Errorf("miner %s bid though it was not drawn for the pool", b)
		}
	}
	if len(bidders) != len(pool) {
		t.Fatalf("%d bids, want one from each of the %d drawn miners", len(bidders), len(pool))
	}
}

// TestShortPoolCallsEveryMiner: when the drawn pool cannot fill the job,
// the submitter gossips the offer again at once and every miner that held
// it bids. Here the table knows 4 miners: one free, two busy (they
// decline the invitation) and one that cannot be reached (gone since its
// last heartbeat). A fifth, free, is not in the table; the job needs two
// workers. The window is ten minutes: the job is assigned because the
// pool's answers called everyone, not because the window ended.
func TestShortPoolCallsEveryMiner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	slots := func(i int) uint32 { // miner 0 free, 1–3 busy (3 out of the table), 4 free
		if i >= 1 && i <= 3 {
			return 0
		}
		return 1
	}
	net := newInviteNet(ctx, t, 5, slots, true)
	gone, _ := identity.Generate()
	net.known = append(net.known[:3], KnownNode{Peer: gone.PeerID(), Capacity: net.known[0].Capacity, Policy: net.known[0].Policy})
	assignTwo(ctx, t, net, []peer.ID{net.miners[0].key.PeerID(), net.miners[4].key.PeerID()},
		"the two free miners", "the miner outside the pool never bid")
}

// assignTwo submits a job for two workers and checks that it is assigned
// to want (who they are, for the failure message); notAssigned says why
// it would not be.
func assignTwo(ctx context.Context, t *testing.T, net *inviteNet, want []peer.ID, who, notAssigned string) {
	t.Helper()
	assigned := make(chan Record, 1)
	net.submitter.book.Watch(func(r Record) {
		if r.Role == RoleSubmitter && len(r.Workers) == 2 {
			select {
			case assigned <- r:
			default:
			}
		}
	})
	submitJob(ctx, t, net.submitter, 2)
	select {
	case r := <-assigned:
		got := slices.Clone(r.Workers)
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Fatalf("workers %v, want %s %v", got, who, want)
		}
	case <-ctx.Done():
		t.Fatal("not assigned: " + notAssigned)
	}
}

// TestInvitationDialsUnconnectedMiner: a submitter invites a drawn miner
// it has no connection to at the addresses the miner's heartbeat
// announced. Miners 0 and 1 are connected but busy; miners 2 and 3 are
// free, and neither they nor the submitter can dial the other without
// those addresses, so their bids on the offer's gossip cannot reach it.
// The job is assigned to miners 2 and 3.
func TestInvitationDialsUnconnectedMiner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net := newInviteNet(ctx, t, 4, func(i int) uint32 { return uint32(i / 2) }, true)
	for i := 2; i < 4; i++ {
		net.cut(t, i)
		for _, a := range net.hosts[i].Addrs() {
			net.known[i].Addrs = append(net.known[i].Addrs, a.String())
		}
	}
	assignTwo(ctx, t, net, []peer.ID{net.hosts[2].ID(), net.hosts[3].ID()},
		"the two free, unconnected miners", "the free miners were never invited at their addresses")
}

// TestPoolDrawIgnoresConnections: the pool is drawn among every miner the
// submitter can reach, connected or not: over many jobs each is drawn,
// and a miner with no address is drawn only when the reachable ones are
// too few.
func TestPoolDrawIgnoresConnections(t *testing.T) {
	ctx := context.Background()
	subKey, _ := identity.Generate()
	sub := loopbackHost(t, subKey)
	m := NewMarket(subKey, sub, nil, MarketOptions{}, slog.New(slog.DiscardHandler))
	var could []peer.ID
	var known []KnownNode
	kind := map[peer.ID]string{}
	for range 6 { // connected
		key, _ := identity.Generate()
		h := loopbackHost(t, key)
		if err := h.Connect(ctx, peer.AddrInfo{ID: sub.ID(), Addrs: sub.Addrs()}); err != nil {
			t.Fatal(err)
		}
		could, kind[h.ID()] = append(could, h.ID()), "connected"
		known = append(known, KnownNode{Peer: h.ID()})
	}
	for i := range 10 { // 6 announce addresses in their heartbeats, 4 none
		key, _ := identity.Generate()
		n := KnownNode{Peer: key.PeerID()}
		kind[n.Peer] = "no address"
		if i < 6 {
			n.Addrs = []string{fmt.Sprintf("/ip4/198.18.0.%d/udp/4001/quic-v1", i+1)}
			kind[n.Peer] = "announced"
		}
		could, known = append(could, n.Peer), append(known, n)
	}
	drawn := map[peer.ID]int{}
	for i := range 40 {
		pool := m.drawReachable(could, known, minPool, []byte{byte(i)})
		if len(pool) != minPool {
			t.Fatalf("pool of %d, want %d", len(pool), minPool)
		}
		for _, p := range pool {
			if kind[p] == "no address" {
				t.Fatalf("drew %s, which has no address, though 12 miners can be reached", p)
			}
			drawn[p]++
			if kind[p] == "announced" && len(sub.Peerstore().Addrs(p)) == 0 {
				t.Errorf("drew %s but did not keep its announced address for the invitation", p)
			}
		}
	}
	for p, k := range kind {
		if k != "no address" && drawn[p] == 0 {
			t.Errorf("miner %s (%s) never drawn in 40 jobs", p, k)
		}
	}
	// Among 3 that announced addresses and 4 that did not, a pool of 5
	// is the 3 and 2 of the others.
	pool := m.drawReachable(could[9:], known[9:], 5, []byte{0})
	reached := 0
	for _, p := range pool {
		if kind[p] == "announced" {
			reached++
		}
	}
	if len(pool) != 5 || reached != 3 {
		t.Fatalf("pool of %d with %d of the 3 reachable miners, want 5 with all 3", len(pool), reached)
	}
}

// TestNoTableCallsEveryMiner: a submitter without a heartbeat table draws
// no pool, so it invites nobody: it gossips the offer again at once and
// the miners, which held the first gossip, bid on the second.
func TestNoTableCallsEveryMiner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net := newInviteNet(ctx, t, 3, func(int) uint32 { return 1 }, false)
	assigned := watchAssigned(net.submitter.book)
	submitJob(ctx, t, net.submitter, 1)
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatal("not assigned: the miners held the offer and nobody called them")
	}
}

// inviteNet is a submitter and n miners on loopback, sharing in-memory
// gossip. The submitter's heartbeat table lists known (every miner,
// unless the test cuts it; none without a table).
type inviteNet struct {
	submitter *Market
	miners    []*Market
	known     []KnownNode
	// hosts are the miners' libp2p hosts, by index; subHost the
	// submitter's.
	hosts   []host.Host
	subHost host.Host
}

// cut closes the connection between the submitter and miner i and makes
// each forget the other's addresses: neither can dial the other again
// unless told where.
func (n *inviteNet) cut(t *testing.T, i int) {
	t.Helper()
	miner := n.hosts[i]
	n.subHost.Peerstore().ClearAddrs(miner.ID())
	miner.Peerstore().ClearAddrs(n.subHost.ID())
	if err := n.subHost.Network().ClosePeer(miner.ID()); err != nil {
		t.Fatal(err)
	}
}

// newInviteNet starts an inviteNet whose miners have the free slots
// slots(i) says, and whose submitter's bid window is ten minutes: a job
// assigned in a test's 30 s was not assigned by the window's end.
func newInviteNet(ctx context.Context, t *testing.T, n int, slots func(int) uint32, table bool) *inviteNet {
	t.Helper()
	return newMarketNet(ctx, t, n, 10*time.Minute, func(i int) func(context.Context) Capacity {
		c := Capacity{CPUCores: 4, MemoryBytes: 8 << 30, FreeSlots: slots(i)}
		return func(context.Context) Capacity { return c }
	}, table)
}

// newMarketNet starts an inviteNet whose miner i has the capacity
// capacity(i) says at each look, and whose submitter has the bid window
// window. It returns once identify has told every miner that the
// submitter invites, as on a network up for more than a moment.
func newMarketNet(ctx context.Context, t *testing.T, n int, window time.Duration, capacity func(int) func(context.Context) Capacity, table bool) *inviteNet {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	offers, verdicts := newBus(), newBus()
	subKey, _ := identity.Generate()
	sub := loopbackHost(t, subKey)
	net := &inviteNet{subHost: sub}
	policy := Policy{MinPrice: 1, Executors: []string{ExecutorWASM}}
	for i := range n {
		key, _ := identity.Generate()
		h := loopbackHost(t, key)
		if err := h.Connect(ctx, peer.AddrInfo{ID: sub.ID(), Addrs: sub.Addrs()}); err != nil {
			t.Fatal(err)
		}
		mm := NewMarket(key, h, NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), time.Now),
			MarketOptions{Capacity: capacity(i), Works: true, Policy: policy}, log)
		mm.Start(offers.join(key.PeerID()), verdicts.join(key.PeerID()))
		t.Cleanup(func() { mm.Close() })
		net.miners = append(net.miners, mm)
		net.hosts = append(net.hosts, h)
		net.known = append(net.known, KnownNode{Peer: key.PeerID(), Capacity: Capacity{CPUCores: 4, MemoryBytes: 8 << 30, FreeSlots: 1}, Policy: policy})
	}
	opts := MarketOptions{BidWindow: window}
	if table {
		opts.Known = func() []KnownNode { return net.known }
	}
	net.submitter = NewMarket(subKey, sub, NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), time.Now), opts, log)
	net.submitter.Start(offers.join(subKey.PeerID()), verdicts.join(subKey.PeerID()))
	t.Cleanup(func() { net.submitter.Close() })
	for i, mm := range net.miners {
		for !mm.invites(subKey.PeerID()) {
			select {
			case <-ctx.Done():
				t.Fatalf("miner %d never learnt the submitter's protocols (%v)", i, net.hosts[i].Peerstore().PeerInfo(sub.ID()))
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return net
}

// submitJob offers a new job for workers workers (exact, a quorum of all)
// paying 10, open for an hour.
func submitJob(ctx context.Context, t *testing.T, m *Market, workers uint32) Offer {
	t.Helper()
	spec := validSpec()
	spec.Verify = VerificationPolicy{Mode: VerifyExact, Workers: workers, Quorum: workers}
	spec.Reward = 10
	spec.Deadline = time.Now().Add(time.Hour).UnixMilli()
	spec.Nonce = make([]byte, 16)
	rand.Read(spec.Nonce) // each call a new job
	o, err := m.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// hasConsidered reports whether this worker has had offer id: held for its
// invitation, or considered for a bid.
func (m *Market) hasConsidered(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, held := m.held[id]
	_, seen := m.seen[id]
	return held || seen
}

// TestInvitationChecks: a miner answers an invitation only when it comes
// from the offer's own submitter, within that submitter's rate; a forged
// or excess one gets no answer (the stream is reset). A valid one is
// answered with a bid the miner remembers, so its assignment is accepted.
func TestInvitationChecks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net := newInviteNet(ctx, t, 1, func(int) uint32 { return 1 }, true)
	mm := net.miners[0]
	mm.invitesFrom = p2p.NewLimiter(p2p.PerMinute(1, 2), 16) // two at once, then one a minute
	miner := mm.key.PeerID()
	offerOf := func(key *identity.Key) Offer {
		spec := validSpec()
		spec.Deadline = time.Now().Add(time.Hour).UnixMilli()
		spec.Nonce = make([]byte, 16)
		rand.Read(spec.Nonce)
		o, err := NewOffer(key, spec, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	invite := func(from *Market, o Offer) ([]byte, error) {
		req, err := wire.Seal(from.key, KindInvite, time.Now(), InviteMsg{Offer: o.Raw})
		if err != nil {
			t.Fatal(err)
		}
		return exchange(ctx, from.streams, miner, ProtocolInvite, req, 4<<10)
	}
	someoneElse, _ := identity.Generate()
	if _, err := invite(net.submitter, offerOf(someoneElse)); err == nil {
		t.Fatal("an invitation to bid on another submitter's offer was answered")
	}
	o := offerOf(net.submitter.key)
	reply, err := invite(net.submitter, o)
	if err != nil {
		t.Fatalf("a valid invitation: %v", err)
	}
	var b BidMsg
	if err := openDirect(reply, KindBid, miner, time.Now(), &b); err != nil || b.Job != o.ID.String() {
		t.Fatalf("the answer to a valid invitation is not the miner's bid on it: %v (job %q)", err, b.Job)
	}
	if !mm.bidFor(o) {
		t.Fatal("the miner does not remember its bid: its assignment would be refused")
	}
	if _, err := invite(net.submitter, offerOf(net.submitter.key)); err == nil {
		t.Fatal("an invitation past the submitter's rate was answered")
	}
}
