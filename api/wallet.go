package api

import (
	"context"
	"net/http"
	"time"
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
