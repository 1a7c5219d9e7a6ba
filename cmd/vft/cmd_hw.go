package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/native"
	"github.com/vft-network/vft/executor/oci"
	"github.com/vft-network/vft/hwdetect"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/repo"
)

// hwSetup finds the hardware config and repo dir; `vft hw` and `vft doctor`
// work before `vft init` too, with defaults.
func (c *cli) hwSetup() (cfg config.Config, dir string, r *repo.Repo, err error) {
	dir, err = repo.Resolve(c.repoFlag, c.getenv)
	if err != nil {
		return cfg, "", nil, err
	}
	r, err = repo.Open(dir)
	if errors.Is(err, repo.ErrNotInitialised) {
		return config.Default(config.ModeMiner), dir, nil, nil
	}
	if err != nil {
		return cfg, "", nil, err
	}
	cfg, err = r.Config(c.environ)
	return cfg, dir, r, err
}

// detector builds a hardware detector with the repo's [hardware] config.
func (c *cli) detector() (det *hwdetect.Detector, cfg config.Config, dir string, r *repo.Repo, err error) {
	cfg, dir, r, err = c.hwSetup()
	if err != nil {
		return nil, cfg, "", nil, err
	}
	det, err = hwdetect.New(cfg.Hardware, slog.New(slog.DiscardHandler), hwdetect.Options{})
	return det, cfg, dir, r, err
}

func (c *cli) hwCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hw",
		Short: "hardware report: GPUs (NVML), CPU, memory, disk; no daemon needed",
		Long: `Report this machine's hardware: GPUs as NVML sees them (name, UUID, memory,
utilisation, temperature, power, CUDA, MIG), CPU, memory, and the disk the
repo is on. No daemon is needed, nor a repo: --repo only says which repo's
[hardware] config and disk to use.`,
		Example: "  vft hw\n  vft hw --json",
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.hw(*asJSON) }
	return c.withRepo(cmd)
}

func (c *cli) hw(asJSON bool) error {
	det, _, dir, r, err := c.detector()
	if err != nil {
		return err
	}
	defer det.Close()
	ctx, cancel := requestContext()
	defer cancel()
	report, err := det.Detect(ctx, dir)
	if err != nil {
		return err
	}
	if asJSON {
		return c.printJSON(report)
	}
	if err := report.WriteText(c.stdout); err != nil {
		return err
	}
	if r == nil {
		_, err = fmt.Fprintf(c.stdout, "Repo    none yet at %s: `vft init` creates it (the disk above is where it will be)\n", dir)
	}
	return err
}

// runDoctor checks what the node needs (a miner: GPUs, sandboxes, ports;
// any node that settles: the chain and its wallet's funds) and prints one
// line per check, with the fix for each one that fails.
func (c *cli) doctorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "check what this node needs (hardware, sandboxes, chain, wallet), with the fix for each problem",
		Long: `Check what this node needs, one line per check with the fix for each
failure: a miner's GPUs and driver, the sandboxes for native and OCI jobs,
the WASM runtime, disk space, the identity, the chain RPC and the wallet's
funds (chain.settle), and with the daemon running its peers and clock skew.
Exits 1 when a check fails.`,
		Example: "  vft doctor\n  vft doctor --json",
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.doctor(*asJSON) }
	return c.withRepo(cmd)
}

func (c *cli) doctor(asJSON bool) error {
	det, cfg, dir, r, err := c.detector()
	if err != nil {
		return err
	}
	defer det.Close()
	ctx, cancel := requestContext()
	defer cancel()
	checks := det.Checks(ctx, dir)
	if isLightNode(cfg) {
		checks = notNeededOnLightNode(checks)
	} else {
		checks = append(checks, executorChecks(ctx, cfg)...)
	}
	checks = append(checks, wasmRuntimeCheck(cfg.Executor.WASM.Runtime))
	checks = append(checks, c.nodeChecks(ctx, cfg, r)...)
	checks = append(checks, chainChecks(ctx, cfg, r)...)

	failed := 0
	for _, ch := range checks {
		if ch.Severity == hwdetect.SeverityFail {
			failed++
		}
	}
	if asJSON {
		if err := c.printJSON(checks); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
		for _, ch := range checks {
			line := fmt.Sprintf("%s\t%s\t%s", strings.ToUpper(string(ch.Severity)), ch.Name, ch.Detail)
			if ch.Fix != "" && ch.Severity != hwdetect.SeverityOK {
				line += "\t→ " + ch.Fix
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
	}
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

// executorChecks are the doctor lines of the executor kinds this miner
// offers, each said by its kind's package.
func executorChecks(ctx context.Context, cfg config.Config) []hwdetect.Check {
	var out []hwdetect.Check
	add := func(checks []executor.Check) {
		for _, ch := range checks {
			out = append(out, hwdetect.Check{Name: ch.Name, OK: ch.Severity == executor.SeverityOK,
				Severity: hwdetect.Severity(ch.Severity), Detail: ch.Detail, Fix: ch.Fix})
		}
	}
	if slices.Contains(cfg.Market.Executors, native.Name) {
		add(native.Doctor(ctx, cfg.Executor.Native.AllowWithoutCgroups))
	} else {
		notOffered := "native jobs are not offered (market.executors)"
		out = append(out,
			hwdetect.Check{Name: native.CheckCgroups, OK: true, Severity: hwdetect.SeverityOK, Detail: notOffered},
			hwdetect.Check{Name: native.CheckSandbox, OK: true, Severity: hwdetect.SeverityOK, Detail: notOffered})
	}
	if slices.Contains(cfg.Market.Executors, oci.Name) {
		add(oci.Doctor(ctx, cfg.Executor.OCI.Runtime, cfg.Executor.OCI.CDISpecDirs))
		add([]executor.Check{oci.UserNamespaceCheck(cfg.Executor.OCI.UserNamespace, cfg.Executor.OCI.HostIDBase)})
	}
	return out
}

// nodeChecks covers the repo and, when a daemon runs, the network.
func (c *cli) nodeChecks(ctx context.Context, cfg config.Config, r *repo.Repo) []hwdetect.Check {
	ok := func(name, detail string) hwdetect.Check {
		return hwdetect.Check{Name: name, OK: true, Severity: hwdetect.SeverityOK, Detail: detail}
	}
	bad := func(sev hwdetect.Severity, name, detail, fix string) hwdetect.Check {
		return hwdetect.Check{Name: name, Severity: sev, Detail: detail, Fix: fix}
	}
	if r == nil {
		return []hwdetect.Check{bad(hwdetect.SeverityFail, "repo", "not initialised", "run `vft init`")}
	}
	checks := []hwdetect.Check{ok("config", "config.toml is valid")}
	if _, err := identity.Load(r.Path(repo.IdentityFile)); err != nil {
		checks = append(checks, bad(hwdetect.SeverityFail, "identity", err.Error(), "see the message: fix the key file's mode or restore it"))
	} else {
		checks = append(checks, ok("identity", "identity.key readable, mode 0600"))
	}
	cl, err := c.client(r)
	var health api.Health
	if err == nil {
		health, err = cl.Health(ctx)
	}
	if err != nil {
		checks = append(checks, bad(hwdetect.SeverityWarn, "daemon", "not running: network checks skipped", "start it with `vft daemon`"))
		return append(checks, portChecks(cfg)...)
	}
	checks = append(checks, ok("daemon", "running"))
	if id, err := cl.ID(ctx); err == nil {
		checks = append(checks, listenChecks(id.Addrs)...)
		if id.Reachability != nil {
			checks = append(checks, reachabilityCheck(*id.Reachability))
		}
	}
	if health.Peers == 0 {
		checks = append(checks, bad(hwdetect.SeverityFail, "peers", "no peers connected", "set p2p.bootstrap to a running node's address (`vft id` on it) and restart"))
	} else {
		checks = append(checks, ok("peers", fmt.Sprintf("%d connected, %d nodes in the network table", health.Peers, health.Nodes)))
	}
	skew := time.Duration(health.ClockSkewMS) * time.Millisecond
	switch {
	case health.ClockSkewSamples == 0:
		checks = append(checks, bad(hwdetect.SeverityWarn, "clock skew", "no heartbeats from peers yet", "wait one heartbeat interval and run again"))
	case skew > 10*time.Second || skew < -10*time.Second:
		checks = append(checks, bad(hwdetect.SeverityFail, "clock skew", fmt.Sprintf("peers' clocks are %s from ours (median of %d)", skew, health.ClockSkewSamples), "enable time sync: `timedatectl set-ntp true`"))
	default:
		checks = append(checks, ok("clock skew", fmt.Sprintf("%s (median of %d peers)", skew, health.ClockSkewSamples)))
	}
	return checks
}

// reachabilityCheck says whether peers on the internet can dial the node
// (AutoNAT's verdict), and the fix when they cannot. Behind NAT the node
// still works through relays, so that is a warning, not a failure.
func reachabilityCheck(r api.Reachability) hwdetect.Check {
	const name = "reachability"
	detail := reachabilitySummary(r)
	switch r.Status {
	case "public":
		if len(r.Reachable) > 0 {
			detail += " at " + strings.Join(r.Reachable, ", ")
		}
		return hwdetect.Check{Name: name, OK: true, Severity: hwdetect.SeverityOK, Detail: detail}
	case "private":
		if len(r.Relays) > 0 {
			detail += " (" + strings.Join(r.Relays, ", ") + ")"
		}
		if len(r.Unreachable) > 0 {
			detail += "; not reachable at " + strings.Join(r.Unreachable, ", ")
		}
		fix := r.Fix
		if fix == "" {
			fix = p2p.NATFix
		}
		return hwdetect.Check{Name: name, Severity: hwdetect.SeverityWarn, Detail: detail, Fix: fix}
	default:
		return hwdetect.Check{Name: name, Severity: hwdetect.SeverityWarn, Detail: detail, Fix: "run `vft doctor` again in a few minutes"}
	}
}

// portChecks reports listen ports another program already holds. With the
// daemon stopped, a port in use means the daemon could not start.
func portChecks(cfg config.Config) []hwdetect.Check {
	var checks []hwdetect.Check
	for _, addr := range cfg.P2P.Listen {
		if !strings.Contains(addr, "/tcp/") || strings.HasSuffix(addr, "/tcp/0") {
			continue
		}
		parts := strings.Split(addr, "/")
		if len(parts) < 5 {
			continue
		}
		host := parts[2]
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		ln, err := net.Listen("tcp", host+":"+parts[4])
		if err != nil {
			if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "address already in use") {
				checks = append(checks, hwdetect.Check{Name: "port", Severity: hwdetect.SeverityFail, Detail: addr + " is in use by another program", Fix: "stop it, or change p2p.listen"})
			}
			continue
		}
		ln.Close()
		checks = append(checks, hwdetect.Check{Name: "port", OK: true, Severity: hwdetect.SeverityOK, Detail: addr + " is free"})
	}
	return checks
}

// listenChecks dials the daemon's own TCP addresses from this machine: a
// listener that does not accept here will not accept from the internet
// either. (Reachability through the firewall needs a peer outside: the
// peers check covers it once others connect.)
func listenChecks(addrs []string) []hwdetect.Check {
	var checks []hwdetect.Check
	for _, a := range addrs {
		parts := strings.Split(a, "/")
		if len(parts) < 5 || parts[3] != "tcp" {
			continue
		}
		host := parts[2]
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		conn, err := net.DialTimeout("tcp", host+":"+parts[4], 3*time.Second)
		if err != nil {
			checks = append(checks, hwdetect.Check{Name: "port", Severity: hwdetect.SeverityFail, Detail: a + " does not accept connections: " + err.Error(), Fix: "check the firewall and p2p.listen"})
			continue
		}
		conn.Close()
		checks = append(checks, hwdetect.Check{Name: "port", OK: true, Severity: hwdetect.SeverityOK, Detail: strings.Join(parts[:5], "/") + " accepts connections"})
	}
	return checks
}

func (c *cli) nodesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "nodes",
		Short:   "live network table from heartbeats: capabilities, price, last seen",
		Example: "  vft nodes\n  vft nodes --json",
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.nodes(*asJSON) }
	return c.withRepo(cmd)
}

func (c *cli) nodes(asJSON bool) error {
	return listCommand(c, asJSON, (*api.Client).Nodes,
		"no heartbeats yet: nodes appear here after their first heartbeat (heartbeat.interval)",
		"PEER\tMODE\tREACH\tGPUS\tCPU\tRAM\tEXECUTORS\tMIN PRICE\tSLOTS\tREPUTATION\tLAST SEEN",
		func(e api.NodeEntry) string {
			hb := e.Heartbeat
			gpus := "-"
			if len(hb.GPUs) > 0 {
				gpus = fmt.Sprintf("%d× %s %s", len(hb.GPUs), hb.GPUs[0].Name, gib(hb.GPUs[0].MemoryBytes))
				if hb.GPUAccess != "" {
					gpus += " (containers: " + hb.GPUAccess + ")"
				}
			}
			reach := "-"
			if hb.Reachability != "" {
				reach = hb.Reachability
			}
			executors := slices.Clone(hb.Executors)
			if i := slices.Index(executors, "oci"); i >= 0 && hb.OCIRuntime != "" {
				executors[i] = "oci/" + hb.OCIRuntime
			}
			seen := time.Since(e.SignedAt).Round(time.Second).String() + " ago"
			if e.Self {
				seen = "self"
			}
			price := fmt.Sprintf("%d", hb.PriceFloor)
			if hb.Mint == "" {
				price += " lamports"
			}
			rep := fmt.Sprintf("%.2f", e.Reputation)
			if e.Self {
				rep = "-"
			} else if e.Excluded {
				rep += " excluded"
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s",
				shortID(e.Peer.String()), hb.Mode, reach, gpus, hb.CPUCores, gib(hb.MemoryBytes),
				strings.Join(executors, ","), price, hb.FreeSlots, rep, seen)
		})
}

func gib(b uint64) string { return fmt.Sprintf("%.1fGiB", float64(b)/(1<<30)) }

func shortID(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}
