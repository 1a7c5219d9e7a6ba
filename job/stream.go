package job

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Direct-stream protocols: each carries one signed request and one signed
// reply, so a node reads only what concerns it.
const (
	ProtocolBid    protocol.ID = "/vft/bid/1"
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

// writeMsg writes one length-prefixed message.
func writeMsg(w io.Writer, data []byte) error {
	var n [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(n[:], uint64(len(data)))
	if _, err := w.Write(n[:l]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// readMsg reads one length-prefixed message of at most max bytes.
func readMsg(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("message of %d bytes, limit %d", n, max)
	}
	buf := make([]byte, n)
	_, err = io.ReadFull(r, buf)
	return buf, err
}

// exchange sends req to p on proto and returns its reply.
func exchange(ctx context.Context, s Streams, p peer.ID, proto protocol.ID, req []byte, maxReply int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	st, err := s.NewStream(ctx, p, proto)
	if err != nil {
		return nil, fmt.Errorf("open %s to %s: %w", proto, p, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if err := writeMsg(st, req); err != nil {
		st.Reset()
		return nil, fmt.Errorf("%s to %s: %w", proto, p, err)
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return nil, fmt.Errorf("%s to %s: %w", proto, p, err)
	}
	reply, err := readMsg(bufio.NewReader(st), maxReply)
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("%s reply from %s: %w", proto, p, err)
	}
	return reply, nil
}

// serve reads one request from a stream, answers with handle's reply, and
// closes it. A request that fails handle gets no reply (the stream is
// reset), which the other side reads as a refusal.
func serve(st network.Stream, maxReq int, handle func(from peer.ID, req []byte) ([]byte, error)) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(streamTimeout))
	req, err := readMsg(bufio.NewReader(st), maxReq)
	if err != nil {
		st.Reset()
		return
	}
	reply, err := handle(st.Conn().RemotePeer(), req)
	if err != nil {
		st.Reset()
		return
	}
	if err := writeMsg(st, reply); err != nil {
		st.Reset()
	}
}
