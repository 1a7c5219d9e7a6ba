package job

import (
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/wire"
)

// Wire kinds of the market's messages.
const (
	KindOffer  = "job-offer/1"
	KindCancel = "job-cancel/1"
	KindBid    = "job-bid/1"
	KindInvite = "job-invite/1"
	KindAssign = "job-assign/1"
	KindAck    = "job-ack/1"
)

// OffersTopic is the GossipSub topic job offers travel on.
const OffersTopic = "/vft/1/jobs"

// Limits for offers on the wire.
const (
	MaxOfferSize = 64 << 10
	// An offer is re-gossiped unchanged while it waits for workers (a new
	// signature would make it a new job), so its age is bounded by the
	// spec's deadline rather than by a short freshness window.
	MaxOfferAge    = MaxDeadline + time.Hour
	MaxOfferFuture = 30 * time.Second
)

var cancelLimits = wire.Limits{MaxSize: 4 << 10, MaxAge: 2 * time.Minute, MaxFuture: MaxOfferFuture}

var offerLimits = wire.Limits{MaxSize: MaxOfferSize, MaxAge: MaxOfferAge, MaxFuture: MaxOfferFuture}

// ID is a job's identity: the CID (dag-cbor, sha2-256) of its signed offer's
// bytes. Anyone holding the offer can recompute it, and no two offers share
// one.
type ID = cid.Cid

// Offer is a signed job offer as received: the spec, who signed it (the
// submitter, who pays) and the exact bytes the ID is computed from.
type Offer struct {
	ID        ID
	Submitter peer.ID
	SignedAt  time.Time
	Spec      Spec
	Raw       []byte
}

// NewOffer signs a spec as this node's offer.
func NewOffer(key *identity.Key, spec Spec, now time.Time) (Offer, error) {
	if err := spec.Validate(now); err != nil {
		return Offer{}, fmt.Errorf("job spec: %w", err)
	}
	raw, err := wire.Seal(key, KindOffer, now, spec)
	if err != nil {
		return Offer{}, err
	}
	if len(raw) > MaxOfferSize {
		return Offer{}, fmt.Errorf("job offer is %d bytes, over the %d limit: use fewer inputs, args or env", len(raw), MaxOfferSize)
	}
	return OpenOffer(raw, now)
}

// OpenOffer checks a received offer (size, form, signature, freshness, and
// the spec's own rules) and computes its ID.
func OpenOffer(raw []byte, now time.Time) (Offer, error) {
	return openOffer(raw, now, wire.Open)
}

// openOffer is OpenOffer, checking the signature with open.
func openOffer(raw []byte, now time.Time, open openFunc) (Offer, error) {
	msg, err := open(raw, KindOffer, offerLimits, now)
	if err != nil {
		return Offer{}, err
	}
	var spec Spec
	if err := wire.Unmarshal(msg.Body, &spec); err != nil {
		return Offer{}, err
	}
	if err := spec.Validate(now); err != nil {
		return Offer{}, fmt.Errorf("job spec from %s: %w", msg.Signer, err)
	}
	id, err := offerID(raw)
	if err != nil {
		return Offer{}, err
	}
	return Offer{ID: id, Submitter: msg.Signer, SignedAt: msg.Time, Spec: spec, Raw: raw}, nil
}

// RecordedOffer reads an offer this node recorded itself, checking its
// signature but not its freshness or deadline: work accepted before the
// deadline is still owed after it.
func RecordedOffer(raw []byte) (Offer, error) {
	const anyTime = 100 * 365 * 24 * time.Hour // any age, either way: the record is this node's own
	msg, err := wire.Open(raw, KindOffer, wire.Limits{MaxSize: MaxOfferSize, MaxAge: anyTime, MaxFuture: anyTime}, time.Now())
	if err != nil {
		return Offer{}, err
	}
	var spec Spec
	if err := wire.Unmarshal(msg.Body, &spec); err != nil {
		return Offer{}, err
	}
	id, err := offerID(raw)
	if err != nil {
		return Offer{}, err
	}
	return Offer{ID: id, Submitter: msg.Signer, SignedAt: msg.Time, Spec: spec, Raw: raw}, nil
}

func offerID(raw []byte) (cid.Cid, error) {
	return cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum(raw)
}

// Cancel withdraws an offer; only its submitter's signature counts.
type Cancel struct {
	Job    string `cbor:"job"`
	Reason string `cbor:"reason"`
}

// NewCancel signs a cancel of one of this node's offers.
func NewCancel(key *identity.Key, job ID, reason string, now time.Time) ([]byte, error) {
	return wire.Seal(key, KindCancel, now, Cancel{Job: job.String(), Reason: reason})
}

// OpenCancel checks a cancel against the offer it names: it must be signed
// by the offer's submitter.
func OpenCancel(raw []byte, offer Offer, now time.Time) (Cancel, error) {
	msg, err := wire.Open(raw, KindCancel, cancelLimits, now)
	if err != nil {
		return Cancel{}, err
	}
	var c Cancel
	if err := wire.Unmarshal(msg.Body, &c); err != nil {
		return Cancel{}, err
	}
	if c.Job != offer.ID.String() {
		return Cancel{}, fmt.Errorf("cancel names job %s, not %s", c.Job, offer.ID)
	}
	if msg.Signer != offer.Submitter {
		return Cancel{}, fmt.Errorf("cancel of %s signed by %s, not by its submitter %s", offer.ID, msg.Signer, offer.Submitter)
	}
	return c, nil
}

// BidMsg is a worker's bid, sent to the submitter on ProtocolBid.
type BidMsg struct {
	Job       string `cbor:"job"`
	Price     uint64 `cbor:"price"`
	FreeSlots uint32 `cbor:"free_slots"`
}

// InviteMsg asks a miner drawn for a job's pool to bid on it at once
// (ProtocolInvite); it carries the signed offer, so the miner need not
// have seen its gossip. The miner answers with its bid, or with an ack
// saying why it does not bid.
type InviteMsg struct {
	Offer []byte `cbor:"offer"`
}

// AssignMsg tells a worker it was chosen; it carries the signed offer so
// the worker needs nothing it may have dropped.
type AssignMsg struct {
	Job     string   `cbor:"job"`
	Offer   []byte   `cbor:"offer"`
	Workers []string `cbor:"workers"`
}

// AckMsg answers a bid or an assignment.
type AckMsg struct {
	Job    string `cbor:"job"`
	OK     bool   `cbor:"ok"`
	Reason string `cbor:"reason"`
}

// directLimits apply to bids, assignments and acks: they arrive straight
// from the peer within seconds of being signed.
var directLimits = wire.Limits{MaxSize: MaxOfferSize + 4<<10, MaxAge: time.Minute, MaxFuture: MaxOfferFuture}

// openDirect checks a direct message and that it was signed by the peer at
// the other end of the stream, then decodes its body into v.
func openDirect(raw []byte, kind string, from peer.ID, now time.Time, v any) error {
	msg, err := wire.Open(raw, kind, directLimits, now)
	if err != nil {
		return err
	}
	if msg.Signer != from {
		return fmt.Errorf("%s signed by %s but sent by %s", kind, msg.Signer, from)
	}
	return wire.Unmarshal(msg.Body, v)
}
