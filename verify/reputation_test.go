package verify

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	pebbleds "github.com/ipfs/go-ds-pebble"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// pid is a valid peer ID for a name, as the table stores IDs as text.
func pid(name string) peer.ID {
	m, err := mh.Sum([]byte(name), mh.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return peer.ID(m)
}

var (
	me, alice, bob, carol, sybil = pid("me"), pid("alice"), pid("bob"), pid("carol"), pid("sybil")
	t0                           = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

func newTestReputation(t *testing.T, ds datastore.Batching) (*Reputation, *time.Time) {
	t.Helper()
	if ds == nil {
		ds = dssync.MutexWrap(datastore.NewMapDatastore())
	}
	r, err := NewReputation(ds, me, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	r.now = func() time.Time { return now }
	return r, &now
}

// step is one thing that happens to the table.
type step func(r *Reputation) error

func observe(author peer.ID, job string, agreed, dissented []peer.ID) step {
	return func(r *Reputation) error {
		return r.Observe(context.Background(), Observation{Author: author, Job: job, Agreed: agreed, Dissented: dissented, At: r.now()})
	}
}

func penalize(p peer.ID) step {
	return func(r *Reputation) error {
		return r.Penalize(context.Background(), p, "reveal does not open its commitment")
	}
}

func repeat(n int, f func(i int) step) []step {
	var out []step
	for i := range n {
		out = append(out, f(i))
	}
	return out
}

func jobN(prefix string, i int) string {
	return prefix + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
}

func TestReputationRules(t *testing.T) {
	ps := func(p ...peer.ID) []peer.ID { return p }
	// trustAlice makes alice an author we have checked ourselves:
	// good 3 from our own verdicts, score 0.8, weight 0.3*0.8.
	trustAlice := repeat(3, func(i int) step { return observe(me, jobN("own", i), ps(alice, bob), nil) })
	// know puts a peer in the table without evidence either way.
	know := func(p peer.ID) step {
		return func(r *Reputation) error { r.add(p, r.now(), 0, 0, true, false, false); return nil }
	}
	knowCarol := know(carol)
	tests := []struct {
		name         string
		steps        []step
		peer         peer.ID
		good, bad    float64
		wantExcluded bool
	}{
		{"unknown peer", nil, carol, 0, 0, false},
		{"our own check: agreed", []step{observe(me, "j1", ps(alice, bob), ps(carol))}, alice, 1, 0, false},
		{"our own check: dissent from an accepted result excludes",
			[]step{observe(me, "j1", ps(alice, bob), ps(carol))}, carol, 0, 1, true},
		{"a proven worker's dissent is bad evidence, not exclusion",
			[]step{observe(me, "j0", ps(carol, bob), nil), observe(me, "j1", ps(alice, bob), ps(carol))}, carol, 1, 1, false},
		{"a proven worker below the floor is excluded",
			append([]step{observe(me, "j0", ps(carol, bob), nil)},
				repeat(8, func(i int) step { return observe(me, jobN("d", i), ps(alice, bob), ps(carol)) })...), carol, 1, 8, true},
		{"our own check: no result accepted is bad but no exclusion",
			[]step{observe(me, "j1", nil, ps(alice, carol))}, carol, 0, 1, false},
		{"a replayed verdict counts once",
			[]step{observe(me, "j1", ps(alice), nil), observe(me, "j1", ps(alice), nil)}, alice, 1, 0, false},
		{"same job by another author counts",
			append(trustAlice, observe(me, "j1", ps(carol), nil), observe(alice, "j1", ps(carol), nil)), carol, 1 + 0.3*0.8, 0, false},
		{"an unknown author weighs near nothing",
			[]step{knowCarol, observe(sybil, "j1", ps(carol), nil)}, carol, unvouchedWeight, 0, false},
		{"an unknown author cannot add peers to the table",
			[]step{observe(sybil, "j1", ps(carol), nil)}, carol, 0, 0, false},
		{"a sybil swarm moves a peer by at most one verdict",
			append([]step{knowCarol}, repeat(200, func(i int) step { return observe(pid(jobN("sybil", i)), "j", ps(carol), nil) })...),
			carol, unvouchedCap, 0, false},
		{"sybils cannot get an honest peer excluded",
			append([]step{knowCarol}, repeat(200, func(i int) step { return observe(pid(jobN("sybil", i)), "j", ps(alice), ps(carol)) })...),
			carol, 0, unvouchedCap, false},
		{"second-hand praise does not make an author trusted",
			append(append([]step{knowCarol, know(alice)},
				repeat(3, func(i int) step { return observe(sybil, jobN("s", i), ps(alice), nil) })...),
				observe(alice, "j1", ps(carol), nil)), carol, unvouchedWeight, 0, false},
		{"a trusted author weighs its score times the factor",
			append(trustAlice, observe(alice, "j1", ps(carol), nil)), carol, 0.3 * 0.8, 0, false},
		{"a trusted author's dissent does not exclude",
			append(trustAlice, observe(alice, "j1", ps(bob), ps(carol))), carol, 0, 0.3 * 0.8, false},
		{"nobody gains from a verdict about itself",
			append(trustAlice, observe(alice, "j1", ps(alice, carol), nil)), alice, 3, 0, false},
		{"an excluded author's verdicts count for nothing",
			append(trustAlice, penalize(alice), observe(alice, "j1", ps(carol), nil)), carol, 0, 0, false},
		{"a protocol violation excludes", []step{penalize(carol)}, carol, 0, penaltyWeight, true},
		{"a score below the floor excludes",
			repeat(4, func(i int) step { return observe(me, jobN("r", i), nil, ps(carol)) }), carol, 0, 4, true},
		{"a stale verdict is ignored", []step{func(r *Reputation) error {
			return r.Observe(context.Background(), Observation{Author: me, Job: "old", Agreed: ps(carol), At: r.now().Add(-verdictWindow - time.Hour)})
		}}, carol, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestReputation(t, nil)
			for i, s := range tt.steps {
				if err := s(r); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			var got Entry
			for _, e := range r.All() {
				if e.Peer == tt.peer {
					got = e
				}
			}
			if !near(got.Good, tt.good) || !near(got.Bad, tt.bad) {
				t.Fatalf("good=%g bad=%g, want %g %g", got.Good, got.Bad, tt.good, tt.bad)
			}
			if want := (tt.good + 1) / (tt.good + tt.bad + 2); !near(r.Score(tt.peer), want) {
				t.Fatalf("Score = %g, want %g", r.Score(tt.peer), want)
			}
			if r.Excluded(tt.peer) != tt.wantExcluded {
				t.Fatalf("Excluded = %v, want %v", r.Excluded(tt.peer), tt.wantExcluded)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestReputationRejectsContradiction(t *testing.T) {
	r, _ := newTestReputation(t, nil)
	err := r.Observe(context.Background(), Observation{Author: me, Job: "j", Agreed: []peer.ID{alice}, Dissented: []peer.ID{alice}})
	if err == nil || !strings.Contains(err.Error(), alice.String()) {
		t.Fatalf("err = %v, want one naming %s", err, alice)
	}
}

func TestReputationDecay(t *testing.T) {
	r, now := newTestReputation(t, nil)
	ctx := context.Background()
	for i := range 4 {
		if err := r.Observe(ctx, Observation{Author: me, Job: jobN("j", i), Agreed: []peer.ID{alice}}); err != nil {
			t.Fatal(err)
		}
	}
	*now = now.Add(halfLife)
	if got := r.All()[0].Good; !near(got, 2) {
		t.Fatalf("good after one half-life = %g, want 2", got)
	}
	if err := r.Penalize(ctx, bob, "forged verdict"); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(10 * halfLife)
	if !r.Excluded(bob) {
		t.Fatal("exclusion decayed; it must not")
	}
}

// TestReputationMissedDeadline: a worker that misses the deadline on our
// job is benched for an hour, then two, then four, and kept out for good
// once its score falls under the floor; one that has proven itself, or
// missed on someone else's job, is only marked down.
func TestReputationMissedDeadline(t *testing.T) {
	ctx := context.Background()
	missed := func(r *Reputation, author peer.ID, job string, p peer.ID) {
		t.Helper()
		if err := r.Observe(ctx, Observation{Author: author, Job: job, Agreed: []peer.ID{alice}, Missed: []peer.ID{p}, At: r.now()}); err != nil {
			t.Fatal(err)
		}
	}
	r, now := newTestReputation(t, nil)
	for i, bench := range []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour} {
		missed(r, me, jobN("m", i), carol)
		if !r.Excluded(carol) {
			t.Fatalf("miss %d: not benched", i+1)
		}
		*now = now.Add(bench - time.Minute)
		if !r.Excluded(carol) {
			t.Fatalf("miss %d: bench ended before %v", i+1, bench)
		}
		*now = now.Add(2 * time.Minute)
		if r.Excluded(carol) {
			t.Fatalf("miss %d: still benched after %v (score %.2f)", i+1, bench, r.Score(carol))
		}
	}
	missed(r, me, "m-last", carol) // 4 misses, no agreement: 1/6 is under the floor
	*now = now.Add(maxBench + time.Hour)
	if !r.Excluded(carol) {
		t.Fatalf("four misses without a result: score %.2f, not excluded", r.Score(carol))
	}

	r, _ = newTestReputation(t, nil)
	if err := observe(me, "ok", []peer.ID{bob, alice}, nil)(r); err != nil {
		t.Fatal(err)
	}
	missed(r, me, "m", bob)
	if r.Excluded(bob) || !near(r.Score(bob), 2.0/4) {
		t.Fatalf("a proven worker's miss: excluded %v, score %.2f; want marked down only", r.Excluded(bob), r.Score(bob))
	}
	r, _ = newTestReputation(t, nil)
	for i := range 3 {
		if err := observe(me, jobN("own", i), []peer.ID{alice, carol}, nil)(r); err != nil {
			t.Fatal(err)
		}
	}
	dave := pid("dave")
	if err := r.Observe(ctx, Observation{Author: alice, Job: "theirs", Missed: []peer.ID{dave}}); err != nil {
		t.Fatal(err)
	}
	if r.Excluded(dave) {
		t.Fatal("a miss on another submitter's job benched the worker here")
	}
}

func TestReputationAll(t *testing.T) {
	r, _ := newTestReputation(t, nil)
	for _, s := range []step{
		observe(me, "j1", []peer.ID{alice, bob}, []peer.ID{carol}),
		observe(me, "j2", []peer.ID{alice}, nil),
	} {
		if err := s(r); err != nil {
			t.Fatal(err)
		}
	}
	all := r.All()
	if len(all) != 3 || all[0].Peer != alice || all[1].Peer != bob || all[2].Peer != carol || !all[2].Excluded {
		t.Fatalf("All = %+v, want alice, bob, carol (excluded)", all)
	}
	data, err := json.Marshal(all[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"peer":"`, `"score":0.75`, `"good":2`, `"bad":0`, `"excluded":false`, `"last_seen":"2026-11-26T12:00:00Z"`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON %s lacks %s", data, key)
		}
	}
}

func TestReputationEvictsLeastRecentlySeen(t *testing.T) {
	ds := dssync.MutexWrap(datastore.NewMapDatastore())
	r, now := newTestReputation(t, ds)
	r.maxPeers = 2
	ctx := context.Background()
	for i, p := range []peer.ID{alice, bob, carol} {
		*now = now.Add(time.Minute)
		if err := r.Observe(ctx, Observation{Author: me, Job: jobN("j", i), Agreed: []peer.ID{p}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.All()) != 2 || r.Score(alice) != 0.5 {
		t.Fatalf("table = %+v, want bob and carol only", r.All())
	}
	// The evicted peer is gone from disk too.
	r2, err := NewReputation(ds, me, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.All()) != 2 {
		t.Fatalf("reopened table = %+v, want 2 peers", r2.All())
	}
}

func TestReputationSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func() (*pebbleds.Datastore, *Reputation) {
		ds, err := pebbleds.NewDatastore(dir)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewReputation(ds, me, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ds, r
	}
	ds, r := open()
	steps := []step{
		observe(me, "j1", []peer.ID{alice, bob}, []peer.ID{carol}),
		observe(me, "j2", []peer.ID{alice}, nil),
	}
	for _, s := range steps {
		if err := s(r); err != nil {
			t.Fatal(err)
		}
	}
	want := r.All()
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}

	ds, r = open()
	defer ds.Close()
	got := r.All()
	if len(got) != len(want) {
		t.Fatalf("after reopen %d peers, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Peer != want[i].Peer || !near(got[i].Score, want[i].Score) || got[i].Excluded != want[i].Excluded {
			t.Fatalf("after reopen entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// The verdict is remembered too: replaying it changes nothing.
	if err := r.Observe(ctx, Observation{Author: me, Job: "j2", Agreed: []peer.ID{alice}}); err != nil {
		t.Fatal(err)
	}
	if s := r.Score(alice); !near(s, want[0].Score) {
		t.Fatalf("a verdict replayed after reopen changed alice's score to %g", s)
	}
}
