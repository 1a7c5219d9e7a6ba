package testnet

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
)

func testCID(s string) string {
	h, _ := mh.Sum([]byte(s), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h).String()
}

func wasmSpec(k uint32, deadline time.Duration) job.Spec {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	return job.Spec{
		Executor: job.ExecutorWASM, Module: testCID("module"), Inputs: []job.Input{},
		Args: []string{}, Env: map[string]string{},
		Needs:    job.Resources{MemoryBytes: 64 << 20, TimeoutMS: 60_000},
		Verify:   job.VerificationPolicy{Mode: job.VerifyExact, Workers: k, Quorum: k/2 + 1},
		Reward:   5000,
		Deadline: time.Now().Add(deadline).UnixMilli(),
		Nonce:    nonce,
	}
}

func waitState(ctx context.Context, t *testing.T, nd *node.Node, id string, want job.State) job.Record {
	t.Helper()
	for {
		r, err := nd.Jobs().Get(ctx, id)
		if err == nil && r.State == want {
			return r
		}
		if err == nil && r.State.Terminal() {
			t.Fatalf("job %s ended %s, want %s: %s", id, r.State, want, r.Reason)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s never reached %s (last: %+v, %v)", id, want, r.State, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitWorkers waits until a submitter's job has n workers assigned, in
// whatever state it is by then (a worker reports it started at once).
func waitWorkers(ctx context.Context, t *testing.T, nd *node.Node, id string, n int) job.Record {
	t.Helper()
	for {
		r, err := nd.Jobs().Get(ctx, id)
		if err == nil && len(r.Workers) >= n {
			return r
		}
		if err == nil && r.State.Terminal() {
			t.Fatalf("job %s ended %s before %d workers were assigned: %s", id, r.State, n, r.Reason)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s never had %d workers (last: %+v, %v)", id, n, r.Workers, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A light node offers a job; the three miners bid over direct streams; the
// submitter picks three and each miner records the assignment.
func TestOfferBidAssign(t *testing.T) {
	nodes := New(t, 4, Options{Configure: func(i int, cfg *config.Config) {
		cfg.Heartbeat.Interval.UnmarshalText([]byte("5s"))
		if i == 3 {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	submitter := nodes[3]
	// No wait for the topic mesh: the submitter re-gossips the offer every
	// bid window until enough workers bid.

	offer, err := submitter.Market().Submit(ctx, wasmSpec(3, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	rec := waitWorkers(ctx, t, submitter, id, 3)
	if len(rec.Workers) != 3 {
		t.Fatalf("assigned %v, want 3 workers", rec.Workers)
	}
	for _, miner := range nodes[:3] {
		if !slices.Contains(rec.Workers, miner.Network().ID()) {
			t.Fatalf("miner %s not among the workers %v", miner.Network().ID(), rec.Workers)
		}
		// The worker starts at once: its record is assigned or already
		// running (this test's module CID names nothing, so it never ends).
		w, err := miner.Jobs().Get(ctx, id)
		if err != nil || w.Role != job.RoleWorker || string(w.Offer) != string(offer.Raw) || w.History[0].State != job.StateAssigned {
			t.Fatalf("worker record: %+v, %v", w, err)
		}
	}
	if _, err := submitter.Jobs().Get(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// A job no miner can run fails at its deadline with the reason, taken
// from the miners' heartbeats.
func TestJobNobodyCanRunIsExplained(t *testing.T) {
	nodes := New(t, 3, Options{Configure: func(i int, cfg *config.Config) {
		cfg.Heartbeat.Interval.UnmarshalText([]byte("5s"))
		if i == 2 {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	submitter := nodes[2]
	for len(submitter.Heartbeats().Nodes()) < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("no heartbeats")
		case <-time.After(100 * time.Millisecond):
		}
	}
	spec := wasmSpec(1, 6*time.Second)
	spec.Reward = 10 // below every miner's 1000 floor
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateFailed)
	if !strings.Contains(rec.Reason, "2× asks at least 1000, the offer pays 10") {
		t.Fatalf("failure reason %q does not say why", rec.Reason)
	}
	// While it waited, the job's history already said why.
	waited := false
	for _, h := range rec.History {
		waited = waited || (h.State == job.StateOffered && strings.Contains(h.Note, "waiting for workers: needs 1 worker(s), 0 bid(s) in the last round; 0 of 2 known miner(s) could run it now (the others: 2× asks at least 1000, the offer pays 10)"))
	}
	if !waited {
		t.Fatalf("history does not explain the wait: %+v", rec.History)
	}
}
