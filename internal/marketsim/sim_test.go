package marketsim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/x/simlibp2p"
	"github.com/marcopolo/simnet"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/vft-network/vft/executor/noop"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/heartbeat"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/wire"
)

func init() {
	// The real wasm kind's rules (spec check, what a worker fetches, how
	// the task is built); its runner is replaced by a noop executor.
	job.RegisterKind(wasm.Kind{})
}

// config is one simulated network and its workload.
type config struct {
	Nodes      int   // hosts: node 0 submits, the others mine
	Degree     int   // peers each node dials at start (bootstrap)
	K          int   // workers per job (verify.k), quorum k/2+1
	Sequential int   // jobs submitted one after the other
	Concurrent int   // then this many submitted at once
	Seed       int64 // latencies and dials
	// MinLatency and MaxLatency bound the one-way latency of a link: each
	// node gets half of a random value in the range, a link the sum of
	// its two ends.
	MinLatency, MaxLatency time.Duration
	Bandwidth              int // bits per second, each node up and down
	MaxJobs                int // slots per miner
	// ReachAll gives every miner the submitter's address, as the DHT's
	// records would once the submitter is well known; without it (the
	// simulation has no DHT) a miner not connected to the submitter bids
	// only on the invitation the submitter dials it for, at the addresses
	// its heartbeat announces.
	ReachAll bool
	// Stagger spreads the miners' first heartbeats uniformly over this
	// span after they join (0: all at once). A real network's nodes
	// neither boot nor beat in the same millisecond. At 1,000 nodes even
	// 200 first heartbeats per second overflowed GossipSub's per-peer
	// queues (result.DroppedRPCs counts that).
	Stagger time.Duration
	// DirectBeats replaces heartbeat gossip: no node publishes on the
	// heartbeat topic (it is still joined), and once the mesh has formed
	// every miner's heartbeat, signed by the miner as its service would
	// sign it, is handed straight to the submitter's real validator
	// (heartbeat.Service.Validate), which records it. The submitter's
	// table is then what it would hold after one heartbeat round, without
	// the round: at 1,000 nodes that round alone (every node relays and
	// verifies 999 heartbeats) outlasts a 45-minute run on 2 cores.
	DirectBeats bool
	// Transport is how the hosts reach each other: "simnet" (the
	// default: QUIC + TLS over x/simlibp2p's simulated UDP) or "mocknet"
	// (go-libp2p's mocknet, no encryption and no packets, with the same
	// latencies and uplink bandwidth added per write: mocknet_test.go).
	Transport string
}

// Transports config.Transport may name.
const (
	transportSimnet  = "simnet"
	transportMocknet = "mocknet"
)

// checkTransport refuses a config.Transport the simulation does not know.
func checkTransport(name string) error {
	switch name {
	case "", transportSimnet, transportMocknet:
		return nil
	}
	return fmt.Errorf("transport %q is not simulated: use %q (QUIC over simnet, the default) or %q", name, transportSimnet, transportMocknet)
}

// hostNet is the simulated network the hosts live on: QUIC over simnet
// (quicNet) or mocknet (simNet, mocknet_test.go).
type hostNet interface {
	// newHost adds host i with key; half is its share of a link's
	// one-way latency (a link's latency is the sum of its ends').
	newHost(i int, key *identity.Key, half time.Duration) (host.Host, error)
	// start runs the network once every host is on it.
	start()
	// gossipBeforeDials says whether GossipSub must start on every node
	// before the bootstrap dials, not after.
	gossipBeforeDials() bool
	Close() error
}

// quicNet runs each host's QUIC over x/simlibp2p's simulated UDP, with
// each node's uplink and downlink limited to the configured bandwidth.
type quicNet struct {
	sim  *simnet.Simnet
	link simnet.NodeBiDiLinkSettings
	half map[string]time.Duration // by simulated IP
}

func newQUICNet(bandwidth int) *quicNet {
	n := &quicNet{
		link: simnet.NodeBiDiLinkSettings{
			Downlink: simnet.LinkSettings{BitsPerSecond: bandwidth},
			Uplink:   simnet.LinkSettings{BitsPerSecond: bandwidth},
		},
		half: map[string]time.Duration{},
	}
	ipOf := func(a net.Addr) string {
		if u, ok := a.(*net.UDPAddr); ok {
			return u.IP.String()
		}
		return ""
	}
	n.sim = &simnet.Simnet{LatencyFunc: func(p *simnet.Packet) time.Duration {
		return n.half[ipOf(p.From)] + n.half[ipOf(p.To)]
	}}
	return n
}

func (n *quicNet) newHost(i int, key *identity.Key, half time.Duration) (host.Host, error) {
	ip := simnet.IntToPublicIPv4(i)
	n.half[ip.String()] = half
	// p2p's default watermarks (p2p.DefaultConfig: conn_low 64,
	// conn_high 256, conn_grace 30 s).
	cm, err := connmgr.NewConnManager(64, 256, connmgr.WithGracePeriod(30*time.Second))
	if err != nil {
		return nil, err
	}
	return libp2p.New(
		libp2p.ConnectionManager(cm),
		libp2p.Identity(key.LibP2P()),
		libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", ip)),
		simlibp2p.QUICSimnet(n.sim, n.link),
		// simlibp2p: identify's address discovery stalls synctest.
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableMetrics(),
	)
}

func (n *quicNet) start()                  { n.sim.Start() }
func (n *quicNet) gossipBeforeDials() bool { return false }
func (n *quicNet) Close() error {
	n.sim.Close()
	return nil
}

// heartbeatInterval is the interval every simulated node is configured
// with: what a node of the default configuration announces once it has
// learned the network's size (heartbeat.ScaledInterval: 30 s up to 300
// nodes, then nodes ÷ 10 per second, 100 s at 1,000). Without it every
// node would start at 30 s and only stretch its interval after a few
// beats, doubling the heartbeats of a 1,000-node run, each of which
// every node relays and verifies.
func heartbeatInterval(nodes int) time.Duration {
	return heartbeat.ScaledInterval(heartbeat.DefaultConfig().Interval.Std(), nodes, heartbeat.NetworkBeatRate)
}

// result is what one run measured; times are virtual unless named CPU.
type result struct {
	Connect       time.Duration // every dial done
	MeshFormed    time.Duration // every node has ≥ Dlo peers in the offers mesh
	Settled       time.Duration // every miner is in the submitter's heartbeat table, or 10 s
	Known         int           // miners in the submitter's heartbeat table when the jobs start
	Connected     int           // peers connected to the submitter then
	Jobs          []jobTimes    // per job, in order; Concurrent ones last
	Virtual       time.Duration // the whole run
	CPU           time.Duration // user+system CPU of the process for the run
	BytesSent     int64         // all GossipSub RPC bytes sent, every node
	TopicBytes    map[string]int64
	DroppedRPCs   int64         // GossipSub RPCs dropped for a full peer queue, every node
	MeasuredSpan  time.Duration // from mesh formed to the last job done
	SpanBytesSent int64         // GossipSub bytes sent over MeasuredSpan
	Failures      []string      // why jobs did not end done with k distinct workers
}

type jobTimes struct {
	ID         string
	Concurrent bool
	Assigned   time.Duration // offer → k workers assigned
	Done       time.Duration // offer → done
	Workers    []peer.ID
}

// node is one simulated VFT node: the parts node/node.go composes.
type node struct {
	key     *identity.Key
	host    host.Host
	ps      *pubsub.PubSub
	psStop  context.CancelFunc
	trace   *tracer
	book    *job.Book
	market  *job.Market
	worker  *job.Worker
	hb      *heartbeat.Service
	hbCaps  heartbeat.Capabilities
	topics  []*topic
	runs    sync.WaitGroup
	work    context.Context
	stopRun context.CancelFunc
}

// fetchProtocol serves content from the node that holds it: the
// simulation's stand-in for the block exchange, a stream over the
// simulated network carrying the whole block.
const fetchProtocol protocol.ID = "/marketsim/fetch/1"

// content is the simulated content store: one in-memory map of blocks
// (the submitter's module and input) shared by every node; a worker's
// fetch crosses the simulated network from the holder (fetchProtocol),
// and an import hashes the output files into a CID.
type content struct {
	blocks map[string][]byte
	host   host.Host
}

func (c content) GetFrom(ctx context.Context, holder peer.ID, id, path string, maxBytes int64) error {
	st, err := c.host.NewStream(ctx, holder, fetchProtocol)
	if err != nil {
		return fmt.Errorf("fetch %s from %s: %w", id, holder, err)
	}
	defer st.Close()
	if _, err := io.WriteString(st, id+"\n"); err != nil {
		return err
	}
	st.CloseWrite()
	data, err := io.ReadAll(io.LimitReader(st, 1<<20))
	if err != nil {
		return fmt.Errorf("fetch %s from %s: %w", id, holder, err)
	}
	if maxBytes > 0 && int64(len(data)) > maxBytes {
		return fmt.Errorf("fetch %s: %d bytes, over %d", id, len(data), maxBytes)
	}
	return os.WriteFile(path, data, 0o600)
}

func (c content) serve(st network.Stream) {
	defer st.Close()
	line, err := io.ReadAll(io.LimitReader(st, 200))
	if err != nil {
		st.Reset()
		return
	}
	data, ok := c.blocks[strings.TrimSpace(string(line))]
	if !ok {
		st.Reset()
		return
	}
	st.Write(data)
}

func (c content) AddDir(_ context.Context, dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return "", err
	}
	return rawCID(h.Sum(nil)), nil
}

func rawCID(data []byte) string {
	sum, _ := mh.Sum(data, mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, sum).String()
}

// topic is a joined GossipSub topic as the market and the heartbeat
// service read it: messages from others, validated.
type topic struct {
	t    *pubsub.Topic
	sub  *pubsub.Subscription
	self peer.ID
}

func (t *topic) Publish(ctx context.Context, data []byte) error { return t.t.Publish(ctx, data) }

func (t *topic) NextMessage(ctx context.Context) (p2p.Message, error) {
	for {
		msg, err := t.sub.Next(ctx)
		if err != nil {
			return p2p.Message{}, err
		}
		if msg.GetFrom() != t.self {
			return p2p.Message{From: msg.GetFrom(), Data: msg.GetData()}, nil
		}
	}
}

func (t *topic) Peers() []peer.ID { return t.t.ListPeers() }

func (t *topic) Close() error {
	t.sub.Cancel()
	return t.t.Close()
}

// marketGossip and beatGossip adapt a topic to job.Gossip and
// heartbeat.Topic (their Next methods differ).
type marketGossip struct{ *topic }

func (g marketGossip) Next(ctx context.Context) (peer.ID, []byte, error) {
	m, err := g.NextMessage(ctx)
	return m.From, m.Data, err
}

type beatGossip struct{ *topic }

func (g beatGossip) Next(ctx context.Context) (p2p.Message, error) { return g.NextMessage(ctx) }

// join registers validate as the topic's validator, as p2p.Network.Join
// does (own messages accepted, p2p.ErrIgnore ignored, other errors
// rejected), without its per-author and per-relay rate limits.
func (n *node) join(name string, validate p2p.Validator) (*topic, error) {
	self := n.host.ID()
	err := n.ps.RegisterTopicValidator(name, func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if from == self && msg.GetFrom() == self {
			return pubsub.ValidationAccept
		}
		switch err := validate(ctx, msg.GetFrom(), msg.GetData()); {
		case err == nil:
			return pubsub.ValidationAccept
		case errors.Is(err, p2p.ErrIgnore):
			return pubsub.ValidationIgnore
		default:
			return pubsub.ValidationReject
		}
	})
	if err != nil {
		return nil, err
	}
	t, err := n.ps.Join(name)
	if err != nil {
		return nil, err
	}
	if err := t.SetScoreParams(topicScoreParams()); err != nil {
		return nil, err
	}
	sub, err := t.Subscribe()
	if err != nil {
		return nil, err
	}
	tp := &topic{t: t, sub: sub, self: self}
	n.topics = append(n.topics, tp)
	return tp, nil
}

// tracer counts what a node's GossipSub sends, and its mesh per topic.
type tracer struct {
	sent    atomic.Int64
	dropped atomic.Int64 // RPCs dropped: the peer's outbound queue was full
	mu      sync.Mutex
	byTopic map[string]int64
	mesh    map[string]int
}

func newTracer() *tracer { return &tracer{byTopic: map[string]int64{}, mesh: map[string]int{}} }

func (t *tracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	t.sent.Add(int64(proto.Size(&rpc.RPC)))
	t.mu.Lock()
	for _, m := range rpc.GetPublish() {
		t.byTopic[m.GetTopic()] += int64(proto.Size(m))
	}
	t.mu.Unlock()
}

func (t *tracer) Graft(_ peer.ID, topic string) { t.mu.Lock(); t.mesh[topic]++; t.mu.Unlock() }
func (t *tracer) Prune(_ peer.ID, topic string) { t.mu.Lock(); t.mesh[topic]--; t.mu.Unlock() }

func (t *tracer) meshSize(topic string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mesh[topic]
}

func (*tracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (*tracer) OnClosedOutboundStream(peer.ID)                       {}
func (*tracer) Join(string)                                          {}
func (*tracer) Leave(string)                                         {}
func (*tracer) ValidateMessage(*pubsub.Message)                      {}
func (*tracer) DeliverMessage(*pubsub.Message)                       {}
func (*tracer) RejectMessage(*pubsub.Message, string)                {}
func (*tracer) DuplicateMessage(*pubsub.Message)                     {}
func (*tracer) ThrottlePeer(peer.ID)                                 {}
func (*tracer) RecvRPC(*pubsub.RPC)                                  {}
func (*tracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t *tracer) DropRPC(*pubsub.RPC, peer.ID)                       { t.dropped.Add(1) }
func (*tracer) UndeliverableMessage(*pubsub.Message)                 {}

var vftTopics = regexp.MustCompile("^" + regexp.QuoteMeta(p2p.TopicPrefix))

// The score parameters are p2p/score.go's values, copied: p2p builds
// them only inside a started p2p.Network, which needs a real host.
func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{GossipThreshold: -100, PublishThreshold: -500, GraylistThreshold: -1000,
		AcceptPXThreshold: 10, OpportunisticGraftThreshold: 5}
}

func peerScoreParams() *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics: map[string]*pubsub.TopicScoreParams{}, TopicScoreCap: 50,
		AppSpecificScore: func(peer.ID) float64 { return 0 }, AppSpecificWeight: 1,
		IPColocationFactorWeight: -20, IPColocationFactorThreshold: 3,
		BehaviourPenaltyWeight: -10, BehaviourPenaltyThreshold: 5,
		BehaviourPenaltyDecay: pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:         pubsub.DefaultDecayInterval, DecayToZero: pubsub.DefaultDecayToZero,
		RetainScore: time.Hour,
	}
}

func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight: 1, TimeInMeshWeight: 1.0 / 3600, TimeInMeshQuantum: time.Second, TimeInMeshCap: 3600,
		FirstMessageDeliveriesWeight: 1, FirstMessageDeliveriesDecay: pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap: 20, InvalidMessageDeliveriesWeight: -10,
		InvalidMessageDeliveriesDecay: pubsub.ScoreParameterDecay(time.Hour), SkipAtomicValidation: true,
	}
}

// moduleBytes is the job's module: a WASM header, never run (the noop
// executor stands in for wazero), fetched by every worker.
var moduleBytes = append([]byte("\x00asm\x01\x00\x00\x00"), make([]byte, 4<<10)...)

var inputBytes = []byte("the job's one input file\n")

// run builds the network, runs the workload and tears it all down. It
// must be called inside a synctest bubble.
func run(cfg config, logf func(string, ...any)) (result, error) {
	var res result
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	rng := mrand.New(mrand.NewPCG(uint64(cfg.Seed), 1))
	log := slog.New(slog.DiscardHandler)

	if err := checkTransport(cfg.Transport); err != nil {
		return res, err
	}
	var nw hostNet = newQUICNet(cfg.Bandwidth)
	if cfg.Transport == transportMocknet {
		nw = newSimNet(cfg.Bandwidth)
	}
	// Each node's share of a link's one-way latency.
	half := make([]time.Duration, cfg.Nodes)
	span := cfg.MaxLatency - cfg.MinLatency
	for i := range half {
		half[i] = (cfg.MinLatency + time.Duration(rng.Int64N(int64(span)+1))) / 2
	}
	blocks := map[string][]byte{rawCID(moduleBytes): moduleBytes, rawCID(inputBytes): inputBytes}

	nodes := make([]*node, cfg.Nodes)
	defer func() {
		// Markets first (they wait for their goroutines), then the worker
		// runs, heartbeats, topics, GossipSub, hosts, the network.
		for _, n := range nodes {
			if n == nil {
				continue
			}
			if n.market != nil {
				n.market.Close()
			}
			if n.stopRun != nil {
				n.stopRun()
			}
			n.runs.Wait()
			if n.worker != nil {
				n.worker.Close()
			}
			if n.hb != nil {
				n.hb.Close()
			}
			for _, t := range n.topics {
				t.Close()
			}
			if n.psStop != nil {
				n.psStop()
			}
			n.host.Close()
		}
		nw.Close()
	}()
	workRoot, err := os.MkdirTemp("", "marketsim")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(workRoot)
	for i := range cfg.Nodes {
		key, err := identity.Generate()
		if err != nil {
			return res, err
		}
		h, err := nw.newHost(i, key, half[i])
		if err != nil {
			return res, fmt.Errorf("host %d: %w", i, err)
		}
		n := &node{key: key, host: h, trace: newTracer()}
		nodes[i] = n
		c := content{blocks: blocks, host: h}
		h.SetStreamHandler(fetchProtocol, c.serve)
	}
	nw.start()
	if cfg.ReachAll {
		for _, n := range nodes[1:] {
			n.host.Peerstore().AddAddrs(nodes[0].host.ID(), nodes[0].host.Addrs(), peerstore.PermanentAddrTTL)
		}
	}

	if nw.gossipBeforeDials() {
		for i, n := range nodes {
			if err := n.startGossipSub(); err != nil {
				return res, fmt.Errorf("gossipsub %d: %w", i, err)
			}
		}
	}

	// Bootstrap: each node dials Degree random others, all at once.
	var dials sync.WaitGroup
	var dialErrs atomic.Int64
	for i, n := range nodes {
		for _, j := range rng.Perm(cfg.Nodes)[:min(cfg.Degree+1, cfg.Nodes)] {
			if j == i {
				continue
			}
			other := nodes[j].host
			dials.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := n.host.Connect(ctx, peer.AddrInfo{ID: other.ID(), Addrs: other.Addrs()}); err != nil {
					dialErrs.Add(1)
				}
			})
		}
	}
	dials.Wait()
	res.Connect = time.Since(start)
	logf("%d hosts connected at %s virtual", cfg.Nodes, res.Connect.Round(time.Millisecond))
	if e := dialErrs.Load(); e > 0 {
		logf("%d dials failed", e)
	}

	// GossipSub, the book, the market, the worker and heartbeats on every
	// node, as node/node.go composes them.
	hbConfig := heartbeat.DefaultConfig()
	hbConfig.Interval = units.Duration(heartbeatInterval(cfg.Nodes))
	logf("heartbeat interval %s; miners' first heartbeats spread over %s", hbConfig.Interval.Std(), cfg.Stagger)
	// beatStart[i] is when miner i starts its heartbeat service, after
	// joining; 0 starts it at once, a later one from its own goroutine.
	beatStart := make([]time.Duration, cfg.Nodes)
	for i := 1; i < cfg.Nodes && cfg.Stagger > 0; i++ {
		beatStart[i] = time.Duration(rng.Int64N(int64(cfg.Stagger)))
	}
	var starters sync.WaitGroup
	stopStarting := make(chan struct{})
	defer func() { close(stopStarting); starters.Wait() }() // before the nodes close (defers run last first)
	joinedAt := time.Now()
	for i, n := range nodes {
		if n.ps == nil {
			if err := n.startGossipSub(); err != nil {
				return res, fmt.Errorf("gossipsub %d: %w", i, err)
			}
		}
		n.book = job.NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), nil)
		miner := i > 0
		log := log
		if i == 0 && os.Getenv("VFT_SIM_DEBUG") != "" {
			// The submitter's market and heartbeat at debug level, with
			// virtual timestamps.
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		hbCaps := func(context.Context) heartbeat.Heartbeat {
			hb := heartbeat.Heartbeat{Mode: "client"}
			if miner {
				hb = heartbeat.Heartbeat{Mode: "miner", Executors: []string{wasm.Name}, PriceFloor: 1,
					FreeSlots: uint32(max(0, cfg.MaxJobs-n.worker.Running())), CPUCores: 4,
					MemoryBytes: 8 << 30, FreeMemoryBytes: 8 << 30}
				// As a public miner's heartbeat does (node.heartbeatBody).
				hb.Reachability = heartbeat.ReachabilityPublic
				for _, a := range n.host.Addrs() {
					hb.Addrs = append(hb.Addrs, a.String())
				}
			}
			return hb
		}
		n.hbCaps = hbCaps
		n.hb, err = heartbeat.New(hbConfig, n.key, hbCaps, miner && !cfg.DirectBeats, log, heartbeat.Options{})
		if err != nil {
			return res, err
		}
		var onAssigned func(job.Record)
		if miner {
			exec := noop.New(noop.Config{Files: map[string][]byte{"result.txt": []byte("42\n")}})
			n.worker = job.NewWorker(n.key, n.host, n.book, content{blocks: blocks, host: n.host},
				job.WorkerOptions{Executors: job.Executors{wasm.Name: exec}, WorkDir: filepath.Join(workRoot, fmt.Sprint(i))}, log)
			n.worker.Start()
			n.work, n.stopRun = context.WithCancel(context.Background())
			onAssigned = func(rec job.Record) {
				n.worker.Reserve(rec.ID)
				n.runs.Go(func() { n.worker.Run(n.work, rec) })
			}
		}
		n.market = job.NewMarket(n.key, n.host, n.book, job.MarketOptions{
			Capacity: func(context.Context) job.Capacity {
				return job.Capacity{CPUCores: 4, MemoryBytes: 8 << 30, FreeSlots: uint32(max(0, cfg.MaxJobs-n.worker.Running()))}
			},
			Policy:     job.Policy{MinPrice: 1, Executors: []string{wasm.Name}},
			Works:      miner,
			Known:      func() []job.KnownNode { return known(n.hb) },
			OnAssigned: onAssigned,
			OnCancelled: func(id string) {
				if n.worker != nil {
					n.worker.Cancel(id)
				}
			},
		}, log)
		hbTopic, err := n.join(heartbeat.TopicName, n.hb.Validate)
		if err != nil {
			return res, err
		}
		if beatStart[i] == 0 {
			n.hb.Start(beatGossip{hbTopic})
		} else {
			hb, at := n.hb, joinedAt.Add(beatStart[i])
			starters.Go(func() {
				select {
				case <-time.After(time.Until(at)):
					hb.Start(beatGossip{hbTopic})
				case <-stopStarting:
				}
			})
		}
		offers, err := n.join(job.OffersTopic, n.market.ValidateOffer)
		if err != nil {
			return res, err
		}
		verdicts, err := n.join(job.VerdictsTopic, n.market.ValidateVerdict)
		if err != nil {
			return res, err
		}
		n.market.Start(marketGossip{offers}, marketGossip{verdicts})
	}

	// Mesh formation: every node has at least Dlo peers in its offers
	// mesh (or all its connections, if it has fewer).
	for {
		formed := true
		for _, n := range nodes {
			want := min(pubsub.GossipSubDlo, len(n.host.Network().Peers()))
			if n.trace.meshSize(job.OffersTopic) < want {
				formed = false
				break
			}
		}
		if formed {
			break
		}
		if time.Since(joinedAt) > 2*time.Minute {
			return res, fmt.Errorf("offers mesh not formed after %s", time.Since(joinedAt))
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.MeshFormed = time.Since(joinedAt)
	logf("offers mesh formed %s after joining", res.MeshFormed.Round(time.Millisecond))
	meshAt := time.Now()
	var sentAtMesh int64
	for _, n := range nodes {
		sentAtMesh += n.trace.sent.Load()
	}

	// The submitter knows every miner once each has beaten once (they do
	// at once, when their topic has peers), so its bid window can close
	// as soon as every miner that could run a job has bid. At 1,000 nodes
	// the table did not fill within 2 virtual minutes (some first
	// heartbeats were lost, all sent in one instant; the next come an
	// interval later), and each virtual second there costs about 10 s of
	// CPU: the jobs start 10 s after the last miner's first heartbeat was
	// due with what the table holds, as a node's would.
	sub := nodes[0]
	if cfg.DirectBeats {
		if err := injectBeats(sub, nodes[1:], hbConfig.Interval.Std(), cfg.Nodes); err != nil {
			return res, err
		}
	}
	for i := 1; len(sub.hb.Nodes()) < cfg.Nodes-1 && time.Since(joinedAt) < cfg.Stagger+10*time.Second; i++ {
		time.Sleep(100 * time.Millisecond)
		if i%10 == 0 && cfg.Nodes >= 500 {
			// Where a large run spends its time, should it stall here.
			var dropped int64
			for _, n := range nodes {
				dropped += n.trace.dropped.Load()
			}
			logf("%s after joining: submitter's table %d of %d miners, %d RPCs dropped; %s CPU so far",
				time.Since(joinedAt).Round(100*time.Millisecond), len(sub.hb.Nodes()), cfg.Nodes-1, dropped, cpuSince(ru0).Round(time.Second))
		}
	}
	res.Known = len(sub.hb.Nodes())
	res.Connected = len(sub.host.Network().Peers())
	logf("submitter's heartbeat table: %d of %d miners, %s after joining", res.Known, cfg.Nodes-1, time.Since(joinedAt).Round(time.Millisecond))
	res.Settled = time.Since(joinedAt)

	// Timestamps from the submitter's book: a record is created when it
	// is offered (inside Submit, at the virtual instant of the call).
	var mu sync.Mutex
	type watch struct {
		submitted, assigned, done time.Time
		workers                   []peer.ID
		state                     job.State
		reason                    string
		end                       chan struct{}
	}
	watches := map[string]*watch{}
	sub.book.Watch(func(r job.Record) {
		if r.Role != job.RoleSubmitter {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		w, ok := watches[r.ID]
		if !ok {
			w = &watch{submitted: time.Now(), end: make(chan struct{})}
			watches[r.ID] = w
		}
		if w.assigned.IsZero() && len(r.Workers) >= cfg.K {
			w.assigned = time.Now()
		}
		if r.State.Terminal() && w.done.IsZero() {
			w.done, w.state, w.reason, w.workers = time.Now(), r.State, r.Reason, slices.Clone(r.Workers)
			close(w.end)
		}
	})
	submit := func() (string, error) {
		nonce := make([]byte, 16)
		rand.Read(nonce)
		spec := job.Spec{
			Executor: wasm.Name, Module: rawCID(moduleBytes),
			Inputs: []job.Input{{CID: rawCID(inputBytes), Path: "data"}},
			Args:   []string{}, Env: map[string]string{},
			Needs:  job.Resources{MemoryBytes: 64 << 20, TimeoutMS: 60_000},
			Verify: job.VerificationPolicy{Mode: job.VerifyExact, Workers: uint32(cfg.K), Quorum: uint32(cfg.K/2 + 1)},
			Reward: 10, Deadline: time.Now().Add(time.Hour).UnixMilli(), Nonce: nonce,
		}
		o, err := sub.market.Submit(context.Background(), spec)
		if err != nil {
			return "", err
		}
		return o.ID.String(), nil
	}
	await := func(id string, concurrent bool) {
		mu.Lock()
		w := watches[id]
		mu.Unlock()
		select {
		case <-w.end:
		case <-time.After(10 * time.Minute):
			res.Failures = append(res.Failures, fmt.Sprintf("job %s: not ended 10 min after its offer", id))
			return
		}
		mu.Lock()
		defer mu.Unlock()
		distinct := slices.Clone(w.workers)
		slices.Sort(distinct)
		distinct = slices.Compact(distinct)
		if w.state != job.StateDone || len(distinct) != cfg.K || len(w.workers) != cfg.K {
			res.Failures = append(res.Failures, fmt.Sprintf("job %s ended %s with workers %v (%s)", id, w.state, w.workers, w.reason))
		}
		res.Jobs = append(res.Jobs, jobTimes{ID: id, Concurrent: concurrent,
			Assigned: w.assigned.Sub(w.submitted), Done: w.done.Sub(w.submitted), Workers: w.workers})
	}
	for range cfg.Sequential {
		id, err := submit()
		if err != nil {
			return res, fmt.Errorf("submit: %w", err)
		}
		await(id, false)
		if len(res.Jobs)%10 == 0 || cfg.Nodes >= 500 {
			logf("%d of %d jobs in a row done", len(res.Jobs), cfg.Sequential)
		}
		time.Sleep(100 * time.Millisecond) // a user's pause between jobs
	}
	var ids []string
	for range cfg.Concurrent {
		id, err := submit()
		if err != nil {
			return res, fmt.Errorf("submit: %w", err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		await(id, true)
	}
	res.MeasuredSpan = time.Since(meshAt)
	res.TopicBytes = map[string]int64{}
	for _, n := range nodes {
		res.BytesSent += n.trace.sent.Load()
		n.trace.mu.Lock()
		for t, b := range n.trace.byTopic {
			res.TopicBytes[t] += b
		}
		n.trace.mu.Unlock()
	}
	res.SpanBytesSent = res.BytesSent - sentAtMesh
	for _, n := range nodes {
		res.DroppedRPCs += n.trace.dropped.Load()
	}
	res.Virtual = time.Since(start)
	res.CPU = cpuSince(ru0)
	return res, nil
}

// startGossipSub starts GossipSub on n as p2p does: strict signing,
// p2p's score parameters, VFT topics only.
func (n *node) startGossipSub() error {
	ctx, cancel := context.WithCancel(context.Background())
	n.psStop = cancel
	var err error
	n.ps, err = pubsub.NewGossipSub(ctx, n.host,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithPeerScore(peerScoreParams(), peerScoreThresholds()),
		pubsub.WithMaxMessageSize(1<<20),
		pubsub.WithSubscriptionFilter(pubsub.NewRegexpSubscriptionFilter(vftTopics)),
		pubsub.WithRawTracer(n.trace),
	)
	return err
}

// cpuSince is the process's user+system CPU time since ru0.
func cpuSince(ru0 syscall.Rusage) time.Duration {
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	return time.Duration(syscall.TimevalToNsec(ru1.Utime) - syscall.TimevalToNsec(ru0.Utime) +
		syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Stime))
}

// injectBeats hands each miner's heartbeat, as its service would sign
// and announce it (interval, the network's size), to the submitter's
// validator: the table fills as if one heartbeat round had reached the
// submitter, with none of the round's gossip (config.DirectBeats).
func injectBeats(sub *node, miners []*node, interval time.Duration, size int) error {
	ctx := context.Background()
	for _, m := range miners {
		hb := m.hbCaps(ctx)
		hb.IntervalSec = uint32(interval / time.Second)
		hb.NetworkSize = uint32(size)
		data, err := wire.Seal(m.key, heartbeat.Kind, time.Now(), hb)
		if err != nil {
			return fmt.Errorf("seal heartbeat of %s: %w", m.host.ID(), err)
		}
		if err := sub.hb.Validate(ctx, m.host.ID(), data); err != nil {
			return fmt.Errorf("submitter rejected the heartbeat of %s: %w", m.host.ID(), err)
		}
	}
	return nil
}

// known turns the heartbeat table into the market's view of the miners,
// as node/market.go does.
func known(hb *heartbeat.Service) []job.KnownNode {
	var out []job.KnownNode
	for _, e := range hb.Nodes() {
		b := e.Heartbeat
		out = append(out, job.KnownNode{Peer: e.Peer, Addrs: b.Addrs,
			Capacity: job.Capacity{CPUCores: b.CPUCores, MemoryBytes: b.FreeMemoryBytes, FreeSlots: b.FreeSlots},
			Policy:   job.Policy{MinPrice: b.PriceFloor, Mint: b.Mint, Executors: b.Executors}})
	}
	return out
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
