package chain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/programs/token"
	"github.com/gagliardetto/solana-go/rpc"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/vft-network/vft/chain/localnet"
	"github.com/vft-network/vft/identity"
)

// TestSettleSOL pays three recipients in one transaction with the memo,
// on both datastores, and checks that a second Settle pays nothing.
func TestSettleSOL(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := t.Context()
			c, _ := newClient(t, nil)
			airdrop(t, c, 2*sol)
			j := NewJournal(st.open(t, t.TempDir()), c, testLog(t))
			pay := payees(t, 3, sol/10)
			const job, result = "bafyjobsol", "bafyresultsol"

			rec, err := j.Settle(ctx, job, result, pay)
			if err != nil {
				t.Fatal(err)
			}
			if rec.State != StateDone || len(rec.Txs) != 1 || rec.Txs[0].Slot == 0 {
				t.Fatalf("settlement = %+v, want done in one transaction", rec)
			}
			checkPaid(t, c, solana.PublicKey{}, pay)
			memoLogged(t, c, rec.Signatures()[0], Memo(job, result))
			spent := 2*sol - lamportsOf(t, c, c.Address())
			if want := 3*(sol/10) + 3 + 5000; spent != want {
				t.Errorf("wallet spent %d, want %d (payouts + one fee)", spent, want)
			}

			again, err := j.Settle(ctx, job, result, pay)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(again.Signatures(), rec.Signatures()) {
				t.Errorf("second Settle returned %v, want the recorded %v", again.Signatures(), rec.Signatures())
			}
			checkPaid(t, c, solana.PublicKey{}, pay)
			if _, err := j.Settle(ctx, job, result, pay[:2]); !errors.Is(err, ErrConflict) {
				t.Errorf("Settle with other payouts = %v, want ErrConflict", err)
			}
		})
	}
}

// TestSettleSPL pays in a token, creating the token accounts that are
// missing; with a separate fee payer the wallet spends no lamports.
func TestSettleSPL(t *testing.T) {
	for _, tc := range []struct {
		name      string
		feePayer  bool
		preexists int // recipients that already have a token account
	}{
		{"wallet pays fees", false, 1},
		{"separate fee payer", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			setup, key := newClient(t, nil)
			airdrop(t, setup, sol)
			mint, _ := testMint(t, setup, 1_000_000)
			cfg := testConfig()
			cfg.Mint = mint.String()
			var fee solana.PrivateKey
			if tc.feePayer {
				fee = newKey(t)
				cfg.FeePayer = writeKeypair(t, fee, 0o600)
			}
			c := clientFor(t, cfg, key)
			if tc.feePayer {
				fundKey(t, c, fee.PublicKey(), sol)
			}
			pay := payees(t, 3, 1000)
			for _, p := range pay[:tc.preexists] {
				createATA(t, c, p.Recipient, mint)
			}
			walletBefore := lamportsOf(t, c, c.Address())
			j := NewJournal(openPebble(t, t.TempDir()), c, testLog(t))
			rec, err := j.Settle(ctx, "job-spl", "result-spl", pay)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Mint != mint.String() || len(rec.Txs) != 1 {
				t.Fatalf("settlement = %+v, want one transaction in %s", rec, mint)
			}
			checkPaid(t, c, mint, pay)
			if left, _ := c.TokenBalance(ctx, mint, c.Address()); left != 1_000_000-3000-3 {
				t.Errorf("wallet holds %d tokens, want %d", left, 1_000_000-3000-3)
			}
			memoLogged(t, c, rec.Signatures()[0], Memo("job-spl", "result-spl"))
			walletSpent := walletBefore - lamportsOf(t, c, c.Address())
			if tc.feePayer && walletSpent != 0 {
				t.Errorf("wallet spent %d lamports with a separate fee payer", walletSpent)
			}
			if !tc.feePayer && walletSpent <= 10000 {
				t.Errorf("wallet spent %d lamports, want fees (2 signatures... ) plus rent", walletSpent)
			}
		})
	}
}

// TestBatching: payees that do not fit one transaction are packed into
// the fewest transactions, each within the packet limit, all landed, and
// every payee is paid exactly once.
func TestBatching(t *testing.T) {
	for _, tc := range []struct {
		name string
		spl  bool
		n    int
	}{
		{"sol", false, 45},
		{"spl new accounts", true, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			c, key := newClient(t, nil)
			airdrop(t, c, 10*sol)
			var mint solana.PublicKey
			if tc.spl {
				mint, _ = testMint(t, c, 1_000_000_000)
				cfg := testConfig()
				cfg.Mint = mint.String()
				c = clientFor(t, cfg, key)
			}
			pay := payees(t, tc.n, 1_000_000)
			j := NewJournal(openPebble(t, t.TempDir()), c, testLog(t))
			job, result := "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
			rec, err := j.Settle(ctx, job, result, pay)
			if err != nil {
				t.Fatal(err)
			}
			perTx := len(rec.Txs[0].Payouts)
			if want := (tc.n + perTx - 1) / perTx; len(rec.Txs) != want || want < 2 {
				t.Fatalf("%d payees at %d per transaction took %d transactions, want %d (>1)", tc.n, perTx, len(rec.Txs), want)
			}
			// The first transaction is full: one more payee would not fit.
			var spl *splInfo
			missing := map[solana.PublicKey]bool{}
			if tc.spl {
				if spl, err = c.mintInfo(ctx, mint); err != nil {
					t.Fatal(err)
				}
				for _, p := range pay {
					missing[p.Recipient] = true
				}
			}
			one, err := c.plan(Memo(job, result), pay[:perTx+1], spl, missing)
			if err != nil || len(one) != 2 {
				t.Fatalf("%d payees fit one transaction (%d batches, %v): packing is not tight", perTx+1, len(one), err)
			}
			seen := map[solana.PublicKey]int{}
			for _, tx := range rec.Txs {
				if len(tx.Raw) > MaxTxSize {
					t.Errorf("transaction %s is %d bytes", tx.Signature, len(tx.Raw))
				}
				if tx.State != StateDone {
					t.Errorf("transaction %s is %s", tx.Signature, tx.State)
				}
				memoLogged(t, c, tx.Signature, Memo(job, result))
				for _, p := range tx.Payouts {
					seen[p.Recipient]++
				}
			}
			for _, p := range pay {
				if seen[p.Recipient] != 1 {
					t.Errorf("%s is in %d transactions", p.Recipient, seen[p.Recipient])
				}
			}
			checkPaid(t, c, mint, pay)
			t.Logf("%d payees per transaction, %d transactions, first is %d bytes", perTx, len(rec.Txs), len(rec.Txs[0].Raw))
		})
	}
}

// TestInsufficientFunds: a payout the wallet cannot cover is refused before
// anything is journaled or sent, with the exact missing amount.
func TestInsufficientFunds(t *testing.T) {
	ctx := context.Background()
	t.Run("sol", func(t *testing.T) {
		c, _ := newClient(t, nil)
		airdrop(t, c, sol)
		j := NewJournal(openPebble(t, t.TempDir()), c, testLog(t))
		pay := payees(t, 2, sol/2) // sol/2 + sol/2+1 + 5000 fee
		_, err := j.Settle(ctx, "job-poor", "r", pay)
		var ie *InsufficientFundsError
		if !errors.As(err, &ie) || !errors.Is(err, ErrInsufficientFunds) {
			t.Fatalf("Settle() = %v, want InsufficientFundsError", err)
		}
		if ie.Missing() != 5001 || ie.Account != c.Address() {
			t.Fatalf("missing %d on %s, want 5001 on the wallet: %v", ie.Missing(), ie.Account, err)
		}
		if _, err := j.Get(ctx, "job-poor"); !errors.Is(err, datastore.ErrNotFound) {
			t.Errorf("refused payout was journaled: %v", err)
		}
		if got := lamportsOf(t, c, c.Address()); got != sol {
			t.Errorf("balance %d, want %d untouched", got, sol)
		}
	})
	t.Run("wallet left below rent", func(t *testing.T) {
		c, _ := newClient(t, nil)
		airdrop(t, c, sol)
		j := NewJournal(openPebble(t, t.TempDir()), c, nil)
		_, err := j.Settle(ctx, "job-poor", "r", payees(t, 1, sol-5000-1000))
		var ie *InsufficientFundsError
		if !errors.As(err, &ie) || ie.Missing() != minBalance(t, c)-1000 {
			t.Fatalf("Settle() = %v, want %d missing to stay rent-exempt", err, minBalance(t, c)-1000)
		}
		// Paying everything out, leaving zero, is allowed.
		if _, err := j.Settle(ctx, "job-all", "r", payees(t, 1, sol-5000)); err != nil {
			t.Fatalf("draining the wallet: %v", err)
		}
	})
	t.Run("recipient below rent", func(t *testing.T) {
		c, _ := newClient(t, nil)
		airdrop(t, c, sol)
		_, err := NewJournal(openPebble(t, t.TempDir()), c, nil).Settle(ctx, "job-small", "r", payees(t, 2, 1000))
		if !errors.Is(err, ErrBelowRent) {
			t.Fatalf("Settle() = %v, want ErrBelowRent", err)
		}
	})
	t.Run("spl tokens", func(t *testing.T) {
		c, key := newClient(t, nil)
		airdrop(t, c, sol)
		mint, _ := testMint(t, c, 500)
		cfg := testConfig()
		cfg.Mint = mint.String()
		c = clientFor(t, cfg, key)
		_, err := NewJournal(openPebble(t, t.TempDir()), c, nil).Settle(ctx, "job-poor", "r", payees(t, 2, 300))
		var ie *InsufficientFundsError
		if !errors.As(err, &ie) || ie.Missing() != 101 {
			t.Fatalf("Settle() = %v, want 101 base units missing", err)
		}
	})
	t.Run("spl rent", func(t *testing.T) {
		c, key := newClient(t, nil)
		airdrop(t, c, sol)
		mint, _ := testMint(t, c, 500)
		fee := newKey(t)
		cfg := testConfig()
		cfg.Mint, cfg.FeePayer = mint.String(), writeKeypair(t, fee, 0o600)
		c = clientFor(t, cfg, key)
		fundKey(t, c, fee.PublicKey(), 1_000_000) // less than 2 accounts' rent
		rent, err := c.rpc.GetMinimumBalanceForRentExemption(ctx, tokenAccountSize, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewJournal(openPebble(t, t.TempDir()), c, nil).Settle(ctx, "job-poor", "r", payees(t, 2, 10))
		var ie *InsufficientFundsError
		if !errors.As(err, &ie) || ie.Account != fee.PublicKey() || ie.Missing() != 2*rent+10000-1_000_000 {
			t.Fatalf("Settle() = %v, want the fee payer missing %d", err, 2*rent+10000-1_000_000)
		}
	})
}

// TestRejected: a transaction the chain refuses comes back with the
// program's error and logs, is recorded failed, and a second Settle
// returns the recorded failure instead of trying again; Retry pays it
// once the cause is gone.
func TestRejected(t *testing.T) {
	ctx := t.Context()
	c, key := newClient(t, nil)
	airdrop(t, c, sol)
	mint, auth := testMint(t, c, 1_000_000)
	walletATA, _, _ := solana.FindAssociatedTokenAddress(c.Address(), mint)
	// A frozen source account: funds are there, the token program says no.
	sendIxs(t, c, auth, nil, token.NewFreezeAccountInstruction(walletATA, mint, auth.PublicKey(), nil).Build())
	cfg := testConfig()
	cfg.Mint = mint.String()
	c = clientFor(t, cfg, key)
	j := NewJournal(openPebble(t, t.TempDir()), c, testLog(t))
	pay := payees(t, 2, 1000)
	rec, err := j.Settle(ctx, "job-frozen", "r", pay)
	if !errors.Is(err, ErrSettlementFailed) || rec == nil || rec.State != StateFailed {
		t.Fatalf("Settle() = %+v, %v; want a failed settlement", rec, err)
	}
	// Token program error 0x11 is AccountFrozen; the logs say so.
	if msg := rec.Txs[0].Err; !strings.Contains(msg, "0x11") || !strings.Contains(msg, "Account is frozen") {
		t.Errorf("recorded error %q lacks the program's error and logs", msg)
	}
	if _, err := j.Settle(ctx, "job-frozen", "r", pay); !errors.Is(err, ErrSettlementFailed) {
		t.Errorf("second Settle = %v, want the recorded failure", err)
	}
	checkPaid(t, c, mint, []Payout{{pay[0].Recipient, 0}, {pay[1].Recipient, 0}})

	// Thawed, the job is retried: paid once, under a new signature, after
	// the rejected one's blockhash expired.
	sendIxs(t, c, auth, nil, token.NewThawAccountInstruction(walletATA, mint, auth.PublicKey(), nil).Build())
	failedSig := rec.Txs[0].Signature
	rec, err = j.Retry(ctx, "job-frozen")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateDone || rec.Txs[0].Signature == failedSig || !slices.Equal(rec.Txs[0].Superseded, []solana.Signature{failedSig}) {
		t.Fatalf("after Retry: %+v", rec)
	}
	checkPaid(t, c, mint, pay)
	memoLogged(t, c, rec.Txs[0].Signature, Memo("job-frozen", "r"))
	if again, err := j.Retry(ctx, "job-frozen"); err != nil || !slices.Equal(again.Signatures(), rec.Signatures()) {
		t.Errorf("Retry of a done settlement = %+v, %v", again, err)
	}
	if again, err := j.Settle(ctx, "job-frozen", "r", pay); err != nil || !slices.Equal(again.Signatures(), rec.Signatures()) {
		t.Errorf("Settle after Retry = %+v, %v", again, err)
	}
	checkPaid(t, c, mint, pay)
	if _, err := j.Retry(ctx, "no-such-job"); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("Retry of an unknown job = %v, want ErrNotFound", err)
	}
}

// TestCrashRecovery stops Settle after each journal step, then a new
// Client and Journal on the same on-disk datastore reconcile; every
// recipient ends up paid exactly once.
func TestCrashRecovery(t *testing.T) {
	for _, tc := range []struct {
		step       string // where the crash happens
		expire     bool   // wait for the blockhash to expire before restarting
		wantResign bool
		payees     int // 25 need two transactions
	}{
		{"intent", false, false, 3}, // not sent: the same bytes are sent
		{"send", false, false, 3},   // sent, not marked done: found on chain
		{"intent", true, true, 3},   // not sent, blockhash gone: re-signed
		{"send", true, false, 3},    // sent, blockhash gone: found on chain, not re-signed
		{"done", false, false, 25},  // first transaction recorded done, second not
		{"intent", true, true, 25},  // both transactions re-signed
	} {
		t.Run(fmt.Sprintf("%s expired=%v payees=%d", tc.step, tc.expire, tc.payees), func(t *testing.T) {
			ctx := t.Context()
			dir := t.TempDir()
			c1, key := newClient(t, nil)
			airdrop(t, c1, sol)
			pay := payees(t, tc.payees, 2_000_000)
			var total uint64
			for _, p := range pay {
				total += p.Amount
			}

			store1, err := pebbleds.NewDatastore(dir)
			if err != nil {
				t.Fatal(err)
			}
			j1 := NewJournal(store1, c1, testLog(t))
			j1.crash = func(step string) error {
				if step == tc.step {
					return errCrash
				}
				return nil
			}
			if _, err := j1.Settle(ctx, "job-crash", "res", pay); !errors.Is(err, errCrash) {
				t.Fatalf("Settle() = %v, want the simulated crash", err)
			}
			c1.Close()
			if err := store1.Close(); err != nil {
				t.Fatal(err)
			}

			// Restart: a new client and journal on the same directory.
			c2 := clientFor(t, testConfig(), key)
			j2 := NewJournal(openPebble(t, dir), c2, testLog(t))
			before, err := j2.Get(ctx, "job-crash")
			if wantTxs := (tc.payees + 17) / 18; err != nil || before.State != StatePending || len(before.Txs) != wantTxs {
				t.Fatalf("after the crash: %+v, %v; want a pending record of %d transactions", before, err, wantTxs)
			}
			if tc.step == "done" && (before.Txs[0].State != StateDone || before.Txs[1].State != StatePending) {
				t.Fatalf("crash after the first confirmation recorded %s, %s", before.Txs[0].State, before.Txs[1].State)
			}
			if tc.expire {
				waitExpired(t, c2, before.Txs[len(before.Txs)-1].LastValidBlockHeight)
			}
			if err := j2.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			after, err := j2.Get(ctx, "job-crash")
			if err != nil || after.State != StateDone {
				t.Fatalf("after Reconcile: %+v, %v; want done", after, err)
			}
			for i := range after.Txs {
				old, now := before.Txs[i].Signature, after.Txs[i].Signature
				if resigned := old != now; resigned != tc.wantResign {
					t.Errorf("transaction %d re-signed = %v (%s -> %s), want %v", i, resigned, old, now, tc.wantResign)
				}
				if tc.wantResign && !slices.Equal(after.Txs[i].Superseded, []solana.Signature{old}) {
					t.Errorf("superseded = %v, want [%s]", after.Txs[i].Superseded, old)
				}
				memoLogged(t, c2, now, Memo("job-crash", "res"))
			}
			checkPaid(t, c2, solana.PublicKey{}, pay)
			if spent, want := sol-lamportsOf(t, c2, c2.Address()), total+5000*uint64(len(after.Txs)); spent != want {
				t.Errorf("wallet spent %d, want %d: one payment, one fee per transaction", spent, want)
			}
			if pending, err := j2.Pending(ctx); err != nil || len(pending) != 0 {
				t.Errorf("pending after Reconcile: %v, %v", pending, err)
			}
			again, err := j2.Settle(ctx, "job-crash", "res", pay)
			if err != nil || !slices.Equal(again.Signatures(), after.Signatures()) {
				t.Errorf("Settle after recovery = %+v, %v; want the recorded settlement", again, err)
			}
			checkPaid(t, c2, solana.PublicKey{}, pay)
		})
	}
}

// TestUnreachableKeepsIntent: the RPC server goes away after the intent is
// written; Settle fails with a clear error and the intent stays pending.
func TestUnreachableKeepsIntent(t *testing.T) {
	ctx := t.Context()
	ln, err := localnet.Start(ctx, localnet.Options{SlotInterval: slotInterval})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.RPC, cfg.WS, cfg.MaxRetries = ln.RPCURL(), ln.WSURL(), 2
	key, _ := identity.Generate()
	c := clientFor(t, cfg, key)
	airdrop(t, c, sol)
	j := NewJournal(openPebble(t, t.TempDir()), c, testLog(t))
	j.crash = func(step string) error {
		if step == "intent" {
			return ln.Close() // the chain goes away before the send
		}
		return nil
	}
	_, err = j.Settle(ctx, "job-offline", "r", payees(t, 2, 2_000_000))
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), ln.RPCURL()) {
		t.Fatalf("Settle() = %v, want ErrUnreachable naming %s", err, ln.RPCURL())
	}
	pending, err := j.Pending(ctx)
	if err != nil || len(pending) != 1 || pending[0].JobID != "job-offline" || pending[0].Txs[0].State != StatePending {
		t.Fatalf("pending = %+v, %v; want the intent kept", pending, err)
	}
	if err := j.Reconcile(ctx); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Reconcile() = %v, want ErrUnreachable", err)
	}
}

func minBalance(t *testing.T, c *Client) uint64 {
	t.Helper()
	n, err := c.rent(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSettleConcurrent: many callers settling the same job at once pay it
// once and all get the same record.
func TestSettleConcurrent(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			c, _ := newClient(t, nil)
			airdrop(t, c, sol)
			j := NewJournal(st.open(t, t.TempDir()), c, testLog(t))
			pay := payees(t, 4, 3_000_000)
			const callers = 6
			sigs := make([][]solana.Signature, callers)
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					rec, err := j.Settle(t.Context(), "job-race", "r", pay)
					errs[i] = err
					if rec != nil {
						sigs[i] = rec.Signatures()
					}
				})
			}
			wg.Wait()
			for i := range callers {
				if errs[i] != nil || !slices.Equal(sigs[i], sigs[0]) {
					t.Errorf("caller %d: %v, %v; want %v", i, sigs[i], errs[i], sigs[0])
				}
			}
			checkPaid(t, c, solana.PublicKey{}, pay)
		})
	}
}

func TestClientClose(t *testing.T) {
	c, _ := newClient(t, nil)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	if _, err := c.Balance(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Balance after Close = %v, want ErrClosed", err)
	}
}

func TestPlanLimits(t *testing.T) {
	c, _ := newClient(t, nil)
	long := strings.Repeat("x", MaxTxSize)
	if _, err := c.plan(Memo("job", long), payees(t, 1, 1), nil, nil); err == nil || !strings.Contains(err.Error(), "over the 1232-byte limit") {
		t.Fatalf("plan with an oversized memo = %v", err)
	}
	for _, tc := range []struct {
		name string
		pay  []Payout
		want string
	}{
		{"empty", nil, "no payouts"},
		{"zero amount", []Payout{{newKey(t).PublicKey(), 0}}, "is zero"},
		{"no recipient", []Payout{{solana.PublicKey{}, 1}}, "no recipient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := normalize(tc.pay); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("normalize = %v, want %q", err, tc.want)
			}
		})
	}
	// A recipient named twice gets one transfer of the sum.
	a := newKey(t).PublicKey()
	got, err := normalize([]Payout{{a, 5}, {newKey(t).PublicKey(), 1}, {a, 7}})
	if err != nil || len(got) != 2 || got[0] != (Payout{a, 12}) {
		t.Fatalf("normalize merged to %v, %v", got, err)
	}
	if _, err := ParsePayout("not an address", 1); err == nil {
		t.Fatal("ParsePayout accepted a bad address")
	}
}

// TestReconcileFailedOnChain: a journaled transaction that landed with an
// error (sent, say, by an earlier run without preflight) is recorded failed
// with the program's logs; Retry then pays once.
func TestReconcileFailedOnChain(t *testing.T) {
	ctx := t.Context()
	c, key := newClient(t, nil)
	airdrop(t, c, sol)
	mint, auth := testMint(t, c, 1_000_000)
	walletATA, _, _ := solana.FindAssociatedTokenAddress(c.Address(), mint)
	cfg := testConfig()
	cfg.Mint = mint.String()
	c = clientFor(t, cfg, key)
	store := dssync.MutexWrap(datastore.NewMapDatastore())
	j := NewJournal(store, c, testLog(t))
	j.crash = func(step string) error {
		if step == "intent" {
			return errCrash
		}
		return nil
	}
	pay := payees(t, 2, 500)
	rec, err := j.Settle(ctx, "job-landed-failed", "r", pay)
	if !errors.Is(err, errCrash) {
		t.Fatalf("Settle() = %v, want the simulated crash", err)
	}
	// Frozen after the funds check; the bytes land, and fail, without preflight.
	sendIxs(t, c, auth, nil, token.NewFreezeAccountInstruction(walletATA, mint, auth.PublicKey(), nil).Build())
	if _, err := c.rpc.SendRawTransactionWithOpts(ctx, rec.Txs[0].Raw, rpc.TransactionOpts{SkipPreflight: true}); err != nil {
		t.Fatal(err)
	}

	j2 := NewJournal(store, clientFor(t, cfg, key), testLog(t))
	if err := j2.Reconcile(ctx); err != nil {
		t.Fatalf("Reconcile() = %v; a failed settlement is a result, not an error", err)
	}
	got, err := j2.Get(ctx, "job-landed-failed")
	if err != nil || got.State != StateFailed || got.Txs[0].Slot == 0 || !strings.Contains(got.Txs[0].Err, "Account is frozen") {
		t.Fatalf("after Reconcile: %+v, %v; want failed on chain with the program's logs", got, err)
	}
	checkPaid(t, c, mint, []Payout{{pay[0].Recipient, 0}, {pay[1].Recipient, 0}})

	sendIxs(t, c, auth, nil, token.NewThawAccountInstruction(walletATA, mint, auth.PublicKey(), nil).Build())
	if got, err = j2.Retry(ctx, "job-landed-failed"); err != nil || got.State != StateDone {
		t.Fatalf("Retry() = %+v, %v", got, err)
	}
	checkPaid(t, c, mint, pay)
}
