package job

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/verify"
)

// loopbackHost is a real libp2p host on 127.0.0.1 with key's identity.
func loopbackHost(t *testing.T, key *identity.Key) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(key.LibP2P()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestRevealToCoWorker: a worker opens its commitment to the job's
// submitter at any time, to a co-worker of an escrowed job only after the
// job's deadline (when nothing can be copied any more), and never to
// anyone else or for a job without escrow.
func TestRevealToCoWorker(t *testing.T) {
	ctx := context.Background()
	keys := map[string]*identity.Key{}
	for _, name := range []string{"submitter", "worker", "coworker", "stranger"} {
		keys[name], _ = identity.Generate()
	}
	hosts := map[string]host.Host{}
	for name, k := range keys {
		hosts[name] = loopbackHost(t, k)
	}
	for name, h := range hosts {
		if name != "worker" {
			if err := h.Connect(ctx, peer.AddrInfo{ID: hosts["worker"].ID(), Addrs: hosts["worker"].Addrs()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(time.Hour)
	clock := newTestClock(time.Now())
	book := NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), clock.Now)
	offers := map[bool]Offer{}
	for _, escrowed := range []bool{true, false} {
		spec := validSpec()
		spec.Deadline = deadline.UnixMilli()
		if escrowed {
			spec.Escrow, spec.Mint = true, "So11111111111111111111111111111111111111112"
		}
		o, err := NewOffer(keys["submitter"], spec, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		offers[escrowed] = o
		if _, err := book.Create(ctx, o.ID.String(), RoleWorker, o.Raw, StateVerifying, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := book.Update(ctx, o.ID.String(), func(r *Record) {
			r.Workers = []peer.ID{keys["worker"].PeerID(), keys["coworker"].PeerID()}
			r.Result, r.Salt = fakeCID("result"), verify.NewSalt()
		}); err != nil {
			t.Fatal(err)
		}
	}
	worker := NewWorker(keys["worker"], hosts["worker"], book, nil, WorkerOptions{WorkDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	worker.Start()
	defer worker.Close()

	tests := []struct {
		name          string
		asker         string
		escrowed      bool
		afterDeadline bool
		wantRefused   bool // the stream is reset: no reason goes back
	}{
		{name: "the submitter", asker: "submitter", escrowed: true},
		{name: "a co-worker before the deadline", asker: "coworker", escrowed: true, wantRefused: true},
		{name: "a co-worker after the deadline", asker: "coworker", escrowed: true, afterDeadline: true},
		{name: "a co-worker of a job without escrow", asker: "coworker", afterDeadline: true, wantRefused: true},
		{name: "a stranger after the deadline", asker: "stranger", escrowed: true, afterDeadline: true, wantRefused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			if tt.afterDeadline {
				now = deadline.Add(time.Minute)
			}
			clock.Set(now) // the worker and the asker share the book, so its clock
			asker := NewWorker(keys[tt.asker], hosts[tt.asker], book, nil, WorkerOptions{WorkDir: t.TempDir()}, slog.New(slog.DiscardHandler))
			r, err := asker.askReveal(ctx, offers[tt.escrowed].ID.String(), keys["worker"].PeerID())
			if tt.wantRefused {
				if err == nil || !strings.Contains(err.Error(), "reset") {
					t.Fatalf("reveal = %+v, %v; want it refused", r, err)
				}
				return
			}
			if err != nil || r.Result != fakeCID("result") {
				t.Fatalf("reveal = %+v, %v; want the result", r, err)
			}
		})
	}
}
