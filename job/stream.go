package job

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/vft-network/vft/p2p/reqresp"
)

// Direct-stream protocols: each carries one signed request and one signed
// reply, so a node reads only what concerns it.
const (
	ProtocolBid    protocol.ID = "/vft/bid/1"
	ProtocolInvite protocol.ID = "/vft/invite/1"
	ProtocolAssign protocol.ID = "/vft/assign/1"
)

// streamTimeout bounds one request/reply exchange.
const streamTimeout = 10 * time.Second

// Streams is the part of a libp2p host the market uses.
type Streams interface {
	ID() peer.ID
	SetStreamHandler(protocol.ID, network.StreamHandler)
	RemoveStreamHandler(protocol.ID)
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
}

// exchange sends req to p on proto and returns its reply.
func exchange(ctx context.Context, s Streams, p peer.ID, proto protocol.ID, req []byte, maxReply int) ([]byte, error) {
	return reqresp.Exchange(ctx, s, p, proto, req, maxReply, streamTimeout)
}

// serve answers one request on st with handle's reply (reqresp.Serve).
func serve(st network.Stream, maxReq int, handle func(from peer.ID, req []byte) ([]byte, error)) {
	reqresp.Serve(st, maxReq, streamTimeout, handle)
}
