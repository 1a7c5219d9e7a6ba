package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/repo"
)

func (c *cli) initCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "create a repo with a new identity",
		Long: `Create a repo (--repo, else $VFT_PATH, else ~/.vft) with a new identity:
identity.key (the libp2p key and the Solana wallet, 0600), api.token (0600)
and config.toml with the defaults of the node's mode.`,
		Example: `  vft init
  vft init --mode light
  VFT_PATH=/var/lib/vft vft init`,
	}
	asJSON := jsonFlag(cmd)
	mode := cmd.Flags().String("mode", "miner", "miner (run jobs, earn), light (submit jobs) or edge (small device, WASM only)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.init(args, *mode, *asJSON) }
	return c.withRepo(cmd)
}

func (c *cli) init(args []string, mode string, asJSON bool) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
	}
	m, err := config.ParseMode(mode)
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	dir, err := repo.Resolve(c.repoFlag, c.getenv)
	if err != nil {
		return err
	}
	_, key, err := repo.Init(dir, config.Default(m))
	if err != nil {
		return err
	}
	if asJSON {
		return c.printJSON(map[string]string{
			"repo": dir, "mode": string(m), "peer_id": key.PeerID().String(), "wallet": key.WalletAddress(),
		})
	}
	fmt.Fprintf(c.stdout, "initialised %s node in %s\npeer ID  %s\nwallet   %s\n\nnext: vft --repo %s daemon\n",
		m, dir, key.PeerID(), key.WalletAddress(), dir)
	return nil
}
