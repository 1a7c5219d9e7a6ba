package escrow

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/p2p/reqresp"
	"github.com/vft-network/vft/wire"
)

// handle answers one signature request: a signature, or a sealed refusal
// with the reason (so the submitter can tell a user why). A request that
// cannot be read gets no answer.
func (s *Service) handle(st network.Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		st.Reset()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer st.Close()

	ctx, cancel := context.WithTimeout(s.ctx, exchangeTimeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	st.SetDeadline(dl)
	data, err := reqresp.Read(bufio.NewReader(st), maxRequestSize)
	if err != nil {
		st.Reset()
		return
	}
	from := st.Conn().RemotePeer()
	reply := s.answer(ctx, from, data)
	sealed, err := wire.Seal(s.key, KindSignReply, s.now(), reply)
	if err != nil {
		s.log.Error("seal escrow reply", "err", err)
		st.Reset()
		return
	}
	if err := reqresp.Write(st, sealed); err != nil {
		st.Reset()
	}
}

// answer signs a request or says why not.
func (s *Service) answer(ctx context.Context, from peer.ID, data []byte) SignReply {
	req, err := s.open(from, data)
	if err != nil {
		s.log.Warn("unreadable escrow request", "from", from, "err", err)
		return SignReply{Refusal: err.Error()}
	}
	sig, err := s.sign(ctx, req)
	if err != nil {
		s.log.Warn("escrow signature refused", "job", req.Job, "kind", req.Kind, "from", from, "err", err)
		return SignReply{Job: req.Job, Refusal: err.Error()}
	}
	s.log.Info("escrow transaction signed", "job", req.Job, "kind", req.Kind, "from", from)
	return SignReply{Job: req.Job, Signature: sig}
}

// open checks the envelope: size, form, signature, freshness, and that it
// was signed by the peer on the other end of the stream.
func (s *Service) open(from peer.ID, data []byte) (*SignRequest, error) {
	m, err := wire.Open(data, KindSignRequest, requestLimits, s.now())
	if err != nil {
		return nil, err
	}
	if m.Signer != from {
		return nil, fmt.Errorf("request signed by %s arrived from %s", m.Signer, from)
	}
	var req SignRequest
	if err := wire.Unmarshal(m.Body, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// sign validates req for this node and signs its transaction message.
// Anyone may ask (workers may settle without a vanished submitter where
// the threshold allows): what is signed, not who asks, is what matters.
func (s *Service) sign(ctx context.Context, req *SignRequest) ([]byte, error) {
	s.mu.Lock()
	job, ok := s.checked[req.Job]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: this node has not checked an escrow for job %s", ErrRefused, req.Job)
	}
	msg, err := checkRequest(req, job.escrow, job.terms.Submitter, s.self)
	if err != nil {
		return nil, fmt.Errorf("%w: %s of %s: %w", ErrRefused, req.Kind, req.Job, err)
	}
	valid, err := s.c.BlockhashValid(ctx, msg.RecentBlockhash)
	if err != nil {
		return nil, fmt.Errorf("%w: %s of %s: %w", ErrRefused, req.Kind, req.Job, err)
	}
	if !valid {
		return nil, fmt.Errorf("%w: %s of %s: blockhash %s is not recent (expired or unknown)", ErrRefused, req.Kind, req.Job, msg.RecentBlockhash)
	}
	cur, err := s.c.GetEscrow(ctx, req.Job, job.terms.payer(), job.escrow.Mint)
	if err != nil {
		return nil, fmt.Errorf("%w: %s of %s: %w", ErrRefused, req.Kind, req.Job, err)
	}
	var total uint64
	for _, p := range req.Payouts {
		if total+p.Amount < total {
			return nil, fmt.Errorf("%w: %s of %s: payouts overflow", ErrRefused, req.Kind, req.Job)
		}
		total += p.Amount
	}
	if total > cur.Amount {
		return nil, fmt.Errorf("%w: %s of %s pays %d, the escrow holds %d", ErrRefused, req.Kind, req.Job, total, cur.Amount)
	}
	if err := s.unlike(ctx, req); err != nil {
		return nil, err
	}
	if err := s.approve(ctx, req.Job, *req); err != nil {
		return nil, fmt.Errorf("%w: %s of %s: the node does not approve: %w", ErrRefused, req.Kind, req.Job, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.unlikeLocked(ctx, req); err != nil {
		return nil, err
	}
	s.signed[req.Job] = signedReq{tag: req.tag(), payouts: req.Payouts, blockhash: msg.RecentBlockhash}
	return ed25519.Sign(s.key.PrivateKey(), req.Tx), nil
}

// unlike refuses a request that moves the escrow differently from one this
// node signed whose blockhash is still valid: both could land. The same
// release again (a new blockhash after the last expired) is fine.
func (s *Service) unlike(ctx context.Context, req *SignRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unlikeLocked(ctx, req)
}

func (s *Service) unlikeLocked(ctx context.Context, req *SignRequest) error {
	prev, ok := s.signed[req.Job]
	if !ok || (prev.tag == req.tag() && maps.Equal(totals(prev.payouts), totals(req.Payouts))) {
		return nil
	}
	valid, err := s.c.BlockhashValid(ctx, prev.blockhash)
	if err != nil {
		return fmt.Errorf("%w: %s of %s: %w", ErrRefused, req.Kind, req.Job, err)
	}
	if valid {
		return fmt.Errorf("%w: %s of %s: this node signed another transaction for the escrow (memo tag %q) that can land until its blockhash %s expires", ErrRefused, req.Kind, req.Job, prev.tag, prev.blockhash)
	}
	return nil
}
