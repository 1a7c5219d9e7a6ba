package node

import (
	"context"
	"sort"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
)

// Currency is the API's Currencies: the currency a job pays in. A token's
// decimals come from its mint account (read once per mint); without a
// chain client, or when the mint cannot be read, amounts read as base
// units of the mint.
func (j jobsAPI) Currency(ctx context.Context, rec job.Record) units.Currency {
	return j.n.currency(ctx, rec)
}

func (n *Node) currency(ctx context.Context, rec job.Record) units.Currency {
	o, err := job.RecordedOffer(rec.Offer)
	if err != nil || o.Spec.Mint == "" {
		return units.SOL
	}
	if n.settle == nil {
		return units.Currency{Mint: o.Spec.Mint, Unit: "base units of " + units.ShortMint(o.Spec.Mint)}
	}
	return currencyOf(ctx, n.settle.client, o.Spec.Mint)
}

// earningsAPI serves GET /api/v1/earnings from the job book.
type earningsAPI struct{ n *Node }

func (e earningsAPI) Earnings(ctx context.Context, recent int) (api.Earnings, error) {
	recs, err := e.n.jobs.List(ctx)
	if err != nil {
		return api.Earnings{}, err
	}
	return summarize(recs, e.n.key.WalletAddress(), func(rec job.Record) units.Currency { return e.n.currency(ctx, rec) }, recent), nil
}

// summarize totals, per currency, what the records say this node's wallet
// was paid (as a worker) and what it paid (as a submitter, rewards only),
// and lists the recent newest jobs with payouts. recs are newest first.
func summarize(recs []job.Record, wallet string, currency func(job.Record) units.Currency, recent int) api.Earnings {
	out := api.Earnings{Wallet: wallet, Earned: []api.Total{}, Paid: []api.Total{}, Jobs: []api.JobMoney{}}
	earned, paid := map[units.Currency]*api.Total{}, map[units.Currency]*api.Total{}
	add := func(totals map[units.Currency]*api.Total, cur units.Currency, amount uint64) {
		t := totals[cur]
		if t == nil {
			t = &api.Total{Currency: cur}
			totals[cur] = t
		}
		t.Amount += amount
		t.Jobs++
	}
	for _, rec := range recs {
		if len(rec.Payouts) == 0 {
			continue
		}
		m := api.JobMoney{Job: rec.ID, Role: rec.Role, Currency: currency(rec), Payouts: rec.Payouts, UpdatedAt: rec.UpdatedAt}
		for _, p := range rec.Payouts {
			switch {
			case rec.Role == job.RoleWorker && p.Recipient == wallet && !p.Returned:
				m.Earned += p.Amount
			case rec.Role == job.RoleSubmitter && !p.Returned:
				m.Paid += p.Amount
			}
		}
		if m.Earned > 0 {
			add(earned, m.Currency, m.Earned)
		}
		if m.Paid > 0 {
			add(paid, m.Currency, m.Paid)
		}
		if len(out.Jobs) < recent {
			out.Jobs = append(out.Jobs, m)
		}
	}
	for _, t := range earned {
		out.Earned = append(out.Earned, *t)
	}
	for _, t := range paid {
		out.Paid = append(out.Paid, *t)
	}
	// SOL first, then tokens by mint: a stable order for the CLI and the page.
	for _, list := range [][]api.Total{out.Earned, out.Paid} {
		sort.Slice(list, func(i, k int) bool { return list[i].Currency.Mint < list[k].Currency.Mint })
	}
	return out
}
