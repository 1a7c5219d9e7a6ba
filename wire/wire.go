// Package wire is how VFT nodes sign and check every network message:
// deterministic CBOR (DAG-CBOR compatible, so a message has exactly one byte
// form and one CID), a versioned kind, the signer's peer ID, a timestamp for
// freshness, and an ed25519 signature over all of it.
package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
)

// Errors a receiver can tell apart (all wrapped with details).
var (
	ErrTooLarge     = errors.New("message too large")
	ErrMalformed    = errors.New("malformed message")
	ErrWrongKind    = errors.New("unexpected message kind")
	ErrBadSignature = errors.New("bad signature")
	ErrStale        = errors.New("message too old")
	ErrFuture       = errors.New("message from the future")
)

// Envelope is a signed message. Body is the kind's own CBOR.
type Envelope struct {
	Kind   string          `cbor:"kind"`
	Signer []byte          `cbor:"signer"` // libp2p peer ID bytes (embeds the ed25519 key)
	Time   int64           `cbor:"time"`   // Unix milliseconds at signing
	Body   cbor.RawMessage `cbor:"body"`
	Sig    []byte          `cbor:"sig"`
}

// signed is the part of an Envelope the signature covers.
type signed struct {
	Kind   string          `cbor:"kind"`
	Signer []byte          `cbor:"signer"`
	Time   int64           `cbor:"time"`
	Body   cbor.RawMessage `cbor:"body"`
}

// MaxMessageSize is the most any decoder here reads, whatever the caller's
// own limit: the largest GossipSub message a node accepts (p2p's
// max_message_size tops out at 64 MiB). Callers check their own, smaller
// limits first; this stops a caller that forgot from decoding anything.
const MaxMessageSize = 64 << 20

var (
	encMode cbor.EncMode
	// bufMode encodes as encMode does, into a caller's buffer: the
	// encodings that are only compared or signed (every message a node
	// opens is encoded again twice) then cost no allocation.
	bufMode cbor.UserBufferEncMode
	decMode cbor.DecMode
	// headMode reads only an envelope's kind: the same bounds as decMode,
	// but other fields are skipped (still checked for well-formedness).
	headMode cbor.DecMode
)

// decOptions bound what a peer can make the decoder do: nesting, element
// counts and indefinite lengths are capped before anything is allocated,
// and duplicate keys (two meanings for one message) are errors.
func decOptions() cbor.DecOptions {
	return cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   16,
		MaxArrayElements:  4096,
		MaxMapPairs:       256,
		UTF8:              cbor.UTF8RejectInvalid,
	}
}

func init() {
	var err error
	// Canonical (length-first) key order is DAG-CBOR's order.
	encMode, err = cbor.CanonicalEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	if bufMode, err = cbor.CanonicalEncOptions().UserBufferEncMode(); err != nil {
		panic(err)
	}
	if decMode, err = decOptions().DecMode(); err != nil {
		panic(err)
	}
	head := decOptions()
	head.ExtraReturnErrors = cbor.ExtraDecErrorNone
	if headMode, err = head.DecMode(); err != nil {
		panic(err)
	}
}

// Marshal encodes v in the one deterministic form.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes strictly: unknown fields, duplicate keys and
// indefinite lengths are errors, and the input must be in the one
// deterministic form (so no two byte strings mean the same message).
func Unmarshal(data []byte, v any) error {
	if len(data) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxMessageSize)
	}
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	again := getBuffer()
	defer putBuffer(again)
	if err := bufMode.MarshalToBuffer(v, again); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(again.Bytes(), data) {
		return fmt.Errorf("%w: not in deterministic CBOR form", ErrMalformed)
	}
	return nil
}

// buffers are reused for encodings that live only for one call.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps one large message's buffer from being held.
const maxPooledBuffer = 64 << 10

func getBuffer() *bytes.Buffer {
	b := buffers.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		buffers.Put(b)
	}
}

// writeSigInput writes to buf what is signed: a prefix that separates
// signatures by domain and kind, so a signature over one kind of message
// can never be replayed as another, then the signed fields.
func writeSigInput(buf *bytes.Buffer, s signed) error {
	buf.WriteString("vft/1/sig\x00")
	buf.WriteString(s.Kind)
	buf.WriteByte(0)
	return bufMode.MarshalToBuffer(s, buf)
}

// Seal signs body as a message of the given kind at time now.
func Seal(key *identity.Key, kind string, now time.Time, body any) ([]byte, error) {
	raw, err := encMode.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", kind, err)
	}
	s := signed{Kind: kind, Signer: []byte(key.PeerID()), Time: now.UnixMilli(), Body: raw}
	input := getBuffer()
	defer putBuffer(input)
	if err := writeSigInput(input, s); err != nil {
		return nil, fmt.Errorf("encode %s: %w", kind, err)
	}
	env := Envelope{Kind: s.Kind, Signer: s.Signer, Time: s.Time, Body: s.Body, Sig: ed25519.Sign(key.PrivateKey(), input.Bytes())}
	return encMode.Marshal(env)
}

// Limits are what a receiver accepts.
type Limits struct {
	MaxSize   int           // bytes of the whole envelope
	MaxAge    time.Duration // older than this is stale
	MaxFuture time.Duration // tolerated clock skew ahead of us
}

// Opened is a checked message.
type Opened struct {
	Signer peer.ID
	Time   time.Time
	Body   cbor.RawMessage
}

// Open checks size, form, kind, signature and freshness, in that order
// (cheap checks first), and returns the signer and body.
func Open(data []byte, kind string, lim Limits, now time.Time) (Opened, error) {
	return open(data, kind, lim, now, nil)
}

// open is Open, skipping the signature check for bytes that cache holds
// (a nil cache holds none).
func open(data []byte, kind string, lim Limits, now time.Time, cache *SigCache) (Opened, error) {
	if len(data) > lim.MaxSize {
		return Opened{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), lim.MaxSize)
	}
	var env Envelope
	if err := Unmarshal(data, &env); err != nil {
		return Opened{}, err
	}
	if env.Kind != kind {
		return Opened{}, fmt.Errorf("%w: %q, want %q", ErrWrongKind, env.Kind, kind)
	}
	signer, err := peer.IDFromBytes(env.Signer)
	if err != nil {
		return Opened{}, fmt.Errorf("%w: signer is not a peer ID", ErrMalformed)
	}
	pub, err := signer.ExtractPublicKey()
	if err != nil || pub.Type() != crypto.Ed25519 {
		return Opened{}, fmt.Errorf("%w: signer %s has no ed25519 key", ErrMalformed, signer)
	}
	var key [sha256.Size]byte
	if cache != nil {
		key = sha256.Sum256(data)
	}
	if !cache.has(key) {
		if err := checkSignature(env, pub, signer); err != nil {
			return Opened{}, err
		}
		cache.add(key)
	}
	at := time.UnixMilli(env.Time)
	if age := now.Sub(at); age > lim.MaxAge {
		return Opened{}, fmt.Errorf("%w: signed %s ago, limit %s", ErrStale, age.Round(time.Millisecond), lim.MaxAge)
	}
	if ahead := at.Sub(now); ahead > lim.MaxFuture {
		return Opened{}, fmt.Errorf("%w: signed %s ahead of our clock, limit %s", ErrFuture, ahead.Round(time.Millisecond), lim.MaxFuture)
	}
	return Opened{Signer: signer, Time: at, Body: env.Body}, nil
}

// checkSignature checks env's signature by signer, whose key is pub.
func checkSignature(env Envelope, pub crypto.PubKey, signer peer.ID) error {
	raw, _ := pub.Raw()
	input := getBuffer()
	defer putBuffer(input)
	if err := writeSigInput(input, signed{Kind: env.Kind, Signer: env.Signer, Time: env.Time, Body: env.Body}); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(env.Sig) != ed25519.SignatureSize || !ed25519.Verify(raw, input.Bytes(), env.Sig) {
		return fmt.Errorf("%w from %s", ErrBadSignature, signer)
	}
	return nil
}

// KindOf returns a message's kind without checking its signature, so a
// topic that carries several kinds can dispatch before the full check. It
// decodes with the same bounds as Unmarshal (size, nesting, element counts,
// no indefinite lengths, no duplicate keys): it runs on every message a
// peer sends, before anything else has looked at it.
func KindOf(data []byte) (string, error) {
	if len(data) > MaxMessageSize {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxMessageSize)
	}
	var head struct {
		Kind string `cbor:"kind"`
	}
	if err := headMode.Unmarshal(data, &head); err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return head.Kind, nil
}
