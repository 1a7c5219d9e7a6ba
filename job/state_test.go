package job

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	pebbleds "github.com/ipfs/go-ds-pebble"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
)

// The book is kept in the same on-disk store the node uses; a job survives
// closing and reopening it (a daemon restart), and illegal moves are refused.
func TestBookSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	clock := t0
	now := func() time.Time { clock = clock.Add(time.Second); return clock }

	var workers []peer.ID
	for range 3 {
		k, _ := identity.Generate()
		workers = append(workers, k.PeerID())
	}
	ds, err := pebbleds.NewDatastore(dir)
	if err != nil {
		t.Fatal(err)
	}
	book := NewBook(ds, now)
	if _, err := book.Create(ctx, "job-a", RoleSubmitter, []byte("offer-a"), StateOffered, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := book.Create(ctx, "job-a", RoleSubmitter, nil, StateOffered, nil); err == nil {
		t.Fatal("created the same job twice")
	}
	if _, err := book.Create(ctx, "job-b", RoleWorker, []byte("offer-b"), StateAssigned, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := book.Move(ctx, "job-a", StateAssigned, "3 workers", func(r *Record) { r.Workers = workers }); err != nil {
		t.Fatal(err)
	}
	if _, err := book.Move(ctx, "job-b", StateDone, "", nil); !errors.Is(err, ErrTransition) {
		t.Fatalf("assigned → done: %v, want ErrTransition", err)
	}
	if _, err := book.Move(ctx, "job-b", StateRunning, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := book.Move(ctx, "nope", StateRunning, "", nil); !errors.Is(err, ErrNoJob) {
		t.Fatalf("unknown job: %v", err)
	}
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}

	ds, err = pebbleds.NewDatastore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	book = NewBook(ds, now)
	a, err := book.Get(ctx, "job-a")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != StateAssigned || len(a.Workers) != 3 || string(a.Offer) != "offer-a" || len(a.History) != 2 {
		t.Fatalf("job-a after restart: %+v", a)
	}
	open, err := book.Unfinished(ctx)
	if err != nil || len(open) != 2 {
		t.Fatalf("unfinished = %d jobs, %v; want 2", len(open), err)
	}
	if open[0].ID != "job-b" {
		t.Fatalf("most recently updated first: got %s", open[0].ID)
	}
	for _, s := range []State{StateVerifying, StateSettling, StateDone} {
		if _, err := book.Move(ctx, "job-b", s, "", nil); err != nil {
			t.Fatalf("→ %s: %v", s, err)
		}
	}
	if _, err := book.Move(ctx, "job-b", StateRunning, "", nil); !errors.Is(err, ErrTransition) {
		t.Fatal("a done job moved again")
	}
	open, _ = book.Unfinished(ctx)
	if len(open) != 1 {
		t.Fatalf("unfinished after job-b is done: %d", len(open))
	}
}

// Watchers see every saved change in order, and no refused one.
func TestBookWatch(t *testing.T) {
	ctx := context.Background()
	ds, err := pebbleds.NewDatastore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	book := NewBook(ds, nil)
	var seen []State
	book.Watch(func(r Record) { seen = append(seen, r.State) })
	book.Create(ctx, "j", RoleWorker, nil, StateAssigned, nil)
	book.Move(ctx, "j", StateRunning, "", nil)
	book.Move(ctx, "j", StateOffered, "", nil) // refused: running → offered
	book.Update(ctx, "j", func(r *Record) { r.Result = "x" })
	want := []State{StateAssigned, StateRunning, StateRunning}
	if len(seen) != len(want) {
		t.Fatalf("watcher saw %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("watcher saw %v, want %v", seen, want)
		}
	}
}

// testClock is a clock a test moves; NewBook(ds, c.Now) makes it the
// clock of every market and worker sharing that book.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
