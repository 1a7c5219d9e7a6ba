package testnet

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/escrow"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/p2p/reqresp"
	"github.com/vft-network/vft/wire"
)

// A forger of verdicts and refunds (issue #13, items 2 and 3, on the real
// Solana runtime): a submitter locks an escrowed job's reward, lets three
// honest miners compute and commit, and then, with its own key on a
// network node of its own, tries to take the money back without paying: it asks
// for a refund with no verdict; it collects the miners' signed reveals (all
// agreeing) and hands each miner a rejection naming all three dissenters;
// it asks for the refund again. The miners refuse every step, no token
// leaves the escrow, no miner's job is marked failed, the rejection also
// gossiped counts against its author and against no miner, and after the
// deadline the miners release the escrow to themselves and are paid.
func TestForgerOfVerdictsAndRefunds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const reward = 40_000
	en := startEscrowNetwork(ctx, t, Options{RescueAfter: time.Second})
	miners := en.nodes[:3]
	airdropFees(ctx, t, miners) // each can pay the fee of the rescue
	offer, err := en.submitter.Market().Submit(ctx, rescuableJob(ctx, t, en, reward))
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	var rec job.Record
	for rec.Escrow == "" {
		if rec, err = en.submitter.Jobs().Get(ctx, id); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the escrow was never opened")
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The submitter's node goes; its key comes back on the forger's
	// libp2p node, which speaks the protocols by hand.
	subKey := en.submitter.Key()
	if err := en.submitter.Close(); err != nil {
		t.Fatal(err)
	}
	for _, nd := range miners { // each has computed and committed its result
		for {
			r, err := nd.Jobs().Get(ctx, id)
			if err == nil && r.Result != "" {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("a miner never computed the job: %+v, %v", r, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	p2pCfg := Config(config.ModeMiner).P2P
	for _, a := range miners[0].Network().Addrs() {
		p2pCfg.Bootstrap = append(p2pCfg.Bootstrap, a.String())
	}
	forgerNet, err := p2p.New(p2pCfg, subKey.LibP2P(), p2p.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := forgerNet.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer forgerNet.Close()
	verdicts, err := forgerNet.Join(job.VerdictsTopic, func(context.Context, peer.ID, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer verdicts.Close()
	h := forgerNet.Host()
	var workerKeys []solana.PublicKey
	for _, nd := range miners {
		if err := h.Connect(ctx, peer.AddrInfo{ID: nd.Key().PeerID(), Addrs: nd.Network().Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
		workerKeys = append(workerKeys, solana.PublicKeyFromBytes(nd.Key().PublicKey()))
	}
	journal := chain.NewJournal(dssync.MutexWrap(datastore.NewMapDatastore()), en.payer, Logger(t))
	forger, err := escrow.NewService(h, subKey, en.payer, journal,
		func(context.Context, string, escrow.SignRequest) error { return errors.New("not a worker") }, Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	escrowHolds := func(when string) {
		t.Helper()
		e, err := en.payer.GetEscrow(ctx, id, en.subWallet, en.mint)
		if err != nil {
			t.Fatal(err)
		}
		if e.Amount != 3*reward {
			t.Fatalf("%s: the escrow holds %d, want all %d", when, e.Amount, 3*reward)
		}
	}

	// 1. A refund with no verdict, after the miners committed.
	if _, err := forger.Refund(ctx, id, workerKeys); !errors.Is(err, escrow.ErrRefused) {
		t.Fatalf("refund with no verdict after the work was done: %v, want refused", err)
	}
	escrowHolds("after a refund asked with no verdict")

	// 2. A rejection of three agreeing reveals, gossiped and handed to
	// each miner.
	req, err := wire.Seal(subKey, job.KindRevealRequest, time.Now(), job.RevealRequest{Job: id})
	if err != nil {
		t.Fatal(err)
	}
	forged := job.Verdict{Job: id, Offer: rec.Offer, Reasons: map[string]string{}}
	for _, nd := range miners {
		reveal, err := reqresp.Exchange(ctx, h, nd.Key().PeerID(), job.ProtocolReveal, req, 2<<10, 10*time.Second)
		if err != nil {
			t.Fatalf("reveal: %v", err)
		}
		forged.Reveals = append(forged.Reveals, reveal)
		forged.Dissented = append(forged.Dissented, nd.Key().PeerID().String())
		forged.Reasons[nd.Key().PeerID().String()] = "wrong result"
	}
	raw, err := wire.Seal(subKey, job.KindVerdict, time.Now(), forged)
	if err != nil {
		t.Fatal(err)
	}
	// Gossiped until every miner has penalised its author: each copy is
	// re-signed, a new message, as one could miss a forming mesh.
	gossipCtx, stopGossip := context.WithCancel(ctx)
	defer stopGossip()
	go func() {
		for gossipCtx.Err() == nil {
			if again, err := wire.Seal(subKey, job.KindVerdict, time.Now(), forged); err == nil {
				verdicts.Publish(gossipCtx, again)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	for i, nd := range miners {
		c := apiClient(t, nd)
		for penalised := false; !penalised; {
			rated, err := c.Reputation(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range rated {
				penalised = penalised || (e.Peer == subKey.PeerID() && (e.Bad > 0 || e.Excluded))
			}
			select {
			case <-ctx.Done():
				t.Fatalf("miner %d never penalised the forger", i)
			case <-time.After(100 * time.Millisecond):
			}
		}
		rated, err := c.Reputation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rated {
			for _, w := range miners {
				if e.Peer == w.Key().PeerID() && e.Bad > 0 {
					t.Fatalf("miner %d counts the forged rejection against honest miner %s: %+v", i, e.Peer, e)
				}
			}
		}
	}
	stopGossip()
	for i, nd := range miners {
		if _, err := reqresp.Exchange(ctx, h, nd.Key().PeerID(), job.ProtocolVerdict, raw, 1<<10, 10*time.Second); err == nil {
			t.Errorf("miner %d acknowledged the forged rejection", i)
		}
		if r, _ := nd.Jobs().Get(ctx, id); r.State.Terminal() || r.Verdict != nil {
			t.Fatalf("miner %d: job %s with verdict %+v after the forged rejection, want it still open", i, r.State, r.Verdict)
		}
	}

	// 3. The refund again, now that the forger has shown its "rejection".
	if _, err := forger.Refund(ctx, id, workerKeys); !errors.Is(err, escrow.ErrRefused) {
		t.Fatalf("refund after a forged rejection: %v, want refused", err)
	}
	escrowHolds("after a refund asked on a forged rejection")
	forger.Close()
	forgerNet.Close()

	// The honest miners are paid all the same, after the deadline.
	for i, nd := range miners {
		r := waitState(ctx, t, nd, id, job.StateDone)
		if r.Verdict == nil || len(r.Verdict.Agreed) != 3 {
			t.Fatalf("miner %d: verdict %+v, want the three workers agreeing", i, r.Verdict)
		}
		w := solana.PublicKeyFromBytes(nd.Key().PublicKey())
		if got, _ := en.payer.TokenBalance(ctx, en.mint, w); got != reward {
			t.Fatalf("miner %d holds %d, want the reward %d", i, got, reward)
		}
	}
	if got, _ := en.payer.TokenBalance(ctx, en.mint, en.subWallet); got != 500_000-3*reward {
		t.Fatalf("the forger holds %d, want %d (nothing back)", got, 500_000-3*reward)
	}
}

// An honest rejection is still refunded: two of three miners return
// garbage (each its own), no two results agree, and the submitter's
// rejection carries the three differing reveals. The miners that
// committed co-sign the refund on that evidence, so a refund refused
// after commitment (TestForgerOfVerdictsAndRefunds) does not lock an
// honest submitter's money.
func TestEscrowRejectedJobRefunded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const reward = 40_000
	en := startEscrowNetwork(ctx, t, Options{Faults: map[int]string{1: job.FaultWrongResult, 2: job.FaultWrongResult}})
	spec := en.wordcountJob(ctx, t, 4*time.Minute, reward)
	offer, err := en.submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitState(ctx, t, en.submitter, offer.ID.String(), job.StateFailed)
	if rec.Escrow == "" || rec.Verdict == nil || rec.Verdict.Accepted != "" {
		t.Fatalf("escrow %q, verdict %+v: want an escrowed job rejected", rec.Escrow, rec.Verdict)
	}
	for {
		got, _ := en.payer.TokenBalance(ctx, en.mint, en.subWallet)
		if got == 500_000 {
			break
		}
		select {
		case <-ctx.Done():
			r, _ := en.submitter.Jobs().Get(ctx, rec.ID)
			t.Fatalf("the submitter holds %d, want its 500000 back (history %+v)", got, r.History)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
