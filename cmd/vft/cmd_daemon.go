package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/internal/logging"
	"github.com/vft-network/vft/node"
	"github.com/vft-network/vft/repo"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// Type names the value in help: --input strings.
func (l *stringList) Type() string { return "strings" }

var _ pflag.Value = (*stringList)(nil)

func (c *cli) daemonCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "run the node until SIGINT/SIGTERM",
		Long: `Run the node: join the network, serve the local API (and the dashboard on
a miner or light node), and as a miner take jobs. SIGINT or SIGTERM stops
it cleanly within node.shutdown_timeout; a second one exits at once.`,
		Example: `  vft daemon
  vft --repo /var/lib/vft daemon --set p2p.mdns=false --set log.level=debug`,
	}
	ignoredJSONFlag(cmd) // every command used to accept --json
	var overrides stringList
	cmd.Flags().Var(&overrides, "set", "override a config key for this run: --set p2p.mdns=false (`KEY=VALUE`, repeatable)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.runDaemon(overrides) }
	return c.withRepo(cmd)
}

// runDaemon runs the node; c.daemon is the client of a running one.
func (c *cli) runDaemon(overrides stringList) error {
	// First: a signal while the node is built or started must stop it
	// too, not be lost (a service manager stops what it just started).
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)

	dir, err := repo.Resolve(c.repoFlag, c.getenv)
	if err != nil {
		return err
	}
	r, err := repo.Open(dir)
	if err != nil {
		return err
	}
	cfg, err := r.Config(c.environ)
	if err != nil {
		return err
	}
	if err := cfg.ApplyOverrides(overrides); err != nil {
		return fmt.Errorf("--set: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	handler, err := logging.NewHandler(cfg.Log, os.Stderr)
	if err != nil {
		return err
	}
	libLevel, _ := logging.ParseLevel(cfg.Log.LibP2PLevel)
	logging.RouteLibraries(handler, libLevel)
	log := slog.New(handler)

	key, err := r.Identity()
	if err != nil {
		return err
	}
	nd, err := node.New(r, cfg, key, log, node.Options{Version: versionString(), Fault: c.getenv("VFT_DEBUG_FAULT"), CrashAt: c.getenv("VFT_DEBUG_CRASH_AT"),
		Crash: func(string) { os.Exit(3) }})
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithCancel(context.Background())
	duringStart := make(chan os.Signal, 1)
	go func() {
		defer close(duringStart)
		// A signal during start-up (a slow bootstrap) cancels it.
		select {
		case sig := <-signals:
			duringStart <- sig
			cancel()
		case <-startCtx.Done():
		}
	}()
	err = nd.Start(startCtx)
	cancel()
	if sig, ok := <-duringStart; ok {
		// Start may have finished before it saw the cancellation: the
		// node runs, and the signal that asked it to stop is spent.
		log.Info("shutting down: signal during start-up", "signal", sig.String())
		if err != nil {
			return err
		}
		return shutdown(nd, cfg.Node.ShutdownTimeout.Std(), signals, log)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "daemon ready: peer %s, API http://%s\n", key.PeerID(), nd.APIAddr())
	for _, a := range nd.Network().Addrs() {
		fmt.Fprintf(c.stdout, "listening on %s\n", a)
	}
	if cfg.Node.Mode != config.ModeEdge {
		// Not the token: under systemd this goes to the journal, which
		// more people may read than api.token.
		fmt.Fprintf(c.stdout, "dashboard http://%s/ (run `vft dashboard` for its address with the API token)\n", nd.APIAddr())
	}

	sig := <-signals
	log.Info("shutting down", "signal", sig.String(), "timeout", cfg.Node.ShutdownTimeout)
	return shutdown(nd, cfg.Node.ShutdownTimeout.Std(), signals, log)
}

// shutdown closes the node, bounded by timeout; a second signal or the
// timeout exits at once, because a hung shutdown must not keep a miner's
// rig from restarting.
func shutdown(nd *node.Node, timeout time.Duration, signals <-chan os.Signal, log *slog.Logger) error {
	done := make(chan error, 1)
	go func() { done <- nd.Close() }()
	select {
	case err := <-done:
		if err != nil {
			return err
		}
		log.Info("stopped cleanly")
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("shutdown did not finish within node.shutdown_timeout %s; exiting anyway", timeout)
	case sig := <-signals:
		return fmt.Errorf("second %s during shutdown; exiting at once", sig)
	}
}
