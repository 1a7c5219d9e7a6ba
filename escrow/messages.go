package escrow

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/gagliardetto/solana-go"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/p2p/reqresp"
	"github.com/vft-network/vft/wire"
)

// Protocol carries one SignRequest and one SignReply per stream.
const Protocol protocol.ID = "/vft/escrow/1"

// Message kinds (wire envelopes, signed by the sender's node key).
const (
	KindSignRequest = "escrow-sign/1"
	KindSignReply   = "escrow-signature/1"
)

// What a request asks for.
const (
	KindRelease = "release" // pay the agreeing workers; memo vft:1:<job>:<result>
	KindRefund  = "refund"  // pay the submitter back; memo vft:1:<job>:refund
)

// Bounds on the exchange. A request holds one transaction message (at most
// 1232 bytes) and at most 11 payouts; a reply one signature or a reason.
const (
	maxRequestSize = 8 << 10
	maxReplySize   = 2 << 10
	// exchangeTimeout bounds one request/reply: the signer reads the chain
	// and asks its node before it answers.
	exchangeTimeout = 30 * time.Second
)

var (
	requestLimits = wire.Limits{MaxSize: maxRequestSize, MaxAge: time.Minute, MaxFuture: 30 * time.Second}
	replyLimits   = wire.Limits{MaxSize: maxReplySize, MaxAge: time.Minute, MaxFuture: 30 * time.Second}
)

// SignRequest asks an escrow signer to sign a release or refund.
type SignRequest struct {
	Job       string         `cbor:"job"`
	Kind      string         `cbor:"kind"`             // KindRelease or KindRefund
	Tx        []byte         `cbor:"tx"`               // the transaction's message, the bytes signed
	ResultCID string         `cbor:"result,omitempty"` // empty for a refund
	Payouts   []chain.Payout `cbor:"payouts"`          // what the transaction pays, one per recipient
}

// SignReply carries the signature, or why there is none.
type SignReply struct {
	Job       string `cbor:"job"`
	Signature []byte `cbor:"sig,omitempty"`
	Refusal   string `cbor:"refusal,omitempty"`
}

// tag is the memo's last part for a request.
func (r SignRequest) tag() string {
	if r.Kind == KindRefund {
		return KindRefund
	}
	return r.ResultCID
}

// Host is the part of a libp2p host the escrow protocol uses.
type Host interface {
	ID() peer.ID
	SetStreamHandler(protocol.ID, network.StreamHandler)
	RemoveStreamHandler(protocol.ID)
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
}

// PeerOf is the libp2p peer whose node key is pk (a node's peer ID and
// Solana address are the same ed25519 key).
func PeerOf(pk solana.PublicKey) (peer.ID, error) {
	pub, err := crypto.UnmarshalEd25519PublicKey(pk[:])
	if err != nil {
		return "", fmt.Errorf("key %s: %w", pk, err)
	}
	return peer.IDFromPublicKey(pub)
}

// KeyOf is the Solana address of a peer.
func KeyOf(p peer.ID) (solana.PublicKey, error) {
	pub, err := p.ExtractPublicKey()
	if err != nil || pub.Type() != crypto.Ed25519 {
		return solana.PublicKey{}, fmt.Errorf("peer %s has no ed25519 key", p)
	}
	raw, err := pub.Raw()
	if err != nil {
		return solana.PublicKey{}, fmt.Errorf("peer %s: %w", p, err)
	}
	return solana.PublicKeyFromBytes(raw), nil
}

// exchange sends req to p and returns its reply.
func exchange(ctx context.Context, h Host, p peer.ID, req []byte) ([]byte, error) {
	return reqresp.Exchange(ctx, h, p, Protocol, req, maxReplySize, exchangeTimeout)
}
