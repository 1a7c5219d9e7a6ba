package main

import (
	"fmt"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/repo"
)

func runConfig(c *cli, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: vft config show | vft config set KEY VALUE", errUsage)
	}
	switch args[0] {
	case "show":
		return configShow(c, args[1:])
	case "set":
		return configSet(c, args[1:])
	}
	return fmt.Errorf("%w: unknown config subcommand %q: use show or set", errUsage, args[0])
}

// configShow prints the effective config: the file with the environment
// applied, which is what the daemon would run with.
func configShow(c *cli, args []string) error {
	fs, asJSON := c.flags("config show")
	if err := parse(fs, args); err != nil {
		return err
	}
	r, err := c.openRepo()
	if err != nil {
		return err
	}
	cfg, err := r.Config(c.environ)
	if err != nil {
		return err
	}
	if *asJSON {
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
func configSet(c *cli, args []string) error {
	fs, _ := c.flags("config set")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: vft config set KEY VALUE (keys: `vft config show`; lists comma-separated)", errUsage)
	}
	key, value := fs.Arg(0), fs.Arg(1)
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
