// Command vft is the whole VFT product: the CLI and the daemon.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/vft-network/vft/executor/wasm"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// command is one `vft` subcommand.
type command struct {
	name    string
	summary string
	run     func(env *cli, args []string) error
}

// cli holds what every command needs: where to write and the environment.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        []string
	repoFlag       string
}

// errUsage marks a mistake in how the command was called (exit status 2).
var errUsage = errors.New("usage")

func commands() []command {
	return []command{
		{"init", "create a repo with a new identity: vft init [--mode miner|light|edge]", runInit},
		{"daemon", "run the node until SIGINT/SIGTERM", runDaemon},
		{"id", "show this node's peer ID, wallet and addresses", runID},
		{"peers", "list connected peers", runPeers},
		{"swarm", "swarm connect MULTIADDR: dial a peer", runSwarm},
		{"add", "add PATH [--hidden] [--no-pin]: import a file or directory as IPFS content, print its CID", runAdd},
		{"image", "image import PATH: turn an OCI layout directory or a docker/podman save tarball into an OCI layout, add it, print its CID", runImage},
		{"get", "get CID [-o PATH]: fetch content from the network and write it out", runGet},
		{"pin", "pin add CID | pin rm CID | pin ls: keep content from garbage collection", runPin},
		{"repo", "repo stat | repo gc: content store size; remove unpinned blocks", runRepo},
		{"job", "job submit [SPEC.toml] [--wasm F] [--input P]... [--wait] [-o DIR] | list | status ID | result ID -o DIR | cancel ID", runJob},
		{"wallet", "wallet [balance | earned [--recent N] | airdrop AMOUNT]: the node's Solana address, balance, what it earned; airdrop on local chains", runWallet},
		{"dashboard", "print the running daemon's dashboard URL (with the API token in its #fragment)", runDashboard},
		{"nodes", "live network table from heartbeats: capabilities, price, last seen", runNodes},
		{"exec", "exec MODULE.wasm [--input PATH]... [--arg A]... [-o DIR] [--runtime wasmtime|wazero]: run a module locally in the WASM sandbox, print its time and output CID", runExec},
		{"hw", "hardware report: GPUs (NVML), CPU, memory, disk; no daemon needed", runHW},
		{"doctor", "check what this node needs (hardware, sandboxes, chain, wallet), with the fix for each problem", runDoctor},
		{"config", "config show | config set KEY VALUE", runConfig},
		{"devnet", "devnet [--miners N] [--cheaters K] [--fault KIND] [--dir DIR]: a local network in processes: Solana localnet, miners, a submitter", runDevnet},
		{"version", "print the version", runVersion},
	}
}

func main() {
	wasm.ServeChild() // an isolated WASM task (executor/wasm Config.Isolate) runs in a child of this binary
	env := &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, environ: os.Environ()}
	os.Exit(env.main(os.Args[1:]))
}

func (c *cli) main(args []string) int {
	global := flag.NewFlagSet("vft", flag.ContinueOnError)
	global.SetOutput(c.stderr)
	global.StringVar(&c.repoFlag, "repo", "", "repo directory (default $VFT_PATH, else ~/.vft)")
	global.Usage = func() { c.usage() }
	if err := global.Parse(args); err != nil {
		return 2
	}
	args = global.Args()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" {
		c.usage()
		return 0
	}
	for _, cmd := range commands() {
		if cmd.name != args[0] {
			continue
		}
		err := cmd.run(c, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(c.stderr, "vft %s: %v\n", cmd.name, err)
			return 2
		case errors.Is(err, context.Canceled) && interruptedSays[cmd.name] != "":
			// Ctrl-C: say what it left and what to do, not which HTTP
			// call it cut (130: the shell's status for SIGINT).
			fmt.Fprintf(c.stderr, "vft %s: %s\n", cmd.name, interruptedSays[cmd.name])
			return 130
		default:
			fmt.Fprintf(c.stderr, "vft %s: %v\n", cmd.name, err)
			return 1
		}
	}
	fmt.Fprintf(c.stderr, "vft: unknown command %q; run `vft help` for the list\n", args[0])
	return 2
}

// interruptedSays is what each command that Ctrl-C can cut short left
// behind. A get or pin keeps every block it fetched (each is written as it
// arrives), so running it again fetches only the rest.
var interruptedSays = map[string]string{
	"get":  "interrupted; run the same command to resume",
	"pin":  "interrupted; run the same command to resume",
	"repo": "interrupted; nothing was lost, run the same command again",
	"add":  "interrupted; nothing was added, run the same command again",
	"job":  "interrupted; a job already submitted goes on in the daemon (`vft job list`), and `vft job result ID -o DIR` fetches its result",
}

func (c *cli) usage() {
	fmt.Fprintf(c.stderr, "vft: a peer-to-peer network for GPU compute\n\nUsage: vft [--repo DIR] COMMAND [ARGS]\n\nCommands:\n")
	for _, cmd := range commands() {
		fmt.Fprintf(c.stderr, "  %-8s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(c.stderr, "\nRun `vft COMMAND -h` for a command's flags.\n")
}

// flags returns a flag set with the flags every command shares.
func (c *cli) flags(name string) (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet("vft "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.StringVar(&c.repoFlag, "repo", c.repoFlag, "repo directory (default $VFT_PATH, else ~/.vft)")
	asJSON := fs.Bool("json", false, "print JSON")
	return fs, asJSON
}

// parse parses flags; flag errors become usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func versionString() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

func runVersion(c *cli, args []string) error {
	fs, asJSON := c.flags("version")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(map[string]string{"version": versionString()})
	}
	fmt.Fprintln(c.stdout, "vft", versionString())
	return nil
}
