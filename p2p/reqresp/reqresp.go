// Package reqresp is VFT's one-request, one-reply exchange over a libp2p
// stream: each side writes one length-prefixed message. The market's bids,
// assignments, commitments and reveals and the escrow's signature requests
// all use it, so a node reads only what concerns it.
package reqresp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Opener is the part of a libp2p host that opens streams.
type Opener interface {
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
}

// Write writes one length-prefixed message.
func Write(w io.Writer, data []byte) error {
	var n [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(n[:], uint64(len(data)))
	if _, err := w.Write(n[:l]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// ErrTooLarge is a frame that declares more bytes than the reader accepts.
var ErrTooLarge = errors.New("message too large")

// Read reads one length-prefixed message of at most max bytes. Memory
// grows with the bytes that actually arrive, not with the length the
// peer declares: a peer that declares max and sends nothing costs a
// small buffer until the stream's deadline, not max bytes.
func Read(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if max < 0 || n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, max)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(n, 4096)))
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// Exchange sends req to p on proto and returns its reply of at most
// maxReply bytes, all within timeout.
func Exchange(ctx context.Context, h Opener, p peer.ID, proto protocol.ID, req []byte, maxReply int, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// One small request and reply may cross a relay (circuit relay v2's
	// limited connection) when p is behind NAT and no direct connection
	// exists yet; content never does (bitswap waits for a direct one).
	ctx = network.WithAllowLimitedConn(ctx, "vft request/reply")
	st, err := h.NewStream(ctx, p, proto)
	if err != nil {
		return nil, fmt.Errorf("open %s to %s: %w", proto, p, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if err := Write(st, req); err != nil {
		st.Reset()
		return nil, fmt.Errorf("%s to %s: %w", proto, p, err)
	}
	// The request is whole once written. A server that has read it may
	// answer and close its side before this close gets out, and over QUIC
	// the close then fails ("close called for canceled stream") though the
	// reply is on its way: a failed close is not a failed exchange, and a
	// stream that really broke fails the read below.
	_ = st.CloseWrite()
	reply, err := Read(bufio.NewReader(st), maxReply)
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("%s reply from %s: %w", proto, p, err)
	}
	return reply, nil
}

// Serve reads one request of at most maxReq bytes from st, writes
// handle's reply and closes the stream, all within timeout: a peer that
// opens a stream and never writes holds it (and this goroutine) for at
// most timeout. How many such streams one peer may hold at once is capped
// by the host's resource manager (p2p.Options.DirectProtocols). A request that
// handle refuses gets no reply (the stream is reset), which the other side
// reads as a refusal.
func Serve(st network.Stream, maxReq int, timeout time.Duration, handle func(from peer.ID, req []byte) ([]byte, error)) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(timeout))
	req, err := Read(bufio.NewReader(st), maxReq)
	if err != nil {
		st.Reset()
		return
	}
	reply, err := handle(st.Conn().RemotePeer(), req)
	if err != nil {
		st.Reset()
		return
	}
	if err := Write(st, reply); err != nil {
		st.Reset()
	}
}
