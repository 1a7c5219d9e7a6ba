package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
)

// WalletInfo is what GET /api/v1/wallet returns. Balance is in lamports,
// TokenBalance in base units of Mint (zero when Mint is empty).
type WalletInfo struct {
	Address      string `json:"address"`
	Balance      uint64 `json:"balance"`
	Mint         string `json:"mint"`
	TokenBalance uint64 `json:"token_balance"`
}

// Wallet reads the node's wallet from the chain.
type Wallet interface {
	Wallet(ctx context.Context) (WalletInfo, error)
}

// walletTimeout bounds a dashboard's balance request: an unreachable RPC
// should turn into "chain unreachable" quickly, not a hung panel.
const walletTimeout = 10 * time.Second

// ServeWallet adds GET /api/v1/wallet. Any failure to reach the chain is a
// 503 whose error says which RPC endpoint failed.
func (s *Server) ServeWallet(wl Wallet) {
	s.Handle("GET /api/v1/wallet", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), walletTimeout)
		defer cancel()
		info, err := wl.Wallet(ctx)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, info)
	})
}

// Earnings is what GET /api/v1/earnings returns: what this node was paid
// as a worker and paid as a submitter, from its job records. Amounts are
// base-unit integers; each comes with its currency (unit and decimals) so
// that every client formats it the same way.
type Earnings struct {
	Wallet string  `json:"wallet"`
	Earned []Total `json:"earned"` // per currency: payouts to this node's wallet
	Paid   []Total `json:"paid"`   // per currency: rewards this node paid (not what came back)
	// Jobs are the most recent jobs with payouts, newest first.
	Jobs []JobMoney `json:"jobs"`
}

// Total is an amount of one currency over some jobs.
type Total struct {
	Currency units.Currency `json:"currency"`
	Amount   uint64         `json:"amount"`
	Jobs     int            `json:"jobs"`
}

// JobMoney is one job's payouts: what this node earned from it (worker)
// or paid for it (submitter).
type JobMoney struct {
	Job       string         `json:"job"`
	Role      job.Role       `json:"role"`
	Currency  units.Currency `json:"currency"`
	Earned    uint64         `json:"earned"`
	Paid      uint64         `json:"paid"`
	Payouts   []job.Payout   `json:"payouts"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// EarningsSource summarises the node's payouts.
type EarningsSource interface {
	Earnings(ctx context.Context, recent int) (Earnings, error)
}

// earningsRecent is how many jobs GET /api/v1/earnings lists unless asked.
const earningsRecent = 20

// ServeEarnings adds GET /api/v1/earnings?recent=N (N jobs, default 20,
// at most 1000).
func (s *Server) ServeEarnings(src EarningsSource) {
	s.Handle("GET /api/v1/earnings", func(w http.ResponseWriter, r *http.Request) {
		recent := earningsRecent
		if v := r.URL.Query().Get("recent"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1000 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("recent=%q is not a number of jobs from 0 to 1000", v))
				return
			}
			recent = n
		}
		ctx, cancel := context.WithTimeout(r.Context(), walletTimeout)
		defer cancel()
		out, err := src.Earnings(ctx, recent)
		respond(w, out, err)
	})
}

// Earnings asks the daemon what this node earned and paid, listing the
// recent most recent jobs.
func (c *Client) Earnings(ctx context.Context, recent int) (Earnings, error) {
	var out Earnings
	return out, c.do(ctx, http.MethodGet, "/api/v1/earnings?recent="+strconv.Itoa(recent), nil, &out)
}
