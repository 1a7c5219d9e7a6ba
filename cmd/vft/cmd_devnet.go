package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/spf13/cobra"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/chain/localnet"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/repo"
)

// Devnet amounts: the submitter's SOL (fees and miners' new token
// accounts) and its VFT tokens (6 decimals, so 1 VFT = 1,000,000 units).
const (
	devnetAirdropLamports = 100 * lamportsPerSOL
	devnetDecimals        = 6
	devnetSupply          = 1_000_000 * 1_000_000
	devnetMinPrice        = 1000
)

// DevnetInfo is what `vft devnet` writes to <dir>/devnet.json (and prints
// with --json) once every node is up: enough for scripts to drive it.
type DevnetInfo struct {
	Dir   string       `json:"dir"`
	RPC   string       `json:"rpc"`
	WS    string       `json:"ws"`
	Mint  string       `json:"mint"`
	Nodes []DevnetNode `json:"nodes"`
}

// DevnetNode is one daemon of the devnet.
type DevnetNode struct {
	Name      string `json:"name"`
	Mode      string `json:"mode"`
	Repo      string `json:"repo"`
	PeerID    string `json:"peer_id"`
	Wallet    string `json:"wallet"`
	API       string `json:"api"`
	Dashboard string `json:"dashboard"`
	Fault     string `json:"fault,omitempty"`
	Log       string `json:"log"`
}

// runDevnet starts a local network in processes: the Solana localnet, N
// miner daemons (the last K of them dishonest) and a submitter, all on
// loopback, connected through the DHT from one bootstrap miner; it mints a
// VFT token for the submitter, and stops everything on Ctrl-C.
func (c *cli) devnetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "a local network in processes: Solana localnet, miners, a submitter",
		Long: `Start a whole local network in processes on loopback: the Solana localnet,
N miner daemons (the last K of them dishonest), and a submitter, connected
through the DHT from one bootstrap miner; it mints a VFT token for the
submitter, prints each node's repo, and stops everything on Ctrl-C. Point
the other commands at a node with --repo REPO. The nodes' repos are its
own: devnet takes no --repo.`,
		Example: `  vft devnet --miners 4 --cheaters 1
  vft devnet --executors wasm,oci --escrow
  vft devnet --miners 3 --dir /tmp/devnet --json`,
	}
	fs := cmd.Flags()
	var f devnetFlags
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	fs.IntVar(&f.miners, "miners", 4, "number of miner daemons")
	fs.IntVar(&f.cheaters, "cheaters", 0, "how many of the miners cheat (they get VFT_DEBUG_FAULT)")
	fs.StringVar(&f.fault, "fault", job.FaultWrongResult, "how cheaters cheat: "+strings.Join(job.Faults, ", "))
	fs.StringVar(&f.dir, "dir", "", "directory for the nodes' repos and logs (default: a new temporary one, removed on exit)")
	fs.BoolVar(&f.escrow, "escrow", false, "pay jobs from an SPL-multisig escrow: the submitter locks each reward before work starts, miners run only escrowed jobs")
	fs.StringVar(&f.executors, "executors", "wasm", "the executor kinds the miners offer, comma-separated: wasm, native, oci (oci and native need root; oci needs crun or runc)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.devnet(f) }
	return cmd
}

// devnetFlags are the flags of `vft devnet`.
type devnetFlags struct {
	asJSON           bool
	miners, cheaters int
	fault, dir       string
	escrow           bool
	executors        string
}

func (c *cli) devnet(f devnetFlags) error {
	kinds, err := devnetExecutors(f.executors)
	if err != nil {
		return err
	}
	switch {
	case f.miners < 1 || f.miners > 64:
		return fmt.Errorf("%w: --miners %d is outside 1..64", errUsage, f.miners)
	case f.cheaters < 0 || f.cheaters > f.miners:
		return fmt.Errorf("%w: --cheaters %d is outside 0..%d (the number of miners)", errUsage, f.cheaters, f.miners)
	case !slices.Contains(job.Faults, f.fault):
		return fmt.Errorf("%w: --fault %q is not one of %s", errUsage, f.fault, strings.Join(job.Faults, ", "))
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	d := &devnet{c: c, self: self, executors: kinds}
	if f.dir == "" {
		if d.dir, err = os.MkdirTemp("", "vft-devnet-"); err != nil {
			return err
		}
		defer os.RemoveAll(d.dir)
	} else {
		if d.dir, err = filepath.Abs(f.dir); err != nil {
			return err
		}
		if entries, err := os.ReadDir(d.dir); err == nil && len(entries) > 0 {
			return fmt.Errorf("--dir %s is not empty: a devnet starts from fresh repos; pick a new directory", d.dir)
		}
		if err := os.MkdirAll(d.dir, 0o700); err != nil {
			return err
		}
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-signals:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer d.stop()

	d.escrow = f.escrow
	info, err := d.start(ctx, f.miners, f.cheaters, f.fault)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return err
	}
	data, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(d.dir, "devnet.json"), append(data, '\n'), 0o600); err != nil {
		return err
	}
	if f.asJSON {
		fmt.Fprintf(c.stdout, "%s\n", data)
	} else {
		d.print(info)
	}
	fmt.Fprintln(c.stdout, "devnet ready")
	select {
	case <-ctx.Done():
		fmt.Fprintln(c.stderr, "devnet: stopping")
		return nil
	case name := <-d.exited:
		return fmt.Errorf("%s exited; its log: %s", name, filepath.Join(d.dir, name+".log"))
	}
}

type devnet struct {
	c      *cli
	self   string
	dir    string
	chain  *localnet.Localnet
	escrow bool
	// executors are the kinds every miner offers (market.executors).
	executors []string
	procs     []*exec.Cmd
	done      []chan struct{} // closed when procs[i] has exited
	exited    chan string
}

func (d *devnet) start(ctx context.Context, miners, cheaters int, fault string) (*DevnetInfo, error) {
	d.exited = make(chan string, miners+1)
	logf, err := os.Create(filepath.Join(d.dir, "localnet.log"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(d.c.stderr, "devnet: starting the Solana localnet (LiteSVM) in %s\n", d.dir)
	if d.chain, err = localnet.Start(ctx, localnet.Options{Log: logf}); err != nil {
		return nil, fmt.Errorf("start the localnet: %w", err)
	}
	info := &DevnetInfo{Dir: d.dir, RPC: d.chain.RPCURL(), WS: d.chain.WSURL()}
	rendezvous := fmt.Sprintf("vft/1/devnet-%d", time.Now().UnixNano())

	base := func(mode config.Mode) config.Config {
		cfg := config.Default(mode)
		cfg.API.Listen = "127.0.0.1:0"
		cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		cfg.P2P.MDNS, cfg.P2P.NATPortMap = false, false
		cfg.P2P.AllowPrivateAddrs = true // every node is on 127.0.0.1
		cfg.P2P.Rendezvous = rendezvous
		cfg.Heartbeat.Interval.UnmarshalText([]byte("5s"))
		cfg.Market.ReportGrace.UnmarshalText([]byte("10s"))
		cfg.Chain.RPC, cfg.Chain.WS = info.RPC, info.WS
		cfg.Chain.PollInterval.UnmarshalText([]byte("200ms"))
		cfg.Log.Format = "json"
		return cfg
	}

	// The submitter first: its wallet creates the VFT mint and holds the supply.
	subCfg := base(config.ModeLight)
	subDir := filepath.Join(d.dir, "submitter")
	_, subKey, err := repo.Init(subDir, subCfg)
	if err != nil {
		return nil, err
	}
	wallet, err := chain.New(subCfg.Chain, subKey, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer wallet.Close()
	if _, err := wallet.Airdrop(ctx, devnetAirdropLamports); err != nil {
		return nil, fmt.Errorf("fund the submitter: %w", err)
	}
	mint, _, err := wallet.CreateMint(ctx, devnetDecimals, devnetSupply)
	if err != nil {
		return nil, err
	}
	info.Mint = mint.String()
	fmt.Fprintf(d.c.stderr, "devnet: VFT token %s minted; the submitter holds %d VFT and %d SOL\n", mint, devnetSupply/1_000_000, devnetAirdropLamports/lamportsPerSOL)
	if err := d.setMint(subDir, mint, d.escrow); err != nil {
		return nil, err
	}

	type planned struct {
		name, mode, fault, repo string
	}
	var plan []planned
	for i := 1; i <= miners; i++ {
		p := planned{name: fmt.Sprintf("miner%d", i), mode: string(config.ModeMiner)}
		if i > miners-cheaters {
			p.fault = fault
		}
		cfg := base(config.ModeMiner)
		cfg.Market.Mint, cfg.Market.MinPrice = mint.String(), devnetMinPrice
		cfg.Market.MaxJobs = 2
		cfg.Market.RequireEscrow = d.escrow
		cfg.Market.Executors = d.executors
		cfg.Debug.AllowFaults = p.fault != ""
		p.repo = filepath.Join(d.dir, p.name)
		if _, _, err := repo.Init(p.repo, cfg); err != nil {
			return nil, err
		}
		if err := d.setMint(p.repo, mint, false); err != nil {
			return nil, err
		}
		plan = append(plan, p)
	}
	plan = append(plan, planned{name: "submitter", mode: string(config.ModeLight), repo: subDir})

	var bootstrap []string
	for i, p := range plan {
		env := []string{}
		if len(bootstrap) > 0 {
			env = append(env, "VFT_P2P_BOOTSTRAP="+strings.Join(bootstrap, ","))
		}
		if p.fault != "" {
			env = append(env, "VFT_DEBUG_FAULT="+p.fault)
		}
		addrs, err := d.launch(ctx, p.name, p.repo, env)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			bootstrap = addrs
		}
		n, err := d.describe(p.name, p.mode, p.repo)
		if err != nil {
			return nil, err
		}
		n.Fault = p.fault
		info.Nodes = append(info.Nodes, n)
		what := p.mode
		if p.fault != "" {
			what += ", DISHONEST: " + p.fault
		}
		fmt.Fprintf(d.c.stderr, "devnet: %s (%s) up: peer %s\n", p.name, what, n.PeerID)
	}
	return info, d.waitMesh(ctx, info)
}

// devnetExecutors parses --executors: known kinds, no repeats.
func devnetExecutors(list string) ([]string, error) {
	var kinds []string
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		switch {
		case k == "":
			continue
		case !slices.Contains([]string{"wasm", "native", "oci"}, k):
			return nil, fmt.Errorf("%w: --executors: %q is not one of wasm, native, oci", errUsage, k)
		case slices.Contains(kinds, k):
			return nil, fmt.Errorf("%w: --executors: %q is listed twice", errUsage, k)
		}
		kinds = append(kinds, k)
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("%w: --executors %q names no executor kind; e.g. --executors wasm,oci", errUsage, list)
	}
	return kinds, nil
}

// setMint makes the node pay and price in the devnet's token, and pay
// from escrows when asked.
func (d *devnet) setMint(dir string, mint solana.PublicKey, escrow bool) error {
	path := filepath.Join(dir, repo.ConfigFile)
	cfg, err := config.Load(path, nil)
	if err != nil {
		return err
	}
	if err := cfg.Set("chain.mint", mint.String()); err != nil {
		return err
	}
	if err := cfg.Set("chain.escrow", fmt.Sprint(escrow)); err != nil {
		return err
	}
	return cfg.Write(path)
}

// launch starts one daemon and waits until it is ready; it returns the
// addresses it listens on.
func (d *devnet) launch(ctx context.Context, name, dir string, env []string) ([]string, error) {
	outPath := filepath.Join(d.dir, name+".out")
	out, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(d.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(d.self, "--repo", dir, "daemon")
	cmd.Stdout, cmd.Stderr = out, logf
	cmd.Env = append(devnetEnviron(), env...)
	// Its own process group: Ctrl-C reaches the devnet, which stops the
	// daemons in order instead of all at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	d.procs, d.done = append(d.procs, cmd), append(d.done, done)
	go func() {
		cmd.Wait()
		close(done)
		d.exited <- name
	}()
	deadline := time.After(time.Minute)
	for {
		var addrs []string
		ready := false
		if f, err := os.Open(outPath); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := sc.Text()
				ready = ready || strings.HasPrefix(line, "daemon ready")
				if a, ok := strings.CutPrefix(line, "listening on "); ok {
					addrs = append(addrs, a)
				}
			}
			f.Close()
		}
		if ready && len(addrs) > 0 {
			return addrs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-done:
			return nil, fmt.Errorf("%s exited while starting: %s", name, tailFile(filepath.Join(d.dir, name+".log")))
		case <-deadline:
			return nil, fmt.Errorf("%s did not start within a minute: %s", name, tailFile(filepath.Join(d.dir, name+".log")))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// describe reads a started node's identity and API address.
func (d *devnet) describe(name, mode, dir string) (DevnetNode, error) {
	r, err := repo.Open(dir)
	if err != nil {
		return DevnetNode{}, err
	}
	key, err := r.Identity()
	if err != nil {
		return DevnetNode{}, err
	}
	addr, err := r.APIAddr()
	if err != nil {
		return DevnetNode{}, err
	}
	token, err := r.APIToken()
	if err != nil {
		return DevnetNode{}, err
	}
	return DevnetNode{Name: name, Mode: mode, Repo: dir, PeerID: key.PeerID().String(), Wallet: key.WalletAddress(),
		API: addr, Dashboard: "http://" + addr + "/#token=" + token, Log: filepath.Join(d.dir, name+".log")}, nil
}

// devnetClient is a client of a devnet node's API, with its token.
func devnetClient(n DevnetNode) *api.Client {
	token := ""
	if r, err := repo.Open(n.Repo); err == nil {
		token, _ = r.APIToken() // without it the call below says 401
	}
	return api.NewClient(n.API, token)
}

// waitMesh waits until every node is connected to every other one (the
// DHT rendezvous finds them from the one bootstrap miner).
func (d *devnet) waitMesh(ctx context.Context, info *DevnetInfo) error {
	want := len(info.Nodes) - 1
	deadline := time.Now().Add(90 * time.Second)
	for {
		complete := true
		for _, n := range info.Nodes {
			peers, err := devnetClient(n).Peers(ctx)
			if err != nil || len(peers) < want {
				complete = false
				break
			}
		}
		if complete {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the nodes did not all find each other within 90 s; see the logs in " + d.dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (d *devnet) print(info *DevnetInfo) {
	w := d.c.stdout
	fmt.Fprintf(w, "VFT devnet in %s\n  chain  %s (token %s)\n", info.Dir, info.RPC, info.Mint)
	for _, n := range info.Nodes {
		extra := ""
		if n.Fault != "" {
			extra = "  [dishonest: " + n.Fault + "]"
		}
		fmt.Fprintf(w, "  %-10s %-6s %s%s\n             dashboard %s\n", n.Name, n.Mode, n.PeerID, extra, n.Dashboard)
	}
	sub := info.Nodes[len(info.Nodes)-1]
	fmt.Fprintf(w, "Submit a job as the submitter:\n  vft --repo %s job submit examples/nninfer/job.toml --wait\nCtrl-C stops everything.\n", sub.Repo)
}

// stop ends the daemons (submitter first, then the miners) and the chain.
func (d *devnet) stop() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		p.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done[i]:
		case <-time.After(20 * time.Second):
			p.Process.Kill()
			<-d.done[i]
		}
	}
	if d.chain != nil {
		d.chain.Close()
	}
}

// devnetEnviron is this process's environment without VFT_* settings: the
// devnet writes each node's config itself, and a VFT_CHAIN_RPC or
// VFT_P2P_BOOTSTRAP left in the shell would override it.
func devnetEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VFT_") && !strings.HasPrefix(kv, localnet.DirEnv+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func tailFile(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 1500 {
		data = data[len(data)-1500:]
	}
	return strings.TrimSpace(string(data))
}
