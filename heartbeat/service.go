package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/wire"
)

// Config is the `[heartbeat]` section of the node's config.
type Config struct {
	// Interval between this node's heartbeats (miner and edge modes).
	Interval units.Duration `toml:"interval"`
	// MaxNodes caps the live table (0: the default). When it is full, a newcomer takes the
	// place of the stalest entry that is itself new; nodes that have beaten
	// for a while (EstablishAfter) are never pushed out by newcomers.
	MaxNodes int `toml:"max_nodes"`
}

// DefaultConfig beats every 30 seconds and keeps up to 10 000 nodes (a
// few MiB).
func DefaultConfig() Config {
	return Config{Interval: units.Duration(30 * time.Second), MaxNodes: 10_000}
}

// Validate keeps the interval within what other nodes accept.
func (c Config) Validate() error {
	if d := c.Interval.Std(); d < MinInterval || d > MaxInterval {
		return fmt.Errorf("heartbeat.interval %s is outside %s..%s", c.Interval, MinInterval, MaxInterval)
	}
	if c.MaxNodes != 0 && (c.MaxNodes < 16 || c.MaxNodes > 1_000_000) {
		return fmt.Errorf("heartbeat.max_nodes %d is outside 16..1000000: set how many nodes the live table may hold", c.MaxNodes)
	}
	return nil
}

// EstablishAfter is how long a node must have been beating, without
// dropping out of the table, before its word counts: before its report
// of the network's size is used, and before a newcomer can no longer push
// it out of a full table. A crowd of fresh identities therefore neither
// steers the size estimate nor evicts the nodes we have known for long.
const EstablishAfter = time.Minute

// beatBurst is how many heartbeats of one node may arrive back to back
// (delayed and then delivered together); beyond it a node gets one per
// half of its announced interval.
const beatBurst = 3

// Topic is the part of a joined GossipSub topic the service uses.
type Topic interface {
	Publish(ctx context.Context, data []byte) error
	Next(ctx context.Context) (p2p.Message, error)
	Peers() []peer.ID
}

// Capabilities fills what the node offers now (hardware, price, slots);
// the service adds mode-independent fields (interval, uptime).
type Capabilities func(ctx context.Context) Heartbeat

// Entry is one node in the live table.
type Entry struct {
	Peer       peer.ID   `json:"peer_id"`
	Self       bool      `json:"self"`
	SignedAt   time.Time `json:"signed_at"`
	ReceivedAt time.Time `json:"received_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Heartbeat  Heartbeat `json:"heartbeat"`

	// firstSeen is when the node entered the table (it left it, if ever,
	// before); beats counts its accepted heartbeats since; bucket limits
	// how fast they may arrive.
	firstSeen time.Time
	beats     int
	bucket    p2p.Bucket
}

// established reports whether e's word counts (EstablishAfter).
func (e *Entry) established(now time.Time) bool {
	return !e.Self && e.beats >= 2 && now.Sub(e.firstSeen) >= EstablishAfter
}

// Options change a Service for tests and benchmarks; the zero value is
// what a node runs.
type Options struct {
	// Now replaces time.Now.
	Now func() time.Time
	// NetworkBeatRate replaces NetworkBeatRate, so that a benchmark of a
	// few dozen nodes can show the scaling that starts at hundreds.
	NetworkBeatRate float64
}

// Service publishes this node's heartbeats and keeps the table.
type Service struct {
	cfg     Config
	key     *identity.Key
	caps    Capabilities
	publish bool
	log     *slog.Logger
	now     func() time.Time
	rate    float64 // NetworkBeatRate but for benchmarks
	started time.Time

	mu    sync.Mutex
	table map[peer.ID]Entry
	// size caches networkSize for a second, and counted the live nodes
	// it counted itself: validating every heartbeat must not sort the
	// table every time.
	size    int
	counted int
	sizeAt  time.Time
	// announced is the interval of our last heartbeat (0 before the first).
	announced time.Duration

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New builds the service. publish is true for miners and edge devices.
func New(cfg Config, key *identity.Key, caps Capabilities, publish bool, log *slog.Logger, opts Options) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxNodes == 0 {
		cfg.MaxNodes = DefaultConfig().MaxNodes
	}
	s := &Service{
		cfg: cfg, key: key, caps: caps, publish: publish,
		log: log.With("component", "heartbeat"), now: time.Now, rate: NetworkBeatRate,
		table: map[peer.ID]Entry{},
	}
	if opts.Now != nil {
		s.now = opts.Now
	}
	if opts.NetworkBeatRate != 0 {
		s.rate = opts.NetworkBeatRate
	}
	return s, nil
}

// Validate is the topic's GossipSub validator: it runs on every heartbeat
// before delivery or relaying, and records the accepted ones. Forged,
// stale, future, oversize, malformed and too-frequent heartbeats are
// rejected (and count against the relaying peer); an older or repeated
// heartbeat from a known node is ignored.
func (s *Service) Validate(_ context.Context, from peer.ID, data []byte) error {
	now := s.now()
	msg, err := wire.Open(data, Kind, wire.Limits{MaxSize: MaxSize, MaxAge: MaxAge, MaxFuture: MaxFuture}, now)
	if err != nil {
		return err
	}
	if msg.Signer != from {
		return fmt.Errorf("heartbeat signed by %s but sent by %s", msg.Signer, from)
	}
	var hb Heartbeat
	if err := wire.Unmarshal(msg.Body, &hb); err != nil {
		return err
	}
	interval := time.Duration(hb.IntervalSec) * time.Second
	if interval < MinInterval || interval > MaxInterval {
		return fmt.Errorf("heartbeat interval %s outside %s..%s", interval, MinInterval, MaxInterval)
	}
	if err := hb.CheckOptional(); err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// Nodes' estimates of the network's size differ a little; a quarter of
	// ours leaves room for that and still stops a node that beats as if
	// the network were small, multiplying everyone's traffic. The estimate
	// here is only the nodes we counted ourselves, never what others
	// report: lying reports must not make us reject honest nodes.
	s.networkSize(now)
	if n := s.counted; interval < ScaledInterval(MinInterval, n, s.rate)/4 {
		return fmt.Errorf("heartbeat interval %s from %s is too short for a network of about %d nodes (at least %s)",
			interval, from, n, ScaledInterval(MinInterval, n, s.rate)/4)
	}
	entry := Entry{
		Peer: from, SignedAt: msg.Time, ReceivedAt: now,
		ExpiresAt: now.Add(MissedBeats * interval), Heartbeat: hb,
		firstSeen: now, beats: 1,
	}
	prev, known := s.table[from]
	if known && !msg.Time.After(prev.SignedAt) {
		return fmt.Errorf("%w: heartbeat from %s not newer than the one we have", p2p.ErrIgnore, from)
	}
	if known && !now.After(prev.ExpiresAt) {
		if gap := msg.Time.Sub(prev.SignedAt); gap < interval/2 {
			return fmt.Errorf("heartbeats from %s %s apart, announced interval %s: too frequent", from, gap, interval)
		}
		// Signing times can be backdated up to MaxAge, so they alone
		// would let a node send a burst; arrival times cannot be faked.
		if !prev.bucket.Allow(p2p.Rate{Every: interval / 2, Burst: beatBurst}, now) {
			return fmt.Errorf("heartbeats from %s arrive faster than one per %s (half its announced interval)", from, interval/2)
		}
		entry.firstSeen, entry.beats, entry.bucket = prev.firstSeen, prev.beats+1, prev.bucket
	} else {
		entry.bucket.Allow(p2p.Rate{Every: interval / 2, Burst: beatBurst}, now)
		if !s.makeRoom(from, now) {
			// Relayed, so the network still hears the newcomer; not
			// recorded, so it costs us nothing.
			s.log.Debug("heartbeat table full, newcomer not recorded", "peer", from, "max_nodes", s.cfg.MaxNodes)
			return nil
		}
	}
	s.table[from] = entry
	return nil
}

// makeRoom reports whether from may have an entry in the table, evicting
// if the table is full: first the expired entries, then the stalest entry
// that is not established. Established nodes are never evicted for a
// newcomer. s.mu is held.
func (s *Service) makeRoom(from peer.ID, now time.Time) bool {
	if _, ok := s.table[from]; ok || len(s.table) < s.cfg.MaxNodes {
		return true
	}
	var stalest peer.ID
	var at time.Time
	for id, e := range s.table {
		if now.After(e.ExpiresAt) {
			delete(s.table, id)
			continue
		}
		if e.Self || e.established(now) {
			continue
		}
		if stalest == "" || e.ReceivedAt.Before(at) {
			stalest, at = id, e.ReceivedAt
		}
	}
	if len(s.table) < s.cfg.MaxNodes {
		return true
	}
	if stalest == "" {
		return false
	}
	delete(s.table, stalest)
	s.sizeAt = time.Time{}
	return true
}

// NetworkSize is this node's estimate of how many nodes beat on the topic.
func (s *Service) NetworkSize() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.networkSize(s.now())
}

// Start publishes (if this node publishes) and drains the subscription.
func (s *Service) Start(topic Topic) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.started = s.now()
	s.wg.Add(1)
	go s.drain(ctx, topic)
	if s.publish {
		s.wg.Add(1)
		go s.publishLoop(ctx, topic)
	}
}

// Close stops the service; safe to call twice.
func (s *Service) Close() error {
	s.once.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
	})
	return nil
}

// drain consumes delivered heartbeats: the validator already recorded them.
func (s *Service) drain(ctx context.Context, topic Topic) {
	defer s.wg.Done()
	for {
		if _, err := topic.Next(ctx); err != nil {
			return
		}
	}
}

func (s *Service) publishLoop(ctx context.Context, topic Topic) {
	defer s.wg.Done()
	s.awaitTopicPeers(ctx, topic)
	for {
		interval, err := s.beat(ctx, topic)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("heartbeat not published", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// networkSize estimates how many nodes beat on the topic: the live
// entries of our table, or what the others report if that is more (right
// after joining, our table is still filling up). It also sets s.counted,
// the part we counted ourselves. s.mu is held.
//
// Identities are free, so a crowd of them must not steer the estimate
// (a large one stretches every honest node's interval):
//   - only established nodes count, in both parts: a fresh identity counts
//     only after beating for EstablishAfter, at its announced interval;
//   - of their reports we take the lower quartile, not the median, so
//     liars must outnumber the honest established nodes three to one;
//   - the table itself is capped (heartbeat.max_nodes);
//   - the estimate lengthens our own interval at most twofold per beat
//     (beat), and never makes us reject others (Validate uses s.counted).
func (s *Service) networkSize(now time.Time) int {
	if now.Sub(s.sizeAt) < time.Second && now.After(s.sizeAt) {
		return s.size
	}
	live := 0
	var reported []int
	for _, e := range s.table {
		if now.After(e.ExpiresAt) || !(e.Self || e.established(now)) {
			continue
		}
		live++
		if !e.Self {
			reported = append(reported, int(e.Heartbeat.NetworkSize))
		}
	}
	s.size, s.counted, s.sizeAt = live, live, now
	if len(reported) > 0 {
		sort.Ints(reported)
		s.size = max(live, reported[len(reported)/4])
	}
	return s.size
}

// awaitTopicPeers delays the first heartbeat until someone will hear it (or
// one interval passes): right after start the topic mesh is still forming,
// and a heartbeat sent into it would be lost until the next interval.
func (s *Service) awaitTopicPeers(ctx context.Context, topic Topic) {
	deadline := time.After(s.cfg.Interval.Std())
	for len(topic.Peers()) == 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// beat signs and publishes one heartbeat, records it as our own entry and
// returns the interval it announced: the wait until the next one.
func (s *Service) beat(ctx context.Context, topic Topic) (time.Duration, error) {
	hb := s.caps(ctx)
	now := s.now()
	s.mu.Lock()
	size := s.networkSize(now)
	interval := ScaledInterval(s.cfg.Interval.Std(), size, s.rate)
	if s.announced > 0 {
		// Others drop our entry 3 intervals after our last heartbeat, as we
		// announced it; growing more than 2× at once would let it expire
		// before the next one arrives (a node that joins a large network
		// starts at the configured interval and learns the size after).
		interval = min(interval, 2*s.announced)
	}
	s.announced = interval
	s.mu.Unlock()
	hb.IntervalSec = uint32(interval / time.Second)
	hb.NetworkSize = uint32(size)
	hb.UptimeSec = uint64(now.Sub(s.started) / time.Second)
	data, err := wire.Seal(s.key, Kind, now, hb)
	if err != nil {
		return interval, err
	}
	if len(data) > MaxSize {
		return interval, fmt.Errorf("heartbeat is %d bytes, over the %d limit", len(data), MaxSize)
	}
	s.mu.Lock()
	s.table[s.key.PeerID()] = Entry{
		Peer: s.key.PeerID(), Self: true, firstSeen: now, SignedAt: time.UnixMilli(now.UnixMilli()), ReceivedAt: now,
		ExpiresAt: now.Add(MissedBeats * interval), Heartbeat: hb,
	}
	s.mu.Unlock()
	return interval, topic.Publish(ctx, data)
}

// Nodes returns the live table, newest first; expired entries are removed.
func (s *Service) Nodes() []Entry {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.table))
	for id, e := range s.table {
		if now.After(e.ExpiresAt) {
			delete(s.table, id)
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Self != out[j].Self {
			return out[i].Self
		}
		return out[i].Peer < out[j].Peer
	})
	return out
}

// ClockSkew estimates how far peers' clocks are from ours: the median of
// (received − signed) over live entries from others. It includes network
// latency, which on a healthy network is milliseconds.
func (s *Service) ClockSkew() (median time.Duration, samples int) {
	var d []time.Duration
	for _, e := range s.Nodes() {
		if !e.Self {
			d = append(d, e.ReceivedAt.Sub(e.SignedAt))
		}
	}
	if len(d) == 0 {
		return 0, 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], len(d)
}
