package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/p2p"
)

func TestScaledInterval(t *testing.T) {
	tests := []struct {
		configured time.Duration
		nodes      int
		rate       float64
		want       time.Duration
	}{
		{30 * time.Second, 0, NetworkBeatRate, 30 * time.Second},
		{30 * time.Second, 300, NetworkBeatRate, 30 * time.Second},
		{30 * time.Second, 1_000, NetworkBeatRate, 100 * time.Second},
		{30 * time.Second, 10_000, NetworkBeatRate, 1000 * time.Second},
		{30 * time.Second, 1_000_000, NetworkBeatRate, MaxInterval},
		{5 * time.Minute, 1_000, NetworkBeatRate, 5 * time.Minute},
		{5 * time.Second, 50, 2, 25 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%d/%g", tt.configured, tt.nodes, tt.rate), func(t *testing.T) {
			if got := ScaledInterval(tt.configured, tt.nodes, tt.rate); got != tt.want {
				t.Fatalf("ScaledInterval = %v, want %v", got, tt.want)
			}
		})
	}
}

// fill puts n live, established entries in s's table, each reporting a
// network of `reports` nodes.
func fill(s *Service, n int, reports uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for i := range n {
		id := peer.ID(fmt.Sprintf("peer-%d", i))
		s.table[id] = Entry{Peer: id, SignedAt: now, ReceivedAt: now, ExpiresAt: now.Add(time.Hour),
			Heartbeat: Heartbeat{IntervalSec: 30, NetworkSize: reports}, firstSeen: now.Add(-EstablishAfter), beats: 2}
	}
	s.sizeAt = time.Time{}
}

// TestIntervalFollowsNetworkSize: a node's interval grows with its table
// and, while its own table is still small, with what the others report
// (their median, so a few liars cannot stretch it).
func TestIntervalFollowsNetworkSize(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		live        int
		reports     uint32
		liars       int
		wantSize    int
		wantBeatsIn time.Duration
	}{
		{name: "small network", live: 50, reports: 50, wantSize: 50, wantBeatsIn: 30 * time.Second},
		{name: "own table of 4000", live: 4_000, reports: 4_000, wantSize: 4_000, wantBeatsIn: 400 * time.Second},
		{name: "just joined: the others' word", live: 100, reports: 10_000, wantSize: 10_000, wantBeatsIn: 1000 * time.Second},
		{name: "a few liars are outvoted", live: 100, reports: 100, liars: 10, wantSize: 110, wantBeatsIn: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newService(t, &clock{t0})
			s.caps = func(context.Context) Heartbeat { return sample }
			fill(s, tt.live, tt.reports)
			s.mu.Lock()
			for i := range tt.liars {
				id := peer.ID(fmt.Sprintf("liar-%d", i))
				s.table[id] = Entry{Peer: id, ExpiresAt: t0.Add(time.Hour), Heartbeat: Heartbeat{NetworkSize: 1 << 30},
					firstSeen: t0.Add(-EstablishAfter), beats: 2}
			}
			s.sizeAt = time.Time{}
			s.mu.Unlock()
			topic := &recordTopic{}
			interval, err := s.beat(context.Background(), topic)
			if err != nil {
				t.Fatal(err)
			}
			if interval != tt.wantBeatsIn {
				t.Fatalf("next beat in %v, want %v", interval, tt.wantBeatsIn)
			}
			self := s.table[s.key.PeerID()].Heartbeat
			if int(self.NetworkSize) != tt.wantSize || time.Duration(self.IntervalSec)*time.Second != tt.wantBeatsIn {
				t.Fatalf("announced network_size %d interval_s %d, want %d and %v", self.NetworkSize, self.IntervalSec, tt.wantSize, tt.wantBeatsIn)
			}
			if len(topic.published) != 1 {
				t.Fatalf("published %d heartbeats", len(topic.published))
			}
		})
	}
}

// TestValidateRejectsSmallNetworkInterval: in a network of 4000 nodes
// (400 s intervals), a node beating every 30 s would multiply everyone's
// traffic; anything from a quarter of the scaled interval up is accepted.
func TestValidateRejectsSmallNetworkInterval(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := newService(t, &clock{t0})
	fill(s, 4_000, 4_000)
	alice, _ := identity.Generate()
	fast := sample
	fast.IntervalSec = 30
	if err := s.Validate(context.Background(), alice.PeerID(), seal(t, alice, t0, fast)); err == nil || errors.Is(err, p2p.ErrIgnore) {
		t.Fatalf("30 s interval in a 4000-node network: %v, want rejected", err)
	}
	ok := sample
	ok.IntervalSec = 100
	if err := s.Validate(context.Background(), alice.PeerID(), seal(t, alice, t0, ok)); err != nil {
		t.Fatalf("100 s interval (a quarter of 400 s) rejected: %v", err)
	}
}

// TestIntervalGrowsAtMostTwofold: a node that joined a large network at its
// configured interval doubles it beat by beat, so that its entry in the
// others' tables (3 announced intervals) never lapses between beats.
func TestIntervalGrowsAtMostTwofold(t *testing.T) {
	c := &clock{time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	s := newService(t, c)
	s.caps = func(context.Context) Heartbeat { return sample }
	topic := &recordTopic{}
	var got []time.Duration
	for i := range 7 {
		if i == 1 {
			fill(s, 100, 10_000) // the others' heartbeats arrive
		}
		interval, err := s.beat(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, interval)
		c.t = c.t.Add(interval)
		s.sizeAt = time.Time{}
	}
	want := []time.Duration{30, 60, 120, 240, 480, 960, 1000}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("intervals %v, want %v seconds", got, want)
		}
	}
}

// recordTopic keeps what is published.
type recordTopic struct{ published [][]byte }

func (r *recordTopic) Publish(_ context.Context, data []byte) error {
	r.published = append(r.published, data)
	return nil
}
func (r *recordTopic) Next(ctx context.Context) (p2p.Message, error) {
	<-ctx.Done()
	return p2p.Message{}, ctx.Err()
}
func (r *recordTopic) Peers() []peer.ID { return nil }
