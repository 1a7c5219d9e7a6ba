package testnet

// The hostile-peer suite: attacker nodes next to honest ones, each trying
// one of the attacks in docs/SECURITY.md (with sybil_test.go,
// content_attack_test.go and forger_test.go). Every test asserts what an honest
// miner or submitter relies on: its jobs still run, it does not run what
// nobody asked for, and what it holds stays bounded.

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/p2p/reqresp"
	"github.com/vft-network/vft/wire"
)

// attacker is a bare libp2p node with its own key that speaks VFT's
// protocols by hand, so it can send what an honest node never would.
type attacker struct {
	net    *p2p.Network // nil for a raw flooder
	host   host.Host
	key    *identity.Key
	offers *p2p.Topic

	mu   sync.Mutex
	bids map[string][]peer.ID // job ID → bidders
}

// newAttacker joins the network through boot and the offers topic, with a
// validator that accepts anything, and records the bids it receives.
func newAttacker(t testing.TB, ctx context.Context, boot *node.Node) *attacker {
	t.Helper()
	a := joinBare(t, ctx, boot)
	a.offers = a.join(t, ctx, job.OffersTopic)
	a.serveBids()
	return a
}

// serveBids records the bids the attacker receives and acknowledges them.
func (a *attacker) serveBids() {
	a.host.SetStreamHandler(job.ProtocolBid, func(st network.Stream) {
		reqresp.Serve(st, 4<<10, 10*time.Second, func(from peer.ID, req []byte) ([]byte, error) {
			msg, err := wire.Open(req, job.KindBid, wire.Limits{MaxSize: 4 << 10, MaxAge: time.Minute, MaxFuture: time.Minute}, time.Now())
			if err != nil {
				return nil, err
			}
			var b job.BidMsg
			if err := wire.Unmarshal(msg.Body, &b); err != nil {
				return nil, err
			}
			a.mu.Lock()
			a.bids[b.Job] = append(a.bids[b.Job], from)
			a.mu.Unlock()
			return wire.Seal(a.key, job.KindAck, time.Now(), job.AckMsg{Job: b.Job, OK: true})
		})
	})
}

// joinBare starts a bare libp2p node with a new key, bootstrapped to boot.
func joinBare(t testing.TB, ctx context.Context, boot *node.Node) *attacker {
	t.Helper()
	cfg := Config(config.ModeMiner).P2P
	for _, a := range boot.Network().Addrs() {
		cfg.Bootstrap = append(cfg.Bootstrap, a.String())
	}
	key, _ := identity.Generate()
	net, err := p2p.New(cfg, key.LibP2P(), p2p.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net.Close() })
	return &attacker{net: net, host: net.Host(), key: key, bids: map[string][]peer.ID{}}
}

// join subscribes to a topic with a validator that accepts anything, so
// the attacker can publish what honest nodes must refuse, and waits until
// it has a mesh peer there.
func (a *attacker) join(t testing.TB, ctx context.Context, topicName string) *p2p.Topic {
	t.Helper()
	topic, err := a.net.Join(topicName, func(context.Context, peer.ID, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topic.Close() })
	for len(topic.Peers()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("attacker never joined the %s mesh", topicName)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return topic
}

// offer signs an offer of the attacker's; publish gossips it.
func (a *attacker) offer(t testing.TB, spec job.Spec) job.Offer {
	t.Helper()
	o, err := job.NewOffer(a.key, spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (a *attacker) publish(ctx context.Context, t testing.TB, o job.Offer) {
	t.Helper()
	if err := a.offers.Publish(ctx, o.Raw); err != nil {
		t.Fatal(err)
	}
}

// waitBid waits until worker has bid on o, gossiping o again every few
// seconds as an honest submitter does while its offer is open: a miner
// whose queue holds its four offers from one author drops the rest until
// then (a busy miner took more than the test's two minutes without it).
func (a *attacker) waitBid(ctx context.Context, t *testing.T, o job.Offer, worker peer.ID) {
	t.Helper()
	regossip := time.NewTicker(2 * time.Second)
	defer regossip.Stop()
	for {
		a.mu.Lock()
		bidders := a.bids[o.ID.String()]
		a.mu.Unlock()
		for _, b := range bidders {
			if b == worker {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never bid on %s", worker, o.ID)
		case <-regossip.C:
			a.publish(ctx, t, o)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// assign sends worker a signed assignment of o and returns its answer.
func (a *attacker) assign(ctx context.Context, o job.Offer, worker peer.ID) (job.AckMsg, error) {
	req, err := wire.Seal(a.key, job.KindAssign, time.Now(), job.AssignMsg{Job: o.ID.String(), Offer: o.Raw, Workers: []string{worker.String()}})
	if err != nil {
		return job.AckMsg{}, err
	}
	reply, err := reqresp.Exchange(ctx, a.host, worker, job.ProtocolAssign, req, 4<<10, 10*time.Second)
	if err != nil {
		return job.AckMsg{}, err
	}
	msg, err := wire.Open(reply, job.KindAck, wire.Limits{MaxSize: 4 << 10, MaxAge: time.Minute, MaxFuture: time.Minute}, time.Now())
	if err != nil {
		return job.AckMsg{}, err
	}
	var ack job.AckMsg
	return ack, wire.Unmarshal(msg.Body, &ack)
}

// An assignment for a job the miner never bid on is refused and leaves
// no trace: without this, any peer could make a miner fetch and run
// whatever it likes (issue 13, finding 1).
func TestUnsolicitedAssignmentRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	miner := New(t, 1, Options{})[0]
	evil := newAttacker(t, ctx, miner)
	o := evil.offer(t, wasmSpec(1, 10*time.Minute)) // never gossiped: nobody bid

	ack, err := evil.assign(ctx, o, miner.Network().ID())
	if err != nil {
		t.Fatal(err)
	}
	if ack.OK || ack.Reason != "this node did not bid on job "+o.ID.String() {
		t.Fatalf("unsolicited assignment answered %+v", ack)
	}
	if rec, err := miner.Jobs().Get(ctx, o.ID.String()); err == nil {
		t.Fatalf("the miner recorded the unsolicited job: %s", rec.State)
	}
}

// Assignments that arrive at once cannot overbook a miner: with one job
// slot, of several jobs it bid on and that are all assigned at the same
// moment, it accepts one (issue 13, finding 9).
func TestConcurrentAssignmentsRespectMaxJobs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	miner := New(t, 1, Options{})[0]
	evil := newAttacker(t, ctx, miner)
	const jobs = 6
	var offers []job.Offer
	for range jobs {
		// The module is nowhere to be found, so an accepted job holds its
		// slot while the worker looks for it.
		o := evil.offer(t, wasmSpec(1, 10*time.Minute))
		evil.publish(ctx, t, o)
		offers = append(offers, o)
	}
	for _, o := range offers {
		evil.waitBid(ctx, t, o, miner.Network().ID())
	}

	var wg sync.WaitGroup
	acks := make([]job.AckMsg, jobs)
	for i, o := range offers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acks[i], _ = evil.assign(ctx, o, miner.Network().ID())
		}()
	}
	wg.Wait()
	accepted := 0
	for _, ack := range acks {
		if ack.OK {
			accepted++
		}
	}
	if accepted != 1 {
		t.Fatalf("a miner with max_jobs = 1 accepted %d of %d simultaneous assignments: %+v", accepted, jobs, acks)
	}
}

// rawFlooder is an attacker on a plain libp2p host with GossipSub of its
// own: nothing paces what it publishes, as p2p.Topic paces an honest node.
func rawFlooder(t testing.TB, ctx context.Context, boot *node.Node) (*attacker, *pubsub.Topic) {
	t.Helper()
	key, _ := identity.Generate()
	h, err := libp2p.New(libp2p.Identity(key.LibP2P()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(job.OffersTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, peer.AddrInfo{ID: boot.Network().ID(), Addrs: boot.Network().Addrs()}); err != nil {
		t.Fatal(err)
	}
	a := &attacker{host: h, key: key, bids: map[string][]peer.ID{}}
	a.serveBids()
	for len(topic.ListPeers()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the flooder never joined the offers mesh")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return a, topic
}

// A flood of valid offers from one author, published as fast as it can,
// costs a miner a bounded amount of work: it considers the author's burst
// and then its rate (the rest is rejected before any signature check),
// while an honest submitter's job still runs (issue 13, finding 8).
func TestOfferFloodIsRateLimited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 1, nil)
	miner, submitter := nodes[0], nodes[1]
	evil, topic := rawFlooder(t, ctx, miner)

	const flood = 400
	start := time.Now()
	for range flood {
		o := evil.offer(t, wasmSpec(1, 10*time.Minute))
		if err := topic.Publish(ctx, o.Raw); err != nil {
			t.Fatal(err)
		}
	}
	honest, err := submitter.Market().Submit(ctx, wordcountJob(ctx, t, submitter))
	if err != nil {
		t.Fatal(err)
	}
	waitState(ctx, t, submitter, honest.ID.String(), job.StateDone)

	evil.mu.Lock()
	bids := len(evil.bids)
	evil.mu.Unlock()
	// The author's burst, its rate over the time the flood and the job
	// took, and slack for the offers that arrive while the bucket refills.
	cfg := miner.Config().P2P
	took := time.Since(start)
	allowed := cfg.GossipAuthorBurst + int(float64(cfg.GossipAuthorPerMinute)*took.Minutes()) + 5
	if bids > allowed {
		t.Fatalf("the miner bid on %d of %d flooded offers in %s; the author's rate allows %d", bids, flood, took.Round(time.Millisecond), allowed)
	}
	t.Logf("bid on %d of %d flooded offers in %s", bids, flood, took.Round(time.Millisecond))
}

// wordcountJob is an honest job with a known output.
func wordcountJob(ctx context.Context, t testing.TB, submitter *node.Node) job.Spec {
	spec := wasmSpec(1, 3*time.Minute)
	spec.Module, spec.Needs.MemoryBytes = addModule(ctx, t, submitter, "../../examples/wordcount"), 128<<20
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, "../../examples/wordcount/testdata")}}
	return spec
}

// An assignment repeated because the submitter never got the answer (a
// lost reply) is answered yes again, not refused as unsolicited: the
// submitter can then count the run already under way.
func TestRepeatedAssignmentAcknowledged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	miner := New(t, 1, Options{})[0]
	sub := newAttacker(t, ctx, miner) // a submitter that speaks by hand
	o := sub.offer(t, wasmSpec(1, 10*time.Minute))
	sub.publish(ctx, t, o)
	sub.waitBid(ctx, t, o, miner.Network().ID())
	for i := range 2 {
		ack, err := sub.assign(ctx, o, miner.Network().ID())
		if err != nil || !ack.OK {
			t.Fatalf("assignment %d: %+v, %v", i+1, ack, err)
		}
	}
	if rec, err := miner.Jobs().Get(ctx, o.ID.String()); err != nil || rec.Runs > 1 {
		t.Fatalf("the repeated assignment started the job again: %+v, %v", rec.Runs, err)
	}
}

// acceptAssignments makes the attacker a worker that says yes to every
// assignment (and does nothing else unless the test does).
func (a *attacker) acceptAssignments() {
	a.host.SetStreamHandler(job.ProtocolAssign, func(st network.Stream) {
		reqresp.Serve(st, job.MaxOfferSize+8<<10, 10*time.Second, func(from peer.ID, req []byte) ([]byte, error) {
			msg, err := wire.Open(req, job.KindAssign, wire.Limits{MaxSize: job.MaxOfferSize + 8<<10, MaxAge: time.Minute, MaxFuture: time.Minute}, time.Now())
			if err != nil {
				return nil, err
			}
			var as job.AssignMsg
			if err := wire.Unmarshal(msg.Body, &as); err != nil {
				return nil, err
			}
			return wire.Seal(a.key, job.KindAck, time.Now(), job.AckMsg{Job: as.Job, OK: true})
		})
	})
}

// bid sends a signed bid on o to its submitter.
func (a *attacker) bid(ctx context.Context, o job.Offer) error {
	req, err := wire.Seal(a.key, job.KindBid, time.Now(), job.BidMsg{Job: o.ID.String(), Price: o.Spec.Reward, FreeSlots: 1})
	if err != nil {
		return err
	}
	_, err = reqresp.Exchange(ctx, a.host, o.Submitter, job.ProtocolBid, req, 4<<10, 10*time.Second)
	return err
}

// A worker that takes a job and then holds commit streams open without
// ever finishing a commitment gets at most a few streams, is dropped at
// the report deadline, and the job goes to an honest miner.
func TestStalledCommitterReplaced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	submitter := New(t, 1, Options{Mode: config.ModeLight})[0]
	evil := newAttacker(t, ctx, submitter)
	evil.acceptAssignments()
	spec := wordcountJob(ctx, t, submitter)
	// The report deadline: 15 s + the 3 s grace, room for the honest
	// miner's cold Wasmtime compile of the module and its run.
	spec.Needs.TimeoutMS = 15_000
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := evil.bid(ctx, offer); err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	waitWorkers(ctx, t, submitter, id, 1)

	// Open commit streams and write nothing into them.
	opened := 0
	for range 40 {
		st, err := evil.host.NewStream(ctx, submitter.Network().ID(), job.ProtocolCommit)
		if err != nil {
			continue
		}
		defer st.Reset()
		// A refused stream is reset by the other side; one that is held
		// stays open until the server's deadline.
		st.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := st.Read(make([]byte, 1)); err != nil && !strings.Contains(err.Error(), "deadline") {
			continue
		}
		opened++
	}
	t.Logf("the submitter held %d of 40 stalled commit streams", opened)
	if limit := Config(config.ModeLight).P2P.MaxStreamsPerPeer; opened == 0 || opened > limit {
		t.Fatalf("the submitter held %d commit streams from one peer open, over its cap of %d", opened, limit)
	}

	minerCfg := Config(config.ModeMiner)
	BootstrapTo(&minerCfg, submitter)
	Start(t, minerCfg, "honest", node.Options{})
	rec := waitState(ctx, t, submitter, id, job.StateDone)
	if !slices.Contains(rec.Missed, evil.key.PeerID().String()) {
		t.Fatalf("the stalled worker is not recorded as missed: %v", rec.Missed)
	}
	checkOutput(ctx, t, submitter, rec.Result, "../../examples/wordcount/expected/texts")
}
