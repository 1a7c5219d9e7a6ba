package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/executor/native"
	"github.com/vft-network/vft/executor/oci"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/storage"
)

// gossip adapts a p2p topic to the market's Gossip.
type gossip struct{ t *p2p.Topic }

func (g gossip) Publish(ctx context.Context, data []byte) error { return g.t.Publish(ctx, data) }

func (g gossip) Next(ctx context.Context) (peer.ID, []byte, error) {
	m, err := g.t.Next(ctx)
	return m.From, m.Data, err
}

func marketPolicy(m config.MarketConfig) job.Policy {
	p := job.Policy{MinPrice: m.MinPrice, Mint: m.Mint, Executors: m.Executors, RequireEscrow: m.RequireEscrow,
		MaxOutputBytes: uint64(m.MaxOutput)}
	for _, s := range m.AllowedSubmitters {
		if id, err := peer.Decode(s); err == nil { // Validate has checked them
			p.Submitters = append(p.Submitters, id)
		}
	}
	return p
}

// jobCapacity is what this node can give a job now: the heartbeat's view
// of its hardware and slots.
func (n *Node) jobCapacity(ctx context.Context) job.Capacity {
	hb := n.capabilities(ctx)
	c := job.Capacity{CPUCores: hb.CPUCores, MemoryBytes: hb.FreeMemoryBytes, FreeSlots: hb.FreeSlots}
	for _, g := range hb.GPUs {
		c.GPUs = append(c.GPUs, job.GPU{Name: g.Name, MemoryBytes: g.FreeMemoryBytes})
	}
	return c
}

// knownNodes turns the heartbeat table into what the market needs to
// explain a job nobody bids on.
func (n *Node) knownNodes() []job.KnownNode {
	var out []job.KnownNode
	for _, e := range n.heartbeat.Nodes() {
		hb := e.Heartbeat
		c := job.Capacity{CPUCores: hb.CPUCores, MemoryBytes: hb.FreeMemoryBytes, FreeSlots: hb.FreeSlots}
		for _, g := range hb.GPUs {
			c.GPUs = append(c.GPUs, job.GPU{Name: g.Name, MemoryBytes: g.FreeMemoryBytes})
		}
		out = append(out, job.KnownNode{Peer: e.Peer, Capacity: c, Addrs: hb.Addrs,
			Policy: job.Policy{MinPrice: hb.PriceFloor, Mint: hb.Mint, Executors: hb.Executors}})
	}
	return out
}

// jobsAPI adapts the market and the book to what the API serves.
type jobsAPI struct{ n *Node }

func (j jobsAPI) Submit(ctx context.Context, spec job.Spec) (string, error) {
	// A spec that names no mint pays in what this node pays with.
	if spec.Mint == "" && j.n.settle != nil && !j.n.settle.client.Mint().IsZero() {
		spec.Mint = j.n.settle.client.Mint().String()
	}
	// chain.escrow: this node pays every job from an escrow.
	if j.n.cfg.Chain.Escrow && j.n.escrow != nil {
		spec.Escrow = true
	}
	if err := j.n.checkModule(ctx, spec); err != nil {
		return "", err
	}
	o, err := j.n.market.Submit(ctx, spec)
	if err != nil {
		return "", err
	}
	return o.ID.String(), nil
}

// moduleFetchTimeout bounds fetching a module this node does not hold
// before checking it: `vft job submit` adds it here, so it is normally
// local and read at once.
const moduleFetchTimeout = 30 * time.Second

// checkModule refuses a WASM job whose module no miner could run (a text
// file, a native binary, a module that does not compile), checked with
// this node's own WASM executor before the job is offered: otherwise every
// miner that bids fetches it, fails, and the job fails k times over.
func (n *Node) checkModule(ctx context.Context, spec job.Spec) error {
	if spec.Executor != job.ExecutorWASM || n.wasm == nil {
		return nil
	}
	id, err := parseCID(spec.Module)
	if err != nil {
		return nil // the market's Validate names the bad CID
	}
	bin, err := n.readModule(ctx, id)
	if err != nil {
		return err
	}
	if err := n.wasm.Validate(ctx, bin); err != nil {
		return fmt.Errorf("module %s: %w", id, err)
	}
	return nil
}

// readModule reads the module file id, fetching it from peers first if
// this node lacks blocks of it, and reads at most one byte past
// executor.wasm.max_module_bytes (Validate refuses the larger).
func (n *Node) readModule(ctx context.Context, id cid.Cid) ([]byte, error) {
	fetchCtx, cancel := context.WithTimeout(ctx, moduleFetchTimeout)
	defer cancel()
	if _, err := n.storage.Fetch(fetchCtx, id, storage.FetchOptions{}); err != nil {
		return nil, fmt.Errorf("cannot check module %s before offering the job: it is not in this node's store and could not be fetched (%w); add the .wasm file to this node (`vft add FILE`) and submit again", id, err)
	}
	r, err := n.storage.Cat(ctx, id, 0, int64(n.cfg.Executor.WASM.MaxModuleBytes)+1)
	if errors.Is(err, storage.ErrNotFile) {
		return nil, fmt.Errorf("module %s is a directory, not a .wasm file: give the module file itself", id)
	} else if err != nil {
		return nil, fmt.Errorf("read module %s: %w", id, err)
	}
	defer r.Close()
	bin, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", id, err)
	}
	return bin, nil
}

func (j jobsAPI) List(ctx context.Context) ([]job.Record, error) { return j.n.jobs.List(ctx) }

func (j jobsAPI) Status(ctx context.Context, id string) (job.Record, error) {
	return j.n.jobs.Get(ctx, id)
}

func (j jobsAPI) Cancel(ctx context.Context, id, reason string) error {
	return j.n.market.Cancel(ctx, id, reason)
}

// nativeExecutor starts the bubblewrap executor a miner opted into, and
// checks that this host can create its sandbox: a miner that offers native
// jobs and cannot run them would only collect failures.
func (n *Node) nativeExecutor(ctx context.Context) (*native.Executor, error) {
	nc := n.cfg.Executor.Native
	ex, err := native.New(native.Config{GPUs: gpuNodes{n}, AllowWithoutCgroups: nc.AllowWithoutCgroups,
		MaxProcesses: nc.MaxProcesses, TmpBytes: int64(nc.TmpBytes), WorkBytes: int64(nc.WorkBytes)}, n.log)
	if err != nil {
		return nil, fmt.Errorf("market.executors offers native, but %w; install bubblewrap (apt-get install bubblewrap) or remove native", err)
	}
	if err := ex.Check(ctx); err != nil {
		ex.Close()
		return nil, fmt.Errorf("market.executors offers native, but this host cannot run it: %w", err)
	}
	return ex, nil
}

// ociExecutor starts the container executor a miner opted into: an OCI
// runtime (crun, or runc) and the rootfs cache in <repo>/oci-rootfs.
func (n *Node) ociExecutor() (*oci.Executor, error) {
	oc := n.cfg.Executor.OCI
	ex, err := oci.New(oci.Config{Runtime: oc.Runtime, CacheDir: n.repo.Path("oci-rootfs"), CacheBytes: int64(oc.CacheMaxBytes),
		CDISpecDirs: oc.CDISpecDirs, GPUs: gpuNodes{n}, NoUserNamespace: !oc.UserNamespace, HostIDBase: oc.HostIDBase}, n.log)
	if err != nil {
		return nil, fmt.Errorf("market.executors offers oci, but %w; or remove oci", err)
	}
	return ex, nil
}

// gpuDevices lists the GPUs jobs may use (after hardware.exclude_gpus).
func (n *Node) gpuDevices(ctx context.Context) []job.Device {
	gpus, err := n.hardware.GPUs(ctx)
	if err != nil {
		return nil
	}
	out := make([]job.Device, 0, len(gpus))
	for _, g := range gpus {
		out = append(out, job.Device{UUID: g.UUID, Name: g.Name, MemoryBytes: g.MemoryFreeBytes})
	}
	return out
}

// gpuNodes gives the native executor, and the oci executor where no CDI
// spec names a GPU, the /dev/nvidiaN node of a GPU.
type gpuNodes struct{ n *Node }

func (g gpuNodes) DeviceNode(uuid string) (string, error) {
	gpus, err := g.n.hardware.GPUs(context.Background())
	if err != nil {
		return "", err
	}
	for _, gpu := range gpus {
		if gpu.UUID == uuid && gpu.DevicePath != "" {
			return gpu.DevicePath, nil
		}
	}
	return "", fmt.Errorf("GPU %s has no device node", uuid)
}
