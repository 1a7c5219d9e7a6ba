// Package node is the composition root: it builds every component from the
// config, starts them in order, rolls back the started ones if one fails,
// and stops them in reverse order.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/escrow"
	"github.com/vft-network/vft/executor/oci"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/heartbeat"
	"github.com/vft-network/vft/hwdetect"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/repo"
	"github.com/vft-network/vft/storage"
	"github.com/vft-network/vft/verify"
)

// Options are the parts of a node that are not user configuration.
type Options struct {
	// Version is reported through the API and libp2p identify.
	Version string
	// NewHost replaces libp2p.New (tests use it for mocknet).
	NewHost p2p.HostConstructor
	// Bandwidth counts bytes per protocol when set.
	Bandwidth metrics.Reporter
	// Fault makes this node a deliberately dishonest miner (job.Faults),
	// from VFT_DEBUG_FAULT; refused unless debug.allow_faults is set.
	Fault string
	// CrashAt stops a settlement right after that step (chain.CrashSteps),
	// from VFT_DEBUG_CRASH_AT, to test crash recovery; refused unless
	// debug.allow_faults is set. At that step the node calls Crash, which
	// the binary sets to exit the process (status 3) as a crash would;
	// without Crash the settlement only stops there with an error.
	CrashAt string
	Crash   func(step string)
	// HeartbeatRate replaces heartbeat.NetworkBeatRate (benchmarks show
	// the interval scaling with a few dozen nodes).
	HeartbeatRate float64
	// RescueAfter replaces job.RescueAfter, how long after an escrowed
	// job's deadline its workers release the escrow without a verdict
	// (tests shorten it).
	RescueAfter time.Duration
}

// Node is one VFT node: a miner, light or edge node.
type Node struct {
	cfg  config.Config
	repo *repo.Repo
	key  *identity.Key
	log  *slog.Logger
	opts Options

	metrics  *prometheus.Registry
	stats    *nodeMetrics // job, GPU and settlement series on metrics
	net      *p2p.Network
	hardware *hwdetect.Detector
	// hwReport is the latest hardware report, taken at hwAt.
	hwMu     sync.Mutex
	hwReport hwdetect.Report
	hwAt     time.Time
	storage  *storage.Store
	jobs     *job.Book
	market   *job.Market
	worker   *job.Worker
	wasm     *wasm.Executor  // every node's; a submitter checks modules with it
	settle   *settlement     // nil when chain.settle is off
	escrow   *escrow.Service // nil when chain.settle is off

	// ociRuntime and gpuAccess say how the oci executor runs containers,
	// for heartbeats ("" without one).
	ociRuntime, gpuAccess string

	// reputation is this node's own view of other nodes, from verdicts.
	reputation *verify.Reputation
	// gossipRep is reputation for GossipSub's scoring goroutine, which
	// starts before reputation exists.
	gossipRep atomic.Pointer[verify.Reputation]

	// work is the lifetime of jobs this node runs; Close cancels and waits.
	work      context.Context
	stopWork  context.CancelFunc
	workers   sync.WaitGroup
	heartbeat *heartbeat.Service
	api       *api.Server

	// stops holds the Close of every started component, in start order.
	stops     []func() error
	closeOnce sync.Once
	closeErr  error
}

// New builds a node; it does no I/O beyond what the constructors check.
func New(r *repo.Repo, cfg config.Config, key *identity.Key, log *slog.Logger, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Fault != "" {
		if !slices.Contains(job.Faults, opts.Fault) {
			return nil, fmt.Errorf("VFT_DEBUG_FAULT=%q is not one of %v", opts.Fault, job.Faults)
		}
		if !cfg.Debug.AllowFaults {
			return nil, fmt.Errorf("VFT_DEBUG_FAULT=%s asks for a dishonest miner, but debug.allow_faults is false: unset VFT_DEBUG_FAULT, or set VFT_DEBUG_ALLOW_FAULTS=true on a test network", opts.Fault)
		}
		if cfg.Node.Mode == config.ModeLight {
			return nil, fmt.Errorf("VFT_DEBUG_FAULT=%s: a light node runs no jobs to cheat on", opts.Fault)
		}
	}
	if opts.CrashAt != "" {
		if !slices.Contains(chain.CrashSteps, opts.CrashAt) {
			return nil, fmt.Errorf("VFT_DEBUG_CRASH_AT=%q is not one of %v", opts.CrashAt, chain.CrashSteps)
		}
		if !cfg.Debug.AllowFaults {
			return nil, fmt.Errorf("VFT_DEBUG_CRASH_AT=%s would kill the daemon mid-payment, but debug.allow_faults is false: unset it, or set VFT_DEBUG_ALLOW_FAULTS=true on a test network", opts.CrashAt)
		}
	}
	n := &Node{cfg: cfg, repo: r, key: key, log: log, opts: opts, metrics: prometheus.NewRegistry()}
	n.metrics.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	n.stats = newNodeMetrics(n.metrics)
	n.opts.Bandwidth = n.stats.bandwidth(n.opts.Bandwidth, n.metrics)
	var err error
	n.net, err = p2p.New(cfg.P2P, key.LibP2P(), p2p.Options{
		DHTServer:  cfg.Node.Mode == config.ModeMiner,
		Registerer: n.metrics,
		UserAgent:  "vft/" + opts.Version,
		NewHost:    opts.NewHost,
		Bandwidth:  n.opts.Bandwidth,
		// Reputation exists only once storage has started: until then
		// every peer scores 0 here (gossipScore reads it when set).
		AppScore:        n.gossipScore,
		DirectProtocols: directProtocols,
	}, log)
	if err != nil {
		return nil, err
	}
	n.hardware, err = hwdetect.New(cfg.Hardware, log, hwdetect.Options{})
	if err != nil {
		return nil, err
	}
	publish := cfg.Node.Mode != config.ModeLight
	n.heartbeat, err = heartbeat.New(cfg.Heartbeat, key, n.heartbeatBody, publish, log, heartbeat.Options{NetworkBeatRate: opts.HeartbeatRate})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// Start takes the repo lock, joins the network and serves the API. On
// failure everything already started is stopped again.
func (n *Node) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	unlock, err := n.repo.Lock()
	if err != nil {
		return err
	}
	n.stops = append(n.stops, func() error { unlock(); return nil })

	if err := n.net.Start(ctx); err != nil {
		return err
	}
	n.stops = append(n.stops, n.net.Close, n.hardware.Close)

	n.storage, err = storage.New(n.cfg.Storage, n.repo.Dir(), n.net.Host(), n.net.DHT(), n.log, storage.Options{})
	if err != nil {
		return err
	}
	n.stops = append(n.stops, n.storage.Close)

	n.jobs = job.NewBook(n.storage.Datastore(), nil)
	n.jobs.Watch(n.stats.observe)
	n.work, n.stopWork = context.WithCancel(context.Background())
	n.stops = append(n.stops, func() error { n.stopWork(); n.workers.Wait(); return nil })
	if err := n.startSettlement(); err != nil {
		return err
	}
	if err := n.startEscrow(); err != nil {
		return err
	}
	n.startEarnings()
	n.reputation, err = verify.NewReputation(n.storage.Datastore(), n.key.PeerID(), n.log)
	if err != nil {
		return err
	}
	n.gossipRep.Store(n.reputation)
	// Every node has the WASM runtime: miners run jobs in it, and
	// submitters run custom verifier modules.
	wc := n.cfg.Executor.WASM
	wasmExec, err := wasm.New(wasm.Config{CacheDir: n.repo.Path("wasm-cache"),
		MaxModuleBytes: int64(wc.MaxModuleBytes), CacheMaxBytes: int64(wc.CacheMaxBytes),
		Runtime: wc.Runtime, Isolate: wc.Isolate}, n.log)
	if err != nil {
		return err
	}
	n.stops = append(n.stops, wasmExec.Close)
	n.wasm = wasmExec
	works := n.cfg.Node.Mode != config.ModeLight
	var onAssigned func(job.Record)
	if works {
		execs := job.Executors{job.ExecutorWASM: wasmExec}
		if slices.Contains(n.cfg.Market.Executors, job.ExecutorNative) {
			nativeExec, err := n.nativeExecutor(ctx)
			if err != nil {
				return err
			}
			n.stops = append(n.stops, nativeExec.Close)
			execs[job.ExecutorNative] = nativeExec
		}
		if slices.Contains(n.cfg.Market.Executors, oci.Name) {
			ociExec, err := n.ociExecutor()
			if err != nil {
				return err
			}
			n.stops = append(n.stops, ociExec.Close)
			execs[oci.Name] = ociExec
			// Read once: GPUAccess reads the CDI specs and runs ldconfig.
			n.ociRuntime, n.gpuAccess = ociExec.Runtime(), ociExec.GPUAccess()
		}
		wopts := job.WorkerOptions{Executors: execs, WorkDir: n.repo.Path("work"), Devices: n.gpuDevices, Fault: n.opts.Fault,
			Caps: job.StagingCaps{InputBytes: int64(n.cfg.Market.MaxInput), OutputBytes: int64(n.cfg.Market.MaxOutput),
				OutputFiles: n.cfg.Market.MaxOutputFiles}}
		if n.escrow != nil {
			wopts.CheckEscrow = n.checkEscrow
			wopts.Rescuer, wopts.RescueAfter = escrowRescuer{n}, n.opts.RescueAfter
		}
		n.worker = job.NewWorker(n.key, n.net.Streams(), n.jobs, jobContent{s: n.storage, noSymlinks: true}, wopts, n.log)
		if n.opts.Fault != "" {
			n.log.Warn("THIS NODE IS A DISHONEST MINER FOR TESTING (VFT_DEBUG_FAULT)", "fault", n.opts.Fault)
		}
		n.worker.Start()
		// Stops run last to first: the jobs' contexts are cancelled before
		// the worker and the executors close, so a run cut short by the
		// shutdown ends as one (counted as the node's, not the job's).
		n.stops = append(n.stops, n.worker.Close, func() error { n.stopWork(); return nil })
		if n.escrow != nil {
			n.startRescue() // stops before the worker does
		}
		onAssigned = func(rec job.Record) {
			n.worker.Reserve(rec.ID) // before the market's next capacity check
			n.workers.Add(1)
			go func() {
				defer n.workers.Done()
				n.worker.Run(n.work, rec)
				n.market.SlotFreed() // bid on what came while it was full
			}()
		}
	}
	started := time.Now()
	// The market opens its streams on the plain host: a bid to a submitter
	// this node cannot reach is dropped, not looked up in the DHT, or a
	// Sybil flood of offers would make every miner run a lookup per offer
	// (TestSybilOfferFlood fails with it). Workers and escrow, which only
	// talk to the parties of a real job, may look peers up (Streams).
	n.market = job.NewMarket(n.key, n.net.Host(), n.jobs, job.MarketOptions{
		Capacity: n.jobCapacity,
		Policy:   marketPolicy(n.cfg.Market),
		Works:    works,
		Known:    n.knownNodes,
		KnownSettled: func() bool {
			// Every miner heartbeats once per interval (longer ones on
			// big networks, where k is small beside the table).
			return time.Since(started) >= 3*n.cfg.Heartbeat.Interval.Std()
		},
		OnAssigned:  onAssigned,
		ReportGrace: n.cfg.Market.ReportGrace.Std(),
		OnCancelled: func(id string) {
			if n.worker != nil {
				n.worker.Cancel(id)
			}
		},
		Settle:     n.settleFunc(),
		CheckFunds: n.checkFundsFunc(),
		Reputation: n.reputationOf,
		OnVerdict:  n.observeVerdict,
		Penalize:   n.penalize,
		Matcher:    n.matcher(wasmExec),
		OpenEscrow: n.escrowFunc(),
		Refund:     n.refundFunc(),
	}, n.log)
	// Heartbeats start once the worker exists: they announce its free slots.
	hbTopic, err := n.net.Join(heartbeat.TopicName, n.heartbeat.Validate)
	if err != nil {
		return err
	}
	n.heartbeat.Start(hbTopic)
	n.stops = append(n.stops, hbTopic.Close, n.heartbeat.Close)

	offers, err := n.net.Join(job.OffersTopic, n.market.ValidateOffer)
	if err != nil {
		return err
	}
	verdicts, err := n.net.Join(job.VerdictsTopic, n.market.ValidateVerdict)
	if err != nil {
		return err
	}
	n.market.Start(gossip{offers}, gossip{verdicts})
	n.stops = append(n.stops, offers.Close, verdicts.Close, n.market.Close)
	if err := n.market.Resume(ctx); err != nil {
		return err
	}

	token, err := n.repo.APIToken()
	if err != nil {
		return err
	}
	n.api, err = api.New(n.cfg.API, backend{n}, token, n.metrics, n.log)
	if err != nil {
		return err
	}
	n.api.ServeContent(content{n.storage})
	n.api.ServeJobs(jobsAPI{n})
	n.serveDashboard()
	if err := n.api.Start(); err != nil {
		return err
	}
	n.stops = append(n.stops, n.api.Close)
	if err := n.repo.WriteAPIAddr(n.api.Addr()); err != nil {
		return err
	}
	n.stops = append(n.stops, n.repo.RemoveAPIAddr)

	n.log.Info("node started", "mode", n.cfg.Node.Mode, "peer", n.key.PeerID(), "wallet", n.key.WalletAddress(), "api", n.api.Addr())
	return nil
}

// Close stops every started component in reverse order; safe to call twice.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		for i := len(n.stops) - 1; i >= 0; i-- {
			if err := n.stops[i](); err != nil {
				errs = append(errs, err)
			}
		}
		n.stops = nil
		n.closeErr = errors.Join(errs...)
		if n.closeErr != nil {
			n.closeErr = fmt.Errorf("stop node: %w", n.closeErr)
		}
	})
	return n.closeErr
}

// Network is the node's p2p layer.
func (n *Node) Network() *p2p.Network { return n.net }

// APIAddr is the API's real address.
func (n *Node) APIAddr() string { return n.api.Addr() }

// Config is the node's effective configuration.
func (n *Node) Config() config.Config { return n.cfg }

// Key is the node's identity.
func (n *Node) Key() *identity.Key { return n.key }

// RepoPath is where this node keeps name under its repository.
func (n *Node) RepoPath(name string) string { return n.repo.Path(name) }

// Storage is the node's content store.
func (n *Node) Storage() *storage.Store { return n.storage }

// Market is the node's job market.
func (n *Node) Market() *job.Market { return n.market }

// Jobs is the node's job book.
func (n *Node) Jobs() *job.Book { return n.jobs }

// Heartbeats is the live network table.
func (n *Node) Heartbeats() *heartbeat.Service { return n.heartbeat }

// hardwareMaxAge is how long a hardware report is reused. Every offer and
// every assignment asks for the node's capacity; a full scan (NVML
// included) per offer would let a flood of valid offers keep the node
// busy scanning.
const hardwareMaxAge = 2 * time.Second

// hardwareReport is the hardware as detected at most hardwareMaxAge ago;
// concurrent callers wait for one scan instead of each running their own.
func (n *Node) hardwareReport(ctx context.Context) (hwdetect.Report, error) {
	n.hwMu.Lock()
	defer n.hwMu.Unlock()
	if !n.hwAt.IsZero() && time.Since(n.hwAt) < hardwareMaxAge {
		return n.hwReport, nil
	}
	report, err := n.hardware.Detect(ctx, n.repo.Dir())
	if err != nil {
		return report, err
	}
	n.hwReport, n.hwAt = report, time.Now()
	return report, nil
}

// capabilities describes what this node offers now: the market checks
// every offer against it, and the heartbeat carries it (heartbeatBody).
func (n *Node) capabilities(ctx context.Context) heartbeat.Heartbeat {
	hb := heartbeat.Heartbeat{
		Mode:       string(n.cfg.Node.Mode),
		Version:    n.opts.Version,
		Executors:  n.cfg.Market.Executors,
		PriceFloor: n.cfg.Market.MinPrice,
		Mint:       n.cfg.Market.Mint,
		FreeSlots:  uint32(n.cfg.Market.MaxJobs),
	}
	if n.worker != nil {
		hb.FreeSlots = uint32(max(0, n.cfg.Market.MaxJobs-n.worker.Running()))
	}
	report, err := n.hardwareReport(ctx)
	if err != nil {
		n.log.Warn("hardware detection failed", "err", err)
		return hb
	}
	hb.CPUCores = uint32(report.CPU.LogicalCores)
	hb.MemoryBytes = report.Memory.TotalBytes
	hb.FreeMemoryBytes = report.Memory.AvailableBytes
	for _, g := range report.UsableGPUs() {
		hb.GPUs = append(hb.GPUs, heartbeat.GPU{
			Name: g.Name, MemoryBytes: g.MemoryTotalBytes, FreeMemoryBytes: g.MemoryFreeBytes,
			ComputeCapability: g.ComputeCapability, UtilPercent: g.UtilizationGPUPercent,
		})
	}
	return hb
}

// heartbeatBody is capabilities plus what only the heartbeat carries (how
// to reach this node, how it runs containers): kept out of capabilities,
// which every gossiped offer asks for.
func (n *Node) heartbeatBody(ctx context.Context) heartbeat.Heartbeat {
	hb := n.capabilities(ctx)
	hb.Reachability, hb.Addrs = heartbeatReach(n.net.Reachability())
	if n.ociRuntime != "" {
		hb.OCIRuntime = filepath.Base(n.ociRuntime) // "runc", not its path
	}
	if len(hb.GPUs) > 0 {
		hb.GPUAccess = n.gpuAccess
	}
	if err := hb.CheckOptional(); err != nil {
		// Peers would refuse the whole heartbeat (a runtime configured
		// as an odd path): say less rather than nothing.
		n.log.Debug("heartbeat sent without its optional keys", "err", err)
		hb.Addrs, hb.Reachability, hb.OCIRuntime, hb.GPUAccess = nil, "", "", ""
	}
	return hb
}

// heartbeatReach is what a heartbeat says of how to reach this node: a
// public node its public addresses, a node behind NAT its relay
// addresses, at most heartbeat.MaxAddrs of them; nothing while AutoNAT
// has not decided.
func heartbeatReach(r p2p.Reachability) (status string, addrs []string) {
	switch r.Status {
	case heartbeat.ReachabilityPublic:
		addrs = r.Reachable
	case heartbeat.ReachabilityPrivate:
		addrs = r.RelayAddrs
	default:
		return "", nil
	}
	var out []string
	for _, a := range addrs {
		if len(a) <= heartbeat.MaxAddrLen && len(out) < heartbeat.MaxAddrs {
			out = append(out, a)
		}
	}
	return r.Status, out
}
