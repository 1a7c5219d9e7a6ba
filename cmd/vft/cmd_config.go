package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/repo"
)

func (c *cli) configCmd() *cobra.Command {
	show := &cobra.Command{
		Use:     "show",
		Short:   "print the effective config: config.toml with the VFT_* environment applied",
		Example: "  vft config show\n  vft config show --json",
	}
	showJSON := jsonFlag(show)
	show.RunE = func(cmd *cobra.Command, args []string) error { return c.configShow(*showJSON) }
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "change one key in config.toml (lists comma-separated); restart the daemon to apply",
		Example: `  vft config set p2p.bootstrap /ip4/203.0.113.7/tcp/4101/p2p/12D3KooW...
  vft config set market.executors wasm,oci`,
	}
	ignoredJSONFlag(set) // every command used to accept --json
	set.RunE = func(cmd *cobra.Command, args []string) error { return c.configSet(args) }
	return c.withRepo(groupCmd("config", "show or change the node's config: config show | config set KEY VALUE",
		"vft config show | vft config set KEY VALUE", show, set))
}

// configShow prints the effective config: the file with the environment
// applied, which is what the daemon would run with.
func (c *cli) configShow(asJSON bool) error {
	r, err := c.openRepo()
	if err != nil {
		return err
	}
	cfg, err := r.Config(c.environ)
	if err != nil {
		return err
	}
	if asJSON {
		values := map[string]string{}
		for _, k := range config.Keys() {
			v, err := cfg.Get(k)
			if err != nil {
				return err
			}
			values[k] = v
		}
		return c.printJSON(values)
	}
	data, err := cfg.Encode()
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(data)
	return err
}

// configSet changes one key in config.toml. It reads the file without the
// environment, so a VFT_* variable in this shell is not written to disk.
func (c *cli) configSet(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("%w: vft config set KEY VALUE (keys: `vft config show`; lists comma-separated)", errUsage)
	}
	key, value := args[0], args[1]
	r, err := c.openRepo()
	if err != nil {
		return err
	}
	path := r.Path(repo.ConfigFile)
	cfg, err := config.Load(path, nil)
	if err != nil {
		return err
	}
	if err := cfg.Set(key, value); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("not saved: %w", err)
	}
	if err := cfg.Write(path); err != nil {
		return err
	}
	got, _ := cfg.Get(key)
	fmt.Fprintf(c.stdout, "%s = %s (restart the daemon to apply)\n", key, got)
	return nil
}
