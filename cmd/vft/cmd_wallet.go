package main

import (
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/internal/units"
)

const lamportsPerSOL = 1_000_000_000

// runWallet shows the node's Solana wallet, its balance, and airdrops on
// local and development chains. It talks to the chain directly, so it
// works without a daemon.
func (c *cli) walletCmd() *cobra.Command {
	sub := func(use, short, example string) *cobra.Command {
		cmd := &cobra.Command{Use: use, Short: short, Example: example}
		asJSON := jsonFlag(cmd)
		cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.wallet(cmd.Name(), args, *asJSON) }
		return cmd
	}
	address := sub("address", "the node's Solana address (what `vft wallet` alone prints)", "  vft wallet address")
	balance := sub("balance", "the wallet's balance in SOL, and in the configured token (chain.mint)",
		"  vft wallet balance\n  vft wallet balance --json")
	airdrop := sub("airdrop AMOUNT", "airdrop AMOUNT SOL to the wallet (local and development chains only)",
		"  vft wallet airdrop 2\n  vft wallet airdrop 0.5 --json")
	earned := &cobra.Command{
		Use:     "earned",
		Short:   "what this node earned as a worker (and paid as a submitter), in total and for the recent jobs (needs the daemon)",
		Example: "  vft wallet earned\n  vft wallet earned --recent 50 --json",
	}
	earnedJSON := jsonFlag(earned)
	recent := earned.Flags().Int("recent", 10, "how many recent jobs to list")
	earned.RunE = func(cmd *cobra.Command, args []string) error { return walletEarned(c, *recent, *earnedJSON) }

	wallet := groupCmd("wallet", "the node's Solana address; wallet balance | earned [--recent N] | airdrop AMOUNT",
		"", address, balance, earned, airdrop)
	wallet.Long = `The node's Solana wallet: its address (vft wallet alone), balance, what it
earned, and airdrops on local chains. Except for earned, these talk to the
chain (chain.rpc) directly: no daemon is needed.`
	wallet.Annotations = nil // vft wallet alone runs: it prints the address
	walletJSON := jsonFlag(wallet)
	unknown := wallet.RunE
	wallet.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return unknown(cmd, args)
		}
		return c.wallet("address", args, *walletJSON)
	}
	wallet.Example = "  vft wallet\n" + wallet.Example
	return c.withRepo(wallet)
}

// wallet runs the wallet subcommands that talk to the chain.
func (c *cli) wallet(sub string, args []string, asJSON bool) error {
	r, err := c.openRepo()
	if err != nil {
		return err
	}
	cfg, err := r.Config(c.environ)
	if err != nil {
		return err
	}
	key, err := r.Identity()
	if err != nil {
		return err
	}
	cl, err := chain.New(cfg.Chain, key, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := requestContext()
	defer cancel()

	switch sub {
	case "address":
		if asJSON {
			return c.printJSON(map[string]string{"address": cl.Address().String(), "rpc": cfg.Chain.RPC})
		}
		fmt.Fprintln(c.stdout, cl.Address())
		return nil
	case "balance":
		lamports, err := cl.Balance(ctx)
		if err != nil {
			return err
		}
		out := map[string]any{"address": cl.Address().String(), "lamports": lamports}
		var tokens uint64
		if mint := cl.Mint(); !mint.IsZero() {
			if tokens, err = cl.TokenBalance(ctx, mint, cl.Address()); err != nil {
				return err
			}
			out["mint"], out["tokens"] = mint.String(), tokens
		}
		if asJSON {
			return c.printJSON(out)
		}
		fmt.Fprintf(c.stdout, "%s SOL (%d lamports) at %s\n", formatSOL(lamports), lamports, cl.Address())
		if mint := cl.Mint(); !mint.IsZero() {
			fmt.Fprintf(c.stdout, "%d base units of token %s\n", tokens, mint)
		}
		return nil
	case "airdrop":
		if len(args) != 1 {
			return fmt.Errorf("%w: vft wallet airdrop AMOUNT (in SOL, like 2 or 0.5)", errUsage)
		}
		lamports, err := parseSOL(args[0])
		if err != nil {
			return err
		}
		sig, err := cl.Airdrop(ctx, lamports)
		if err != nil {
			return fmt.Errorf("airdrop of %s SOL from %s: %w (airdrops work on local and development chains only)", args[0], cfg.Chain.RPC, err)
		}
		if asJSON {
			return c.printJSON(map[string]any{"signature": sig.String(), "lamports": lamports})
		}
		fmt.Fprintf(c.stdout, "airdropped %s SOL to %s: %s\n", formatSOL(lamports), cl.Address(), sig)
		return nil
	}
	return fmt.Errorf("%w: unknown wallet subcommand %q: use balance, earned or airdrop", errUsage, sub)
}

// parseSOL reads "2", "0.5" or "0.000000001" SOL exactly, into lamports.
func parseSOL(s string) (uint64, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok || r.Sign() <= 0 {
		return 0, fmt.Errorf("amount %q is not a positive number of SOL", s)
	}
	r.Mul(r, big.NewRat(lamportsPerSOL, 1))
	if !r.IsInt() || !r.Num().IsUint64() {
		return 0, fmt.Errorf("amount %q is not a whole number of lamports (1 SOL = 10^9 lamports)", s)
	}
	return r.Num().Uint64(), nil
}

func formatSOL(lamports uint64) string { return units.FormatAmount(lamports, units.SOL.Decimals) }

// walletEarned shows what this node earned as a worker (and paid as a
// submitter), in total and for the recent jobs, from the daemon's job
// records: the payments each worker found on chain for its done jobs.
func walletEarned(c *cli, recent int, asJSON bool) error {
	if recent < 0 || recent > 1000 {
		return fmt.Errorf("%w: --recent %d: give a number of jobs from 0 to 1000", errUsage, recent)
	}
	cl, err := c.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := requestContext()
	defer cancel()
	e, err := cl.Earnings(ctx, recent)
	if err != nil {
		return err
	}
	if asJSON {
		return c.printJSON(e)
	}
	printEarnings(c.stdout, e)
	return nil
}

// printEarnings writes totals per currency, then one line per recent job.
func printEarnings(w io.Writer, e api.Earnings) {
	if len(e.Earned) == 0 {
		fmt.Fprintf(w, "earned  nothing yet (wallet %s)\n", e.Wallet)
	}
	for _, t := range e.Earned {
		fmt.Fprintf(w, "earned  %s over %d job(s)  (wallet %s)\n", t.Currency.Format(t.Amount), t.Jobs, e.Wallet)
	}
	for _, t := range e.Paid {
		fmt.Fprintf(w, "paid    %s over %d job(s)\n", t.Currency.Format(t.Amount), t.Jobs)
	}
	for _, j := range e.Jobs {
		amount, what := j.Earned, "earned"
		if j.Role == "submitter" {
			amount, what = j.Paid, "paid  "
		}
		sig := ""
		for _, p := range j.Payouts {
			if j.Role == "submitter" || (p.Recipient == e.Wallet && !p.Returned) {
				sig = p.Signature
				break
			}
		}
		fmt.Fprintf(w, "  %s  %s  %s  %s  tx %s\n", j.UpdatedAt.Local().Format("2006-01-02 15:04"), j.Job, what, j.Currency.Format(amount), sig)
	}
}
