package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TopicPrefix is the prefix of every VFT GossipSub topic; peers cannot make
// us track topics outside it.
const TopicPrefix = "/vft/"

var topicPattern = regexp.MustCompile("^" + regexp.QuoteMeta(TopicPrefix))

// ErrIgnore, returned by a Validator, drops a message without penalising
// the peer that relayed it (a duplicate or a heartbeat sent a bit too early
// is not an attack).
var ErrIgnore = errors.New("message ignored")

// Validator checks a message before anything else sees it and before it is
// relayed. nil accepts it; ErrIgnore drops it quietly; any other error
// rejects it and counts against the peer's score. from is the message's
// author: GossipSub has already checked its signature over the payload.
type Validator func(ctx context.Context, from peer.ID, data []byte) error

// Message is a validated message delivered to a subscriber.
type Message struct {
	From peer.ID // author, checked by GossipSub's strict signing
	Data []byte
}

// Topic is one joined GossipSub topic with its subscription.
type Topic struct {
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	self  peer.ID

	rate   Rate
	now    func() time.Time
	mu     sync.Mutex
	bucket Bucket // our own messages, paced as the others limit us
}

// Join subscribes to a topic under TopicPrefix, registering validate as its
// validator. Each topic may be joined once.
func (n *Network) Join(name string, validate Validator) (*Topic, error) {
	if n.pubsub == nil {
		return nil, fmt.Errorf("join %s: network not started", name)
	}
	if len(name) <= len(TopicPrefix) || name[:len(TopicPrefix)] != TopicPrefix {
		return nil, fmt.Errorf("join %s: topic names must start with %s", name, TopicPrefix)
	}
	if validate == nil {
		return nil, fmt.Errorf("join %s: a validator is required: every message must be checked before use", name)
	}
	log := n.log.With("topic", name)
	authorRate := PerMinute(n.cfg.GossipAuthorPerMinute, n.cfg.GossipAuthorBurst)
	authors := NewLimiter(authorRate, maxLimitedPeers)
	relays := NewLimiter(PerMinute(n.cfg.GossipPeerPerMinute, n.cfg.GossipPeerBurst), maxLimitedPeers)
	err := n.pubsub.RegisterTopicValidator(name, func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if from == n.host.ID() && msg.GetFrom() == n.host.ID() {
			return pubsub.ValidationAccept // our own message: validated before publishing
		}
		author := msg.GetFrom()
		// Rate limits come before the validator, whose signature checks
		// are what a flood would cost us. An author over its bucket is
		// penalised only when it handed us the message itself: a relay
		// that forwarded it may have seen it before the bucket ran dry.
		// These log at debug: a flood must not flood the log as well.
		now := n.opts.Now()
		if !authors.Allow(author, now) {
			if author == from {
				log.Debug("message rejected: author over its rate", "author", author, "rate", authorRate)
				return pubsub.ValidationReject
			}
			log.Debug("message ignored: author over its rate", "author", author, "via", from)
			return pubsub.ValidationIgnore
		}
		if !relays.Allow(from, now) {
			log.Debug("message ignored: relay over its rate", "author", author, "via", from)
			return pubsub.ValidationIgnore
		}
		switch err := validate(ctx, author, msg.GetData()); {
		case err == nil:
			return pubsub.ValidationAccept
		case errors.Is(err, ErrIgnore):
			log.Debug("message ignored", "author", author, "via", from, "reason", err)
			return pubsub.ValidationIgnore
		default:
			log.Info("message rejected", "author", author, "via", from, "reason", err)
			return pubsub.ValidationReject
		}
	})
	if err != nil {
		return nil, fmt.Errorf("join %s: register validator: %w", name, err)
	}
	t, err := n.pubsub.Join(name)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", name, err)
	}
	if err := t.SetScoreParams(topicScoreParams()); err != nil {
		t.Close()
		return nil, fmt.Errorf("join %s: score params: %w", name, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("join %s: subscribe: %w", name, err)
	}
	return &Topic{topic: t, sub: sub, self: n.host.ID(), rate: authorRate, now: n.opts.Now}, nil
}

// maxLimitedPeers bounds each topic's rate-limit tables.
const maxLimitedPeers = 8192

// Publish sends data to the topic's mesh. It first waits for a token of
// the same bucket the other nodes keep for us: an honest node that
// publishes a burst is slowed down here rather than penalised there.
func (t *Topic) Publish(ctx context.Context, data []byte) error {
	for {
		t.mu.Lock()
		wait := t.bucket.Wait(t.rate, t.now())
		t.mu.Unlock()
		if wait == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish on %s: %w", t.topic.String(), ctx.Err())
		case <-time.After(wait):
		}
	}
	if err := t.topic.Publish(ctx, data); err != nil {
		return fmt.Errorf("publish on %s: %w", t.topic.String(), err)
	}
	return nil
}

// Next blocks until a validated message from another node arrives.
func (t *Topic) Next(ctx context.Context) (Message, error) {
	for {
		msg, err := t.sub.Next(ctx)
		if err != nil {
			return Message{}, err
		}
		if msg.GetFrom() == t.self {
			continue
		}
		return Message{From: msg.GetFrom(), Data: msg.GetData()}, nil
	}
}

// Peers lists the peers we know to be subscribed to the topic.
func (t *Topic) Peers() []peer.ID { return t.topic.ListPeers() }

// Close leaves the topic.
func (t *Topic) Close() error {
	t.sub.Cancel()
	return t.topic.Close()
}

func newGossipSub(ctx context.Context, n *Network, log *slog.Logger) (*pubsub.PubSub, error) {
	opts := []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithPeerScore(peerScoreParams(n.opts.AppScore), peerScoreThresholds()),
		pubsub.WithPeerScoreInspect(n.inspectScores, n.opts.ScoreInspectPeriod),
		// Only DHT servers hand out peers on PRUNE: light nodes have few.
		pubsub.WithPeerExchange(n.opts.DHTServer),
		pubsub.WithMaxMessageSize(int(n.cfg.MaxMessageSize)),
		// Peers cannot make us track topics outside our prefix.
		pubsub.WithSubscriptionFilter(pubsub.NewRegexpSubscriptionFilter(topicPattern)),
		// Find peers of a topic we join through the rendezvous DHT.
		pubsub.WithDiscovery(n.discovery),
	}
	ps, err := pubsub.NewGossipSub(ctx, n.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("start gossipsub: %w", err)
	}
	log.Debug("gossipsub started")
	return ps, nil
}
