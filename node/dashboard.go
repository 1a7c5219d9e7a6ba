package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/hwdetect"
	"github.com/vft-network/vft/job"
)

// statusInterval is how often the live feed and the GPU gauges refresh.
const statusInterval = 2 * time.Second

// serveDashboard adds the dashboard, its live feed and the wallet to the
// API, and starts the status ticker that also keeps the GPU gauges fresh.
// Edge devices get the ticker (for /metrics) but no dashboard or feed:
// they are headless and short of memory.
func (n *Node) serveDashboard() {
	d := &dashboard{n: n, log: n.log.With("component", "dashboard"), changes: newTransitions()}
	if n.cfg.Node.Mode == config.ModeEdge {
		n.api.NoDashboard("edge devices serve no dashboard: run a miner or light node for one, or read /metrics (with the API token)")
	} else {
		d.hub = api.NewHub(api.HubConfig{}, n.log)
		n.jobs.Watch(d.onJob)
		n.api.ServeEvents(d.hub)
		n.api.ServeDashboard()
	}
	n.api.ServeWallet(n.newWallet())
	n.api.ServeEarnings(earningsAPI{n})
	n.api.ServeReputation(n.reputation)
	d.start()
	n.stops = append(n.stops, d.Close)
}

// dashboard feeds the API's event hub from the job book and a ticker.
type dashboard struct {
	n       *Node
	hub     *api.Hub // nil on edge devices
	log     *slog.Logger
	changes *transitions

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func (d *dashboard) start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(statusInterval)
		defer t.Stop()
		for {
			d.tick(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the ticker and waits for it; safe to call twice.
func (d *dashboard) Close() error {
	d.closeOnce.Do(func() {
		if d.cancel != nil {
			d.cancel()
		}
		d.wg.Wait()
	})
	return nil
}

// tick reads the GPUs once for both the gauges and the feed.
func (d *dashboard) tick(ctx context.Context) {
	gpus, err := d.n.hardware.GPUs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Debug("GPU readings unavailable", "err", err)
		}
		gpus = nil
	}
	d.n.stats.gpus(gpus)
	// No dashboard open, which is how a daemon spends most of its life:
	// the status would be built for no one (listing every peer's
	// connection was most of a 50-node network's dashboard cost). A client
	// that connects gets the last status, stamped with its time, and a
	// fresh one at the next tick.
	if d.hub == nil || d.hub.Clients() == 0 {
		return
	}
	st := api.Status{
		Time:  time.Now().UTC(),
		Peers: len(d.n.net.Peers()),
		Nodes: len(d.n.heartbeat.Nodes()),
		GPUs:  make([]api.GPUStatus, 0, len(gpus)),
	}
	if d.n.worker != nil {
		st.MaxJobs = d.n.cfg.Market.MaxJobs
		st.FreeSlots = max(0, st.MaxJobs-d.n.worker.Running())
	}
	for _, g := range gpus {
		st.GPUs = append(st.GPUs, gpuStatus(g))
	}
	d.hub.Publish(api.EventStatus, st)
}

func gpuStatus(g hwdetect.GPU) api.GPUStatus {
	s := api.GPUStatus{
		Index: g.Index, Name: g.Name, UUID: g.UUID,
		UtilizationPercent: g.UtilizationGPUPercent,
		MemoryUsedBytes:    g.MemoryUsedBytes, MemoryTotalBytes: g.MemoryTotalBytes,
		TemperatureC: g.TemperatureC,
	}
	for field, reading := range map[string]string{
		"utilization_gpu_percent": "utilization", "memory_used_bytes": "memory", "temperature_c": "temperature",
	} {
		if _, ok := g.Unavailable[field]; ok {
			if s.Unavailable == nil {
				s.Unavailable = map[string]bool{}
			}
			s.Unavailable[reading] = true
		}
	}
	return s
}

// onJob is the book's watcher: every saved record goes out as it is (so
// fields added to job.Record later reach the dashboard untouched), and
// each new transition as a sentence for the log.
func (d *dashboard) onJob(rec job.Record) {
	d.hub.Publish(api.EventJob, rec)
	for _, i := range d.changes.fresh(rec) {
		level, msg := describe(rec, i)
		d.hub.Publish(api.EventLog, api.LogLine{Time: rec.History[i].At, Level: level, Message: msg, Job: rec.ID})
	}
}

// describe tells change i of rec in a sentence.
func describe(rec job.Record, i int) (level, msg string) {
	c := rec.History[i]
	id := shortID(rec.ID)
	level = "info"
	worker := rec.Role == job.RoleWorker
	switch c.State {
	case job.StateOffered:
		msg = fmt.Sprintf("Job %s offered to the network", id)
		if i > 0 {
			msg = fmt.Sprintf("Job %s offered again", id)
		}
	case job.StateAssigned:
		msg = fmt.Sprintf("Job %s: workers are being assigned", id)
		if worker {
			msg = fmt.Sprintf("This node was assigned job %s", id)
		}
	case job.StateRunning:
		msg = fmt.Sprintf("Running job %s", id)
	case job.StateVerifying:
		msg = fmt.Sprintf("Job %s: results are being verified", id)
		if worker {
			msg = fmt.Sprintf("Job %s computed in %s; result reported", id, stageDuration(rec, i).Round(time.Millisecond))
		}
	case job.StateSettling:
		msg = fmt.Sprintf("Job %s verified; settling payment", id)
	case job.StateDone:
		msg = fmt.Sprintf("Job %s done: result %s accepted", id, shortID(rec.Result))
	case job.StateFailed:
		level, msg = "error", fmt.Sprintf("Job %s failed: %s", id, rec.Reason)
	case job.StateCancelled:
		level, msg = "warn", fmt.Sprintf("Job %s cancelled: %s", id, rec.Reason)
	default:
		msg = fmt.Sprintf("Job %s is now %s", id, c.State)
	}
	if c.Note != "" && c.State != job.StateFailed && c.State != job.StateCancelled {
		msg += " (" + c.Note + ")"
	}
	return level, msg
}

func shortID(id string) string {
	if len(id) <= 16 {
		return id
	}
	return id[:8] + "…" + id[len(id)-6:]
}

// newWallet gives the API the node's chain wallet. A wallet that cannot
// be built (a keypair file gone) is reported by the endpoint rather than
// stopping the node: jobs do not need it to run.
func (n *Node) newWallet() api.Wallet {
	if n.settle != nil { // one client for payouts and the wallet view
		return walletAPI{c: n.settle.client, rpc: n.cfg.Chain.RPC}
	}
	c, err := chain.New(n.cfg.Chain, n.key, n.log)
	if err != nil {
		return walletAPI{err: fmt.Errorf("wallet: %w", err)}
	}
	n.stops = append(n.stops, c.Close)
	return walletAPI{c: c, rpc: n.cfg.Chain.RPC}
}

// walletAPI reads balances from chain.rpc.
type walletAPI struct {
	c   *chain.Client
	rpc string
	err error
}

func (w walletAPI) Wallet(ctx context.Context) (api.WalletInfo, error) {
	if w.err != nil {
		return api.WalletInfo{}, w.err
	}
	info := api.WalletInfo{Address: w.c.Address().String()}
	var err error
	if info.Balance, err = w.c.Balance(ctx); err != nil {
		return info, fmt.Errorf("chain unreachable at %s (chain.rpc): %w", w.rpc, err)
	}
	if mint := w.c.Mint(); !mint.IsZero() {
		info.Mint = mint.String()
		if info.TokenBalance, err = w.c.TokenBalance(ctx, mint, w.c.Address()); err != nil {
			return info, fmt.Errorf("chain unreachable at %s (chain.rpc): %w", w.rpc, err)
		}
	}
	return info, nil
}

// APIToken is the token every API call but the health check needs (an
// in-process caller such as a test harness reads it here).
func (n *Node) APIToken() (string, error) { return n.repo.APIToken() }
