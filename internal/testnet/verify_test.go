package testnet

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/wire"
)

// Dishonest miners of each kind on a real network: four honest miners,
// one returning garbage, one trying to pass off a result it did not
// compute, one that accepts work and never reports. Jobs run with exact
// verification (k = 3, m = 2) until every cheater has been chosen, then
// two more. Every accepted result is the correct one, every cheater chosen
// is named as a dissenter in the verdict with its reason, and once caught
// it is never chosen again; `vft nodes` and the dashboard's reputation
// endpoint show it excluded.
func TestDishonestMiners(t *testing.T) {
	faults := map[int]string{4: job.FaultWrongResult, 5: job.FaultCopy, 6: job.FaultNoShow}
	const miners = 7
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	nodes := New(t, miners+1, Options{Faults: faults, Configure: func(i int, cfg *config.Config) {
		cfg.Market.MaxJobs = 4
		cfg.Heartbeat.Interval.UnmarshalText([]byte("5s"))
		if i == miners {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	submitter := nodes[miners]
	cheater := map[peer.ID]string{}
	for i, f := range faults {
		cheater[nodes[i].Network().ID()] = f
	}
	dir := "../../examples/wordcount"
	module := addModule(ctx, t, submitter, dir)
	input := addPath(ctx, t, submitter, filepath.Join(dir, "testdata"))

	caught := map[peer.ID]bool{}
	correct := ""
	jobs, accepted, assigned := 0, 0, 0
	// Until every cheater is caught, then two more jobs in which none may
	// be chosen.
	for round, after := 1, 0; after < 2; round++ {
		if len(caught) == len(faults) {
			after++
		}
		if round > 14 {
			t.Fatalf("after %d jobs only %d of %d cheaters were chosen and caught", round-1, len(caught), len(faults))
		}
		spec := wasmSpec(3, 4*time.Minute)
		spec.Module, spec.Seed = module, 42
		spec.Needs.TimeoutMS = 20_000 // a no-show is replaced 20 s + report_grace after assignment
		spec.Inputs = []job.Input{{CID: input}}
		offer, err := submitter.Market().Submit(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		rec := waitEnd(ctx, t, submitter, offer.ID.String())
		jobs++
		assigned += len(rec.Workers) + len(rec.Missed)
		if rec.Verdict == nil {
			t.Fatalf("job %d ended %s without a verdict: %s", round, rec.State, rec.Reason)
		}
		if rec.State == job.StateDone {
			accepted++
			if correct == "" {
				correct = rec.Result
				checkOutput(ctx, t, submitter, correct, filepath.Join(dir, "expected", "texts"))
			}
			if rec.Result != correct {
				t.Fatalf("job %d accepted %s, the correct result is %s", round, rec.Result, correct)
			}
		}
		for _, s := range rec.Verdict.Agreed {
			p, _ := peer.Decode(s)
			if f, bad := cheater[p]; bad {
				t.Fatalf("job %d: %s cheater %s counted as agreeing", round, f, p)
			}
		}
		for _, s := range append(slices.Clone(rec.Verdict.Dissented), rec.Missed...) {
			p, _ := peer.Decode(s)
			if _, bad := cheater[p]; !bad {
				t.Fatalf("job %d: honest miner %s named as dissenting: %s (verdict %+v, reports %v, cheaters %v)", round, p, rec.Verdict.Reasons[s], rec.Verdict, rec.Reports, cheater)
			}
		}
		chosen := append(slices.Clone(rec.Workers), decodeAll(rec.Missed)...)
		for _, w := range chosen {
			f, bad := cheater[w]
			if !bad {
				continue
			}
			if caught[w] {
				t.Fatalf("job %d: %s cheater %s was chosen again after being caught", round, f, w)
			}
			if !slices.Contains(rec.Verdict.Dissented, w.String()) {
				t.Fatalf("job %d: %s cheater %s not named in the verdict %+v", round, f, w, rec.Verdict)
			}
			t.Logf("job %d: %s cheater caught: %s", round, f, rec.Verdict.Reasons[w.String()])
			caught[w] = true
		}
	}
	// The figures docs/VERIFICATION.md quotes.
	t.Logf("%d jobs, %d accepted, all correct; 0 honest miners flagged; %.2f workers assigned per accepted job (k = 3)",
		jobs, accepted, float64(assigned)/float64(max(accepted, 1)))
	for p, f := range cheater {
		if !excludedIn(ctx, t, submitter, p) {
			t.Fatalf("%s cheater %s is not excluded in the submitter's network table", f, p)
		}
	}
}

// excludedIn reads the network table through the API, as `vft nodes` does,
// and checks the dashboard's reputation endpoint agrees.
func excludedIn(ctx context.Context, t *testing.T, nd *node.Node, p peer.ID) bool {
	t.Helper()
	c := apiClient(t, nd)
	excluded, found := false, false
	for !found {
		entries, err := c.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Peer == p {
				excluded, found = e.Excluded && e.Reputation < 0.5, true
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never appeared in the network table", p)
		case <-time.After(200 * time.Millisecond): // its next heartbeat
		}
	}
	rated, err := c.Reputation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rated {
		if e.Peer == p && e.Excluded != excluded {
			t.Fatalf("/api/v1/reputation says %s excluded=%v, the network table %v", p, e.Excluded, excluded)
		}
	}
	return excluded
}

// waitEnd waits for a job to reach a terminal state.
func waitEnd(ctx context.Context, t *testing.T, nd *node.Node, id string) job.Record {
	t.Helper()
	for {
		r, err := nd.Jobs().Get(ctx, id)
		if err == nil && r.State.Terminal() {
			return r
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s never ended (last: %s, %v)", id, r.State, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func decodeAll(ids []string) []peer.ID {
	out := make([]peer.ID, 0, len(ids))
	for _, s := range ids {
		if p, err := peer.Decode(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// A node that gossips verdicts it has no right to sign (about a job it did
// not submit, framing an honest miner) is refused by every node's
// validator and counted against it; the framed miner loses nothing. A
// replay of a real verdict changes nothing either.
func TestForgedVerdictsPenalized(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 3, nil)
	submitter := nodes[3]
	attacker, attackerKey := startAttacker(t, ctx, nodes[0], job.VerdictsTopic)
	waitTopicMesh(ctx, t, []*p2p.Topic{attacker}, len(nodes))

	spec := wasmSpec(3, 3*time.Minute)
	spec.Module = addModule(ctx, t, submitter, "../../examples/wordcount")
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, "../../examples/wordcount/testdata")}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	real, err := attacker.Next(ctx) // the submitter's verdict, as gossiped
	if err != nil {
		t.Fatal(err)
	}
	framed := nodes[0].Network().ID()
	forged := job.Verdict{Job: rec.ID, Offer: rec.Offer, Accepted: rec.Result,
		Agreed: []string{nodes[1].Network().ID().String(), nodes[2].Network().ID().String()}, Dissented: []string{framed.String()},
		Reasons: map[string]string{framed.String(): "made up"}}
	if err := attacker.Publish(ctx, real.Data); err != nil { // a replay
		t.Fatal(err)
	}
	// The forgery is re-signed (so it is a new message) until every node
	// has seen it: one gossip message can miss a node whose mesh is still
	// forming.
	go func() {
		for ctx.Err() == nil {
			if raw, err := wire.Seal(attackerKey, job.KindVerdict, time.Now(), forged); err == nil {
				attacker.Publish(ctx, raw)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	// Every node that received the forgery penalised its author.
	for _, nd := range nodes[:3] {
		c := apiClient(t, nd)
		for {
			rated, err := c.Reputation(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var attackerExcluded bool
			for _, e := range rated {
				if e.Peer == attackerKey.PeerID() && e.Excluded {
					attackerExcluded = true
				}
				if e.Peer == framed && e.Excluded {
					t.Fatalf("node %s excluded the framed miner %s", nd.Network().ID(), framed)
				}
			}
			if attackerExcluded {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("node %s never penalised the forger %s", nd.Network().ID(), attackerKey.PeerID())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// Spot checks on a real network: a spot job runs on one worker; when the
// submitter's hidden draw picks it (here always: p = 1), a second worker
// re-runs it, never the first one, and the job is accepted only when both
// agree; the verdict names both.
func TestSpotCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 3, nil)
	submitter := nodes[3]
	spec := wasmSpec(1, 3*time.Minute)
	spec.Verify = job.VerificationPolicy{Mode: job.VerifySpot, Workers: 1, Quorum: 1, SpotPermille: 1000}
	spec.Module = addModule(ctx, t, submitter, "../../examples/wordcount")
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, "../../examples/wordcount/testdata")}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	if len(rec.Workers) != 2 || rec.Workers[0] == rec.Workers[1] || len(rec.Verdict.Agreed) != 2 {
		t.Fatalf("workers %v, verdict %+v: want the worker and a different verifier agreeing", rec.Workers, rec.Verdict)
	}
	checked := false
	for _, h := range rec.History {
		checked = checked || strings.Contains(h.Note, "spot check")
	}
	if !checked {
		t.Fatalf("history %+v does not say the job was spot-checked", rec.History)
	}
}
