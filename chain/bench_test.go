package chain

import (
	"context"
	"fmt"
	"testing"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/rpc"
)

// Typical IDs: CIDv1 base32, as job IDs and result CIDs are.
const (
	benchJob    = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
	benchResult = "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
)

// capacity is how many payees fit one transaction with this client.
func capacity(b *testing.B, c *Client, spl *splInfo, newAccounts bool) int {
	b.Helper()
	pay := payees(b, 64, 1_000_000)
	missing := map[solana.PublicKey]bool{}
	for _, p := range pay {
		missing[p.Recipient] = newAccounts
	}
	batches, err := c.plan(Memo(benchJob, benchResult), pay, spl, missing)
	if err != nil {
		b.Fatal(err)
	}
	return len(batches[0].payouts)
}

// BenchmarkSettle settles one job per iteration, with as many payees as
// fit one transaction, through the journal (pebble) against the localnet:
// payouts/s is end to end (plan, funds check, journal, send, confirmation).
func BenchmarkSettle(b *testing.B) {
	for _, bc := range []struct {
		name        string
		spl         bool
		newAccounts bool // SPL: recipients without a token account
		payees      int  // 0: as many as fit one transaction
	}{
		{"sol", false, false, 0},
		{"spl-existing-accounts", true, false, 0},
		{"spl-new-accounts", true, true, 0},
		// A typical job: k = 3, all three agree, paid in the token.
		{"job-k3-spl", true, false, 3},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			c, key := newClient(b, nil)
			airdrop(b, c, 500*sol)
			var spl *splInfo
			if bc.spl {
				mint, _ := testMint(b, c, 1<<60)
				cfg := testConfig()
				cfg.Mint = mint.String()
				c = clientFor(b, cfg, key)
				var err error
				if spl, err = c.mintInfo(ctx, mint); err != nil {
					b.Fatal(err)
				}
			}
			n := capacity(b, c, spl, bc.newAccounts)
			if bc.payees > 0 {
				n = bc.payees
			}
			j := NewJournal(openPebble(b, b.TempDir()), c, nil)
			fixed := payees(b, n, 1_000_000)
			if bc.spl && !bc.newAccounts {
				if _, err := j.Settle(ctx, "warm-up", benchResult, fixed); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			var last *Settlement
			for i := 0; b.Loop(); i++ {
				pay := fixed
				if bc.newAccounts {
					b.StopTimer()
					pay = payees(b, n, 1_000_000)
					b.StartTimer()
				}
				rec, err := j.Settle(ctx, fmt.Sprintf("%s-%d", benchJob, i), benchResult, pay)
				if err != nil {
					b.Fatal(err)
				}
				if len(rec.Txs) != 1 {
					b.Fatalf("%d payees took %d transactions", n, len(rec.Txs))
				}
				last = rec
			}
			b.StopTimer()
			tx, err := c.rpc.GetTransaction(ctx, last.Txs[0].Signature, &rpc.GetTransactionOpts{Commitment: rpc.CommitmentConfirmed})
			if err != nil || tx.Meta == nil {
				b.Fatalf("fee of the last settlement: %v", err)
			}
			b.ReportMetric(float64(len(last.Txs[0].Raw)), "bytes/job")
			b.ReportMetric(float64(tx.Meta.Fee), "fee_lamports/job")
			b.ReportMetric(float64(n), "payees/tx")
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "payouts/s")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}
