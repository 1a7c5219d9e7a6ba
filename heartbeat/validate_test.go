package heartbeat

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/wire"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T, c *clock) *Service {
	t.Helper()
	key, _ := identity.Generate()
	s, err := New(Config{Interval: units.Duration(30 * time.Second)}, key, nil, false, slog.New(slog.DiscardHandler), Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func seal(t *testing.T, key *identity.Key, at time.Time, hb Heartbeat) []byte {
	t.Helper()
	data, err := wire.Seal(key, Kind, at, hb)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var sample = Heartbeat{Mode: "miner", Version: "test", IntervalSec: 30, Executors: []string{"wasm"}, CPUCores: 8}

func TestValidate(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	alice, _ := identity.Generate()
	mallory, _ := identity.Generate()
	huge := sample
	huge.Executors = []string{strings.Repeat("x", MaxSize)}
	tooSlow := sample
	tooSlow.IntervalSec = 86400
	behindNAT := sample // heartbeat/2's optional keys, as a NAT'd GPU miner sends them
	behindNAT.Reachability, behindNAT.OCIRuntime, behindNAT.GPUAccess = ReachabilityPrivate, "runc", GPUAccessCDI
	behindNAT.Addrs = []string{"/ip4/198.18.0.1/tcp/4101/p2p/12D3KooWGRUVh2QUs3p8b2Dc5m7DXkHHM1jWJcD6jRwTKDrESx3M/p2p-circuit"}
	with := func(edit func(*Heartbeat)) Heartbeat { hb := sample; edit(&hb); return hb }

	cases := []struct {
		name    string
		from    peer.ID
		data    []byte
		wantErr error // nil: accepted; p2p.ErrIgnore: ignored; other: any rejection
		reject  bool
	}{
		{"genuine", alice.PeerID(), seal(t, alice, t0, sample), nil, false},
		{"signed by another node", mallory.PeerID(), seal(t, alice, t0, sample), nil, true},
		{"stale", alice.PeerID(), seal(t, alice, t0.Add(-5*time.Minute), sample), wire.ErrStale, true},
		{"future", alice.PeerID(), seal(t, alice, t0.Add(5*time.Minute), sample), wire.ErrFuture, true},
		{"oversize", alice.PeerID(), seal(t, alice, t0, huge), wire.ErrTooLarge, true},
		{"interval out of bounds", alice.PeerID(), seal(t, alice, t0, tooSlow), nil, true},
		{"garbage", alice.PeerID(), []byte("not cbor"), wire.ErrMalformed, true},
		{"behind NAT with a relay address", alice.PeerID(), seal(t, alice, t0, behindNAT), nil, false},
		{"too many addresses", alice.PeerID(), seal(t, alice, t0, with(func(h *Heartbeat) {
			h.Addrs = slices.Repeat([]string{"/ip4/198.18.0.1/tcp/4101"}, MaxAddrs+1)
		})), nil, true},
		{"address not a multiaddr", alice.PeerID(), seal(t, alice, t0, with(func(h *Heartbeat) { h.Addrs = []string{"198.18.0.1:4101"} })), nil, true},
		{"address too long", alice.PeerID(), seal(t, alice, t0, with(func(h *Heartbeat) {
			h.Addrs = []string{"/dns4/" + strings.Repeat("a", MaxAddrLen) + "/tcp/1"}
		})), nil, true},
		{"unknown reachability", alice.PeerID(), seal(t, alice, t0, with(func(h *Heartbeat) { h.Reachability = "excellent" })), nil, true},
		{"unknown gpu access", alice.PeerID(), seal(t, alice, t0, with(func(h *Heartbeat) { h.GPUAccess = "magic" })), nil, true},
		{"runtime not a program name", alice.PeerID(), seal(t, alice, t0, with(func(h *Heartbeat) { h.OCIRuntime = "/usr/bin/runc; reboot" })), nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, &clock{t0})
			err := s.Validate(context.Background(), tc.from, tc.data)
			if !tc.reject {
				if err != nil {
					t.Fatalf("rejected a genuine heartbeat: %v", err)
				}
				if n := s.Nodes(); len(n) != 1 || n[0].Peer != alice.PeerID() || n[0].Heartbeat.CPUCores != 8 {
					t.Fatalf("table = %+v", n)
				}
				return
			}
			if err == nil || errors.Is(err, p2p.ErrIgnore) {
				t.Fatalf("Validate = %v, want a rejection", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate = %v, want %v", err, tc.wantErr)
			}
			if len(s.Nodes()) != 0 {
				t.Fatal("a rejected heartbeat entered the table")
			}
		})
	}
}

// Replays and bursts from a known node: an old or repeated heartbeat is
// ignored, one sent far too soon is rejected, and the entry expires after
// three missed intervals.
func TestValidateSequence(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := &clock{t0}
	s := newService(t, c)
	alice, _ := identity.Generate()
	ctx := context.Background()
	first := seal(t, alice, t0, sample)
	if err := s.Validate(ctx, alice.PeerID(), first); err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(time.Second)
	if err := s.Validate(ctx, alice.PeerID(), first); !errors.Is(err, p2p.ErrIgnore) {
		t.Fatalf("replayed heartbeat: %v, want ignored", err)
	}
	if err := s.Validate(ctx, alice.PeerID(), seal(t, alice, t0.Add(-time.Second), sample)); !errors.Is(err, p2p.ErrIgnore) {
		t.Fatalf("older heartbeat: %v, want ignored", err)
	}
	c.t = t0.Add(3 * time.Second)
	if err := s.Validate(ctx, alice.PeerID(), seal(t, alice, c.t, sample)); err == nil || errors.Is(err, p2p.ErrIgnore) {
		t.Fatalf("heartbeat 3s after the last with a 30s interval: %v, want rejected as too frequent", err)
	}
	c.t = t0.Add(30 * time.Second)
	if err := s.Validate(ctx, alice.PeerID(), seal(t, alice, c.t, sample)); err != nil {
		t.Fatalf("next on-time heartbeat rejected: %v", err)
	}
	c.t = t0.Add(30*time.Second + 89*time.Second)
	if len(s.Nodes()) != 1 {
		t.Fatal("entry expired before three missed intervals")
	}
	c.t = t0.Add(30*time.Second + 91*time.Second)
	if len(s.Nodes()) != 0 {
		t.Fatal("entry outlived three missed intervals")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, d := range []string{"1s", "31m"} {
		var v units.Duration
		v.UnmarshalText([]byte(d))
		if err := (Config{Interval: v}).Validate(); err == nil || !strings.Contains(err.Error(), d) {
			t.Errorf("interval %s: %v", d, err)
		}
	}
}
