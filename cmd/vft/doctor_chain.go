package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/hwdetect"
	"github.com/vft-network/vft/repo"
)

// chainCheckTimeout bounds each chain call of `vft doctor`: a healthy RPC
// answers in milliseconds, and doctor must not hang on a dead one.
const chainCheckTimeout = 5 * time.Second

// feeReserveLamports is the SOL under which a wallet is flagged: about two
// hundred transaction fees (5000 lamports a signature), and less than one
// new token account's rent, which the payer of a first payout also pays.
const feeReserveLamports = 1_000_000

// minerOnlyChecks are the hardware and sandbox checks that matter to a
// node that runs jobs, and to no other.
var minerOnlyChecks = map[string]bool{
	"nvml": true, "gpus visible": true, "bwrap present": true,
	"cgroups for native jobs": true, "native sandbox": true,
}

// isLightNode says whether the node runs no jobs: a submitter.
func isLightNode(cfg config.Config) bool {
	return cfg.Node.Mode == config.ModeLight || len(cfg.Market.Executors) == 0
}

// notNeededOnLightNode downgrades the miner-only checks to information: a
// submitter has no use for GPUs, NVML or bubblewrap, and warning about
// them sent people installing drivers on laptops.
func notNeededOnLightNode(checks []hwdetect.Check) []hwdetect.Check {
	out := make([]hwdetect.Check, 0, len(checks))
	for _, ch := range checks {
		if minerOnlyChecks[ch.Name] {
			ch = hwdetect.Check{Name: ch.Name, OK: true, Severity: hwdetect.SeverityInfo,
				Detail: "not needed on a light node (" + ch.Detail + ")"}
		}
		out = append(out, ch)
	}
	return out
}

// chainChecks asks the chain, when this node settles payments on it,
// whether its RPC answers and whether the wallet can pay the fees (and, on
// a submitter, the rewards).
func chainChecks(ctx context.Context, cfg config.Config, r *repo.Repo) []hwdetect.Check {
	if !cfg.Chain.Settle || r == nil {
		return nil
	}
	key, err := r.Identity()
	if err != nil {
		return nil // the identity line already says what is wrong
	}
	cl, err := chain.New(cfg.Chain, key, slog.New(slog.DiscardHandler))
	if err != nil {
		return []hwdetect.Check{{Name: "chain rpc", Severity: hwdetect.SeverityFail, Detail: err.Error(), Fix: "fix the [chain] section (vft config show), or set chain.settle = false to run without payments"}}
	}
	defer cl.Close()

	callCtx, cancel := context.WithTimeout(ctx, chainCheckTimeout)
	defer cancel()
	version, err := cl.RPC().GetVersion(callCtx)
	if err != nil {
		return []hwdetect.Check{{Name: "chain rpc", Severity: hwdetect.SeverityFail,
			Detail: fmt.Sprintf("%s does not answer: %v", cfg.Chain.RPC, err),
			Fix:    "start the chain (`make localnet` for a local one) or set chain.rpc to a working endpoint; or chain.settle = false to run without payments"}}
	}
	checks := []hwdetect.Check{{Name: "chain rpc", OK: true, Severity: hwdetect.SeverityOK,
		Detail: fmt.Sprintf("%s answers (solana-core %s)", cfg.Chain.RPC, version.SolanaCore)}}

	light := isLightNode(cfg)
	lamports, err := cl.FeePayerBalance(callCtx)
	switch {
	case err != nil:
		checks = append(checks, hwdetect.Check{Name: "wallet funds", Severity: hwdetect.SeverityWarn,
			Detail: fmt.Sprintf("balance of %s: %v", cl.FeePayer(), err), Fix: "run again; if it persists, check chain.rpc"})
	case lamports < feeReserveLamports:
		// A submitter without SOL cannot pay a single job; a miner only
		// needs it for the fees of what it signs.
		sev, why := hwdetect.SeverityWarn, "not enough for transaction fees"
		if light {
			sev, why = hwdetect.SeverityFail, "not enough for transaction fees: jobs will be refused"
		}
		checks = append(checks, hwdetect.Check{Name: "wallet funds", Severity: sev,
			Detail: fmt.Sprintf("%s SOL at %s, %s (keep at least %s SOL)", formatSOL(lamports), cl.FeePayer(), why, formatSOL(feeReserveLamports)),
			Fix:    fundAdvice(cfg.Chain.RPC, cl.FeePayer().String())})
	default:
		checks = append(checks, hwdetect.Check{Name: "wallet funds", OK: true, Severity: hwdetect.SeverityOK,
			Detail: fmt.Sprintf("%s SOL at %s for fees", formatSOL(lamports), cl.FeePayer())})
	}
	if mint := cl.Mint(); light && !mint.IsZero() {
		tokens, err := cl.TokenBalance(callCtx, mint, cl.Address())
		switch {
		case err != nil:
			checks = append(checks, hwdetect.Check{Name: "wallet tokens", Severity: hwdetect.SeverityWarn,
				Detail: fmt.Sprintf("balance of token %s: %v", mint, err), Fix: "run again; if it persists, check chain.rpc and chain.mint"})
		case tokens == 0:
			checks = append(checks, hwdetect.Check{Name: "wallet tokens", Severity: hwdetect.SeverityWarn,
				Detail: fmt.Sprintf("no tokens of %s (chain.mint) at %s: jobs paying in it will be refused", mint, cl.Address()),
				Fix:    fmt.Sprintf("send tokens of %s to %s", mint, cl.Address())})
		default:
			checks = append(checks, hwdetect.Check{Name: "wallet tokens", OK: true, Severity: hwdetect.SeverityOK,
				Detail: fmt.Sprintf("%d base units of %s", tokens, mint)})
		}
	}
	return checks
}

// fundAdvice says how to get SOL: an airdrop where the chain gives them (a
// local chain, devnet, testnet), else the address to send to.
func fundAdvice(rpcURL, address string) string {
	if airdropsWork(rpcURL) {
		return "`vft wallet airdrop 1` (this chain gives airdrops)"
	}
	return "send SOL to " + address
}

func airdropsWork(rpcURL string) bool {
	u, err := url.Parse(rpcURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	return strings.Contains(host, "devnet") || strings.Contains(host, "testnet")
}
