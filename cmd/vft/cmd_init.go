package main

import (
	"fmt"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/repo"
)

func runInit(c *cli, args []string) error {
	fs, asJSON := c.flags("init")
	mode := fs.String("mode", "miner", "miner (run jobs, earn), light (submit jobs) or edge (small device, WASM only)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	m, err := config.ParseMode(*mode)
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
	if *asJSON {
		return c.printJSON(map[string]string{
			"repo": dir, "mode": string(m), "peer_id": key.PeerID().String(), "wallet": key.WalletAddress(),
		})
	}
	fmt.Fprintf(c.stdout, "initialised %s node in %s\npeer ID  %s\nwallet   %s\n\nnext: vft --repo %s daemon\n",
		m, dir, key.PeerID(), key.WalletAddress(), dir)
	return nil
}
