package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/config"
)

// dashboardURL is the address of a daemon's web dashboard with the API
// token in the fragment: browsers never send a fragment to the server, and
// the page keeps the token in its tab (sessionStorage) for its API calls.
// Only this command prints it, for the user who can read api.token; the
// daemon's own output (a journal) never holds it.
func dashboardURL(apiAddr, token string) string {
	return "http://" + apiAddr + "/#token=" + token
}

// runDashboard prints the running daemon's dashboard URL.
func (c *cli) dashboardCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "dashboard",
		Short:   "print the running daemon's dashboard URL (with the API token in its #fragment)",
		Example: "  vft dashboard\n  xdg-open \"$(vft dashboard)\"",
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.dashboard(*asJSON) }
	return c.withRepo(cmd)
}

func (c *cli) dashboard(asJSON bool) error {
	r, err := c.openRepo()
	if err != nil {
		return err
	}
	addr, err := r.APIAddr()
	if err != nil {
		return err
	}
	token, err := r.APIToken()
	if err != nil {
		return err
	}
	ctx, cancel := requestContext()
	defer cancel()
	id, err := api.NewClient(addr, token).ID(ctx) // the daemon answers, and is not an edge device
	if err != nil {
		return err
	}
	if id.Mode == string(config.ModeEdge) {
		return fmt.Errorf("this daemon runs in edge mode, which serves no dashboard: read http://%s/metrics with the token from api.token, or use a miner or light node", addr)
	}
	url := dashboardURL(addr, token)
	if asJSON {
		return c.printJSON(map[string]string{"url": url, "api": addr, "mode": id.Mode})
	}
	fmt.Fprintln(c.stdout, url)
	return nil
}
