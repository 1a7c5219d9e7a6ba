package chain

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/programs/system"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"go.uber.org/goleak"
)

// TestWebsocketWakesWaiter: with polling at one hour, a waiter still
// returns as soon as the transaction lands, through signatureSubscribe.
func TestWebsocketWakesWaiter(t *testing.T) {
	c, _ := newClient(t, nil)
	airdrop(t, c, sol)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ix := system.NewTransferInstruction(sol/10, c.Address(), newKey(t).PublicKey()).Build()
	bh, err := c.rpc.GetLatestBlockhash(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := solana.NewTransaction([]solana.Instruction{ix}, bh.Value.Blockhash, solana.TransactionPayer(c.FeePayer()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.sign(tx, bh.Value.LastValidBlockHeight)
	if err != nil {
		t.Fatal(err)
	}
	sub := c.subscribe(ctx, s.sig)
	if sub == nil {
		t.Fatal("no websocket subscription to the localnet")
	}
	defer sub.close()
	if err := c.send(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := c.await(ctx, sub, time.Hour); err != nil || ctx.Err() != nil {
		t.Fatalf("await = %v (ctx %v), want a wake-up by the notification", err, ctx.Err())
	}
	if st, err := c.status(ctx, s.sig); err != nil || st == nil || st.Err != nil {
		t.Fatalf("status after the wake-up = %+v, %v", st, err)
	}
}

// TestWebsocketDown: payouts confirm by polling when chain.ws is unreachable.
func TestWebsocketDown(t *testing.T) {
	wsURL := "ws" + strings.TrimPrefix(closedPort(t), "http")
	c, _ := newClient(t, func(cfg *Config) { cfg.WS = wsURL })
	airdrop(t, c, sol)
	if sub := c.subscribe(t.Context(), solana.Signature{1, 2, 3}); sub != nil {
		t.Fatal("subscribed through a closed port")
	}
	j := NewJournal(openPebble(t, t.TempDir()), c, testLog(t))
	pay := payees(t, 2, 2_000_000)
	if _, err := j.Settle(t.Context(), "job-nows", "r", pay); err != nil {
		t.Fatal(err)
	}
	checkPaid(t, c, solana.PublicKey{}, pay)
}

// TestNoGoroutineLeak: a client that used RPC and the websocket leaves
// nothing running after Close.
func TestNoGoroutineLeak(t *testing.T) {
	run := func() {
		c, _ := newClient(t, nil)
		airdrop(t, c, sol)
		j := NewJournal(dssync.MutexWrap(datastore.NewMapDatastore()), c, nil)
		if _, err := j.Settle(t.Context(), "job-leak", "r", payees(t, 1, 2_000_000)); err != nil {
			t.Fatal(err)
		}
		c.subscribe(t.Context(), solana.Signature{1}).close()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	run() // warm up the libraries' process-wide goroutines
	ignore := goleak.IgnoreCurrent()
	run()
	goleak.VerifyNone(t, ignore)
}
