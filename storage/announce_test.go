package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/multiformats/go-multihash"
)

// announceCounter counts the provider announces a Store makes on a real
// DHT, and fails the first failFirst of them without sending anything.
type announceCounter struct {
	routing.ContentRouting
	mu        sync.Mutex
	calls     map[cid.Cid]int
	failFirst int
}

func (r *announceCounter) Provide(ctx context.Context, c cid.Cid, announce bool) error {
	r.mu.Lock()
	r.calls[c]++
	fail := r.failFirst > 0
	if fail {
		r.failFirst--
	}
	r.mu.Unlock()
	if fail {
		return errors.New("no peer took the record (test)")
	}
	return r.ContentRouting.Provide(ctx, c, announce)
}

func (r *announceCounter) count(c cid.Cid) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[c]
}

// TestAddingAgainDoesNotAnnounceAgain: a root this store announced on
// the DHT a moment ago (a miner's jobs that keep producing the same
// result, a dataset added twice) is not announced again, since each
// announce is a DHT lookup and a record sent to some 20 peers; one that
// failed is announced on the next add.
func TestAddingAgainDoesNotAnnounceAgain(t *testing.T) {
	ctx := context.Background()
	ha, hb := newHost(t), newHost(t)
	da, db := newDHT(t, ha), newDHT(t, hb)
	connect(t, ha, hb)
	// Until b is in a's table, an announce fails (no peer to take it).
	for deadline := time.Now().Add(10 * time.Second); da.RoutingTable().Size() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the other DHT server never entered the routing table")
		}
		time.Sleep(10 * time.Millisecond)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "result.txt")
	if err := os.WriteFile(file, randomBytes(200<<10, 7), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.txt")
	if err := os.WriteFile(other, randomBytes(10<<10, 8), 0o644); err != nil {
		t.Fatal(err)
	}

	rt := &announceCounter{ContentRouting: da, calls: map[cid.Cid]int{}}
	s, err := New(testConfig(), t.TempDir(), ha, rt, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var root, otherRoot cid.Cid
	for range 3 {
		if root, err = s.Add(ctx, file, AddOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if otherRoot, err = s.Add(ctx, other, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // waits for the announces
		t.Fatal(err)
	}
	if got := rt.count(root); got != 1 {
		t.Errorf("a root added 3 times was announced %d times, want once", got)
	}
	if got := rt.count(otherRoot); got != 1 {
		t.Errorf("another root was announced %d times, want once", got)
	}
	waitProvided(t, db, root, ha.ID())

	// A failed announce is forgotten: the next add tries again.
	rt = &announceCounter{ContentRouting: da, calls: map[cid.Cid]int{}, failFirst: 1}
	s, err = New(testConfig(), t.TempDir(), ha, rt, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rt.count(root) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after a failed announce, adding again never announced again (%d announces)", rt.count(root))
		}
		if _, err := s.Add(ctx, file, AddOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAnnounceWindow: an announce is skipped while one began less than
// announceAgainAfter ago, and the memory of them stays bounded.
func TestAnnounceWindow(t *testing.T) {
	s := &Store{}
	c := func(i int) cid.Cid {
		mh, err := multihash.Sum([]byte{byte(i), byte(i >> 8)}, multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		return cid.NewCidV1(cid.Raw, mh)
	}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		at   time.Duration
		cid  int
		want bool
	}{
		{0, 1, true},
		{time.Second, 1, false},
		{announceAgainAfter - time.Second, 1, false},
		{announceAgainAfter, 1, true},
		{announceAgainAfter + time.Minute, 1, false},
		{announceAgainAfter + time.Minute, 2, true},
	}
	for _, st := range steps {
		if got := s.startAnnounce(c(st.cid), t0.Add(st.at)); got != st.want {
			t.Errorf("at +%s, CID %d: announce %v, want %v", st.at, st.cid, got, st.want)
		}
	}
	s.forgetAnnounce(c(2))
	if !s.startAnnounce(c(2), t0.Add(announceAgainAfter+time.Minute)) {
		t.Error("a forgotten (failed) announce was skipped")
	}

	// Full of fresh announces: a new CID is still announced, each time.
	later := t0.Add(3 * announceAgainAfter)
	for i := range maxAnnounced {
		s.startAnnounce(c(1000+i), later)
	}
	for range 2 {
		if !s.startAnnounce(c(99), later) {
			t.Error("with the memory full, a new CID was not announced")
		}
	}
	if len(s.announced) > maxAnnounced {
		t.Errorf("%d announces remembered, want at most %d", len(s.announced), maxAnnounced)
	}
	// Once they are old, they make room.
	if !s.startAnnounce(c(99), later.Add(announceAgainAfter)) || s.startAnnounce(c(99), later.Add(announceAgainAfter)) {
		t.Error("old announces did not make room for a new one")
	}
}
