package escrow

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gagliardetto/solana-go"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/wire"
)

// collect builds the transaction moving payouts out of e and gathers the
// approvers' signatures: this node's own (when it is a signer and not
// listed, it is added), the others' over libp2p, all at once; of more
// approvers than the multisig's M, the first M. Every
// signature is checked against the message before it is kept. Any refusal
// or failure fails the whole collection, naming each signer and why.
func (s *Service) collect(ctx context.Context, e *chain.Escrow, kind, result string, payouts []chain.Payout, approvers []solana.PublicKey) (*chain.Release, error) {
	approvers = slices.Clone(approvers)
	if slices.Contains(e.Signers, s.self) && !slices.Contains(approvers, s.self) {
		approvers = append([]solana.PublicKey{s.self}, approvers...)
	}
	if len(approvers) > e.M {
		// The multisig takes exactly M signatures: when more workers agree
		// than the quorum (all three of a 2-of-3 job), the first M sign,
		// this node first; all of them are still paid.
		if i := slices.Index(approvers, s.self); i > 0 {
			approvers[0], approvers[i] = approvers[i], approvers[0]
		}
		approvers = approvers[:e.M]
	}
	tag := result
	if kind == KindRefund {
		tag = KindRefund
	}
	r, err := s.c.ReleaseTx(ctx, e, tag, payouts, approvers)
	if err != nil {
		return nil, err
	}
	msg, err := r.Tx.Message.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode %s of %s: %w", kind, e.JobID, err)
	}
	var merged []chain.Payout
	for to, amount := range totals(payouts) {
		merged = append(merged, chain.Payout{Recipient: to, Amount: amount})
	}
	req := SignRequest{Job: e.JobID, Kind: kind, Tx: msg, ResultCID: result, Payouts: merged}
	sealed, err := wire.Seal(s.key, KindSignRequest, s.now(), req)
	if err != nil {
		return nil, err
	}
	if len(sealed) > maxRequestSize {
		return nil, fmt.Errorf("escrow: %s request of %s is %d bytes, limit %d", kind, e.JobID, len(sealed), maxRequestSize)
	}

	signers := r.Tx.Message.Signers()
	if len(r.Tx.Signatures) != len(signers) {
		r.Tx.Signatures = make([]solana.Signature, len(signers))
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, a := range approvers {
		if a == s.self {
			if err := chain.SignRelease(r, s.priv); err != nil {
				return nil, err
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sig, err := s.ask(ctx, a, e.JobID, sealed, msg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			r.Tx.Signatures[slices.Index(signers, a)] = solana.SignatureFromBytes(sig)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("escrow: %s of %s: %w", kind, e.JobID, err)
	}
	return r, nil
}

// ask sends one signer the request and returns its checked signature.
func (s *Service) ask(ctx context.Context, who solana.PublicKey, jobID string, sealed, msg []byte) ([]byte, error) {
	p, err := PeerOf(who)
	if err != nil {
		return nil, err
	}
	data, err := exchange(ctx, s.h, p, sealed)
	if err != nil {
		return nil, err
	}
	m, err := wire.Open(data, KindSignReply, replyLimits, s.now())
	if err != nil {
		return nil, fmt.Errorf("reply from %s: %w", who, err)
	}
	if m.Signer != p {
		return nil, fmt.Errorf("reply from %s signed by %s", who, m.Signer)
	}
	var reply SignReply
	if err := wire.Unmarshal(m.Body, &reply); err != nil {
		return nil, fmt.Errorf("reply from %s: %w", who, err)
	}
	if reply.Refusal != "" {
		return nil, fmt.Errorf("%w by %s: %s", ErrRefused, who, strings.TrimPrefix(reply.Refusal, ErrRefused.Error()+": "))
	}
	if reply.Job != jobID {
		return nil, fmt.Errorf("reply from %s is for job %q, not %q", who, reply.Job, jobID)
	}
	if len(reply.Signature) != ed25519.SignatureSize || !ed25519.Verify(who[:], msg, reply.Signature) {
		return nil, fmt.Errorf("signature from %s does not verify against the transaction", who)
	}
	return reply.Signature, nil
}
