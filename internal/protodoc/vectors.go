// Package protodoc keeps docs/PROTOCOL.md and docs/vectors/ true to the
// code: its tests fail when a message type has a CBOR field the doc's
// tables lack, when a documented limit differs from the code's, or when a
// test vector no longer gives the result it records (go test
// ./internal/protodoc -update rewrites the vectors from the code).
package protodoc

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/wire"
)

// Now is the receiver's clock for every vector: 2026-01-01T00:00:00Z.
var Now = time.UnixMilli(1767225600000).UTC()

// Vector is one test vector: a signed message as it travels, how it
// decodes, what was signed, and what a receiver must decide about it at
// NowMS.
type Vector struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Where it travels: a GossipSub topic or a direct-stream protocol.
	Topic    string `json:"topic,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Kind     string `json:"kind"`
	// NowMS is the receiver's clock (Unix ms) when it checks the message.
	NowMS int64 `json:"now_ms"`
	// SignerSeed is the ed25519 seed that signed it, so an implementation
	// can reproduce the signature; Signer its peer ID as text, SignerBytes
	// the binary multihash the envelope carries.
	SignerSeed  string `json:"signer_seed_hex"`
	Signer      string `json:"signer"`
	SignerBytes string `json:"signer_bytes_hex"`
	TimeMS      int64  `json:"time_ms"`
	// Body is the body's CBOR, BodyDiag its decoded form in CBOR
	// diagnostic notation (RFC 8949 §8).
	Body     string `json:"body_hex"`
	BodyDiag string `json:"body_diag"`
	// SigningBytes is "vft/1/sig\x00" ‖ kind ‖ "\x00" ‖ CBOR({kind, signer,
	// time, body}); Sig the ed25519 signature over it.
	SigningBytes string `json:"signing_bytes_hex"`
	Sig          string `json:"sig_hex"`
	// Envelope is the message as it travels, EnvelopeDiag its decoded form.
	Envelope     string `json:"envelope_hex"`
	EnvelopeDiag string `json:"envelope_diag"`
	// Limits the receiver applies to this kind.
	MaxSize     int   `json:"max_size"`
	MaxAgeMS    int64 `json:"max_age_ms"`
	MaxFutureMS int64 `json:"max_future_ms"`
	// Valid is what a receiver must decide; Error a substring of the Go
	// implementation's error when it is not (for humans: other
	// implementations word their own).
	Valid bool   `json:"valid"`
	Error string `json:"error,omitempty"`
	// JobID is the offer's job ID (CIDv1 dag-cbor sha2-256 of Envelope).
	JobID string `json:"job_id,omitempty"`
	// Commitment (commit vectors) is verify.Commit of the reveal vector's
	// result and salt by this signer; Offer (cancel, verdict) names the
	// offer vector the message is about.
	Commitment string `json:"commitment_hex,omitempty"`
	Offer      string `json:"offer_vector,omitempty"`
}

// Key is a deterministic test identity: seed = 32 bytes of n.
func Key(n byte) (*identity.Key, []byte) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = n
	}
	k, err := identity.FromPrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		panic(err)
	}
	return k, seed
}

// Limits of one kind, as the doc states them and the code enforces them.
type Limits struct {
	MaxSize   int
	MaxAge    time.Duration
	MaxFuture time.Duration
}

// seal signs body like wire.Seal and fills a vector with every
// intermediate form. body may be any value; a map[string]any gives a body
// the Go types could not produce (a missing field).
func seal(name, desc string, key *identity.Key, seed []byte, kind string, at time.Time, body any, lim Limits) (Vector, error) {
	raw, err := wire.Marshal(body)
	if err != nil {
		return Vector{}, err
	}
	type signed struct {
		Kind   string          `cbor:"kind"`
		Signer []byte          `cbor:"signer"`
		Time   int64           `cbor:"time"`
		Body   cbor.RawMessage `cbor:"body"`
	}
	s := signed{Kind: kind, Signer: []byte(key.PeerID()), Time: at.UnixMilli(), Body: raw}
	enc, err := wire.Marshal(s)
	if err != nil {
		return Vector{}, err
	}
	input := append([]byte("vft/1/sig\x00"+kind+"\x00"), enc...)
	sig := ed25519.Sign(key.PrivateKey(), input)
	env, err := wire.Marshal(wire.Envelope{Kind: kind, Signer: s.Signer, Time: s.Time, Body: raw, Sig: sig})
	if err != nil {
		return Vector{}, err
	}
	v := Vector{
		Name: name, Description: desc, Kind: kind, NowMS: Now.UnixMilli(),
		SignerSeed: hex.EncodeToString(seed), Signer: key.PeerID().String(), SignerBytes: hex.EncodeToString(s.Signer),
		TimeMS: s.Time, Body: hex.EncodeToString(raw), SigningBytes: hex.EncodeToString(input), Sig: hex.EncodeToString(sig),
		MaxSize: lim.MaxSize, MaxAgeMS: lim.MaxAge.Milliseconds(), MaxFutureMS: lim.MaxFuture.Milliseconds(), Valid: true,
	}
	v.setEnvelope(env)
	return v, nil
}

// setEnvelope replaces the envelope's bytes and their decoded forms.
func (v *Vector) setEnvelope(env []byte) {
	v.Envelope = hex.EncodeToString(env)
	v.EnvelopeDiag = diag(env)
	var e struct {
		Body cbor.RawMessage `cbor:"body"`
	}
	if cbor.Unmarshal(env, &e) == nil {
		v.BodyDiag = diag(e.Body)
	}
}

func diag(b []byte) string {
	d, err := cbor.Diagnose(b)
	if err != nil {
		return fmt.Sprintf("(not CBOR: %v)", err)
	}
	return d
}

// EnvelopeBytes decodes the vector's envelope.
func (v Vector) EnvelopeBytes() []byte {
	b, err := hex.DecodeString(v.Envelope)
	if err != nil {
		panic(fmt.Sprintf("vector %s: envelope_hex: %v", v.Name, err))
	}
	return b
}

// digest is a short fingerprint of a vector's envelope, for messages.
func digest(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:4]) }
