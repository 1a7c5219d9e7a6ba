package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/repo"
)

// openRepo resolves and opens the repo the command works on.
func (c *cli) openRepo() (*repo.Repo, error) {
	dir, err := repo.Resolve(c.repoFlag, c.getenv)
	if err != nil {
		return nil, err
	}
	return repo.Open(dir)
}

// client connects to the repo's running daemon.
func (c *cli) client(r *repo.Repo) (*api.Client, error) {
	addr, err := r.APIAddr()
	if err != nil {
		return nil, err
	}
	token, err := r.APIToken()
	if err != nil {
		return nil, err
	}
	return api.NewClient(addr, token), nil
}

// daemon opens the repo and a client to its running daemon.
func (c *cli) daemon() (*api.Client, error) {
	r, err := c.openRepo()
	if err != nil {
		return nil, err
	}
	return c.client(r)
}

func requestContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 60*time.Second)
}

func (c *cli) idCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "id",
		Short: "show this node's peer ID, wallet and addresses",
		Long: `Show this node's peer ID, its Solana wallet address (the same key), its
mode, and with the daemon running its listen addresses and reachability:
whether peers can dial it, the relays that hold a slot for it, and the fix
when it is private.`,
		Example: "  vft id\n  vft id --json",
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.id(*asJSON) }
	return c.withRepo(cmd)
}

func (c *cli) id(asJSON bool) error {
	r, err := c.openRepo()
	if err != nil {
		return err
	}
	var id api.Identity
	cl, err := c.client(r)
	if err == nil {
		ctx, cancel := requestContext()
		defer cancel()
		id, err = cl.ID(ctx)
	}
	if err != nil {
		if !errors.Is(err, repo.ErrNoDaemon) && !errors.Is(err, api.ErrUnreachable) {
			return err
		}
		// Without a daemon the identity is still known; addresses are not.
		key, kerr := r.Identity()
		if kerr != nil {
			return kerr
		}
		cfg, cerr := r.Config(c.environ)
		if cerr != nil {
			return cerr
		}
		id = api.Identity{PeerID: key.PeerID().String(), Wallet: key.WalletAddress(), Mode: string(cfg.Node.Mode), Version: versionString(), Addrs: []string{}}
	}
	if asJSON {
		return c.printJSON(id)
	}
	fmt.Fprintf(c.stdout, "peer ID  %s\nwallet   %s\nmode     %s\n", id.PeerID, id.Wallet, id.Mode)
	if len(id.Addrs) == 0 {
		fmt.Fprintln(c.stdout, "addrs    (daemon not running)")
	}
	for i, a := range id.Addrs {
		label := "        "
		if i == 0 {
			label = "addrs   "
		}
		fmt.Fprintf(c.stdout, "%s %s\n", label, a)
	}
	if id.Reachability != nil {
		printReachability(c.stdout, *id.Reachability)
	}
	return nil
}

// printReachability writes the reachability part of `vft id`: whether
// peers can dial the node, the addresses AutoNAT checked, the relays that
// hold a slot for it, and the fix when it is private.
func printReachability(w io.Writer, r api.Reachability) {
	fmt.Fprintf(w, "reach    %s\n", reachabilitySummary(r))
	rows := [][2]string{}
	for _, a := range r.Reachable {
		rows = append(rows, [2]string{"public  ", a + " (reachable)"})
	}
	for _, a := range r.Unreachable {
		rows = append(rows, [2]string{"public  ", a + " (unreachable)"})
	}
	for _, a := range r.Unknown {
		rows = append(rows, [2]string{"public  ", a + " (not checked yet)"})
	}
	for _, a := range r.RelayAddrs {
		rows = append(rows, [2]string{"relay   ", a})
	}
	if r.HolePunches > 0 {
		rows = append(rows, [2]string{"punch   ", fmt.Sprintf("%d of %d hole punches succeeded", r.HolePunchSuccesses, r.HolePunches)})
	}
	if r.Fix != "" {
		rows = append(rows, [2]string{"fix     ", r.Fix})
	}
	for _, row := range rows {
		fmt.Fprintf(w, "%s %s\n", row[0], row[1])
	}
}

func reachabilitySummary(r api.Reachability) string {
	switch r.Status {
	case "public":
		return "public: peers can dial this node"
	case "private":
		nat := ""
		if len(r.NAT) > 0 {
			var kinds []string
			for _, proto := range []string{"tcp", "udp"} {
				if k, ok := r.NAT[proto]; ok {
					kinds = append(kinds, proto+" "+k)
				}
			}
			nat = ", NAT " + strings.Join(kinds, ", ")
		}
		if len(r.Relays) == 0 {
			return "private (behind NAT or a firewall" + nat + "), no relay reservation yet"
		}
		return fmt.Sprintf("private (behind NAT or a firewall%s), reachable through %d relay(s)", nat, len(r.Relays))
	default:
		return "unknown: no peer has checked yet (AutoNAT asks peers to dial back within a minute or two)"
	}
}

func (c *cli) peersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "peers",
		Short:   "list connected peers",
		Example: "  vft peers\n  vft peers --json",
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.peers(*asJSON) }
	return c.withRepo(cmd)
}

func (c *cli) peers(asJSON bool) error {
	return listCommand(c, asJSON, (*api.Client).Peers, "no peers connected",
		"PEER\tADDRESS\tDIR\tLATENCY\tAGENT",
		func(p api.Peer) string {
			dir := p.Direction
			if p.Relayed {
				dir += " (relayed)"
			}
			return fmt.Sprintf("%s\t%s\t%s\t%dms\t%s", p.ID, p.Addr, dir, p.LatencyMS, p.Agent)
		})
}

// listCommand fetches a list from the daemon and prints it as JSON or as
// a table with one row per item.
func listCommand[T any](c *cli, asJSON bool, fetch func(*api.Client, context.Context) ([]T, error),
	empty, header string, row func(T) string) error {
	cl, err := c.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := requestContext()
	defer cancel()
	items, err := fetch(cl, ctx)
	if err != nil {
		return err
	}
	if asJSON {
		if items == nil {
			items = []T{}
		}
		return c.printJSON(items)
	}
	if len(items) == 0 {
		fmt.Fprintln(c.stdout, empty)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}

func (c *cli) swarmCmd() *cobra.Command {
	connect := &cobra.Command{
		Use:     "connect MULTIADDR",
		Short:   "dial a peer by its multiaddr",
		Example: "  vft swarm connect /ip4/203.0.113.7/tcp/4101/p2p/12D3KooW...",
	}
	asJSON := jsonFlag(connect)
	connect.RunE = func(cmd *cobra.Command, args []string) error { return c.swarmConnect(args, *asJSON) }
	return c.withRepo(groupCmd("swarm", "the node's connections: swarm connect MULTIADDR", "vft swarm connect MULTIADDR", connect))
}

func (c *cli) swarmConnect(args []string, asJSON bool) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: vft swarm connect MULTIADDR (like /ip4/1.2.3.4/tcp/4101/p2p/12D3KooW...)", errUsage)
	}
	cl, err := c.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := requestContext()
	defer cancel()
	id, err := cl.Connect(ctx, args[0])
	if err != nil {
		return err
	}
	if asJSON {
		return c.printJSON(api.ConnectResponse{PeerID: id})
	}
	fmt.Fprintf(c.stdout, "connected to %s\n", id)
	return nil
}
