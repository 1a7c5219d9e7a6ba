package escrow

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gagliardetto/solana-go"

	"github.com/vft-network/vft/chain"
)

// ErrBadEscrow is matched (errors.Is) by every reason CheckEscrow refuses
// an escrow that exists.
var ErrBadEscrow = errors.New("escrow does not secure the job")

// badEscrow reads "escrow for job <id> <reason>" and is an ErrBadEscrow.
type badEscrow struct{ jobID, reason string }

func (b *badEscrow) Error() string        { return "escrow for job " + b.jobID + " " + b.reason }
func (b *badEscrow) Is(target error) bool { return target == ErrBadEscrow }

// Terms are what a worker was promised for a job; the escrow on chain must
// secure exactly that.
type Terms struct {
	JobID     string
	Submitter solana.PublicKey   // the submitter's node key (its multisig seat)
	Workers   []solana.PublicKey // every assigned worker, this node among them
	Quorum    int                // how many workers must agree (m)
	Reward    uint64             // what each agreeing worker is paid, in Mint's base units
	Amount    uint64             // what the escrow must hold: Reward × the job's k
	Mint      solana.PublicKey
	// Payer opened the escrow (the submitter's fee payer): the escrow's
	// address is derived from it and the job ID. Zero means Submitter.
	Payer solana.PublicKey
}

func (t Terms) payer() solana.PublicKey {
	if t.Payer.IsZero() {
		return t.Submitter
	}
	return t.Payer
}

// CheckEscrow reads a job's escrow from the chain and checks, before a
// worker executes, that it secures the job for self: it holds at least the
// reward in the job's mint; its signers are exactly the submitter and the
// assigned workers, each once (a repeated key would sign twice); self is
// one; and its threshold is Threshold's, so that neither the submitter
// with fewer than Quorum workers nor fewer than Quorum+1 workers can move
// it. A refusal wraps ErrBadEscrow (or chain.ErrNoEscrow) and names what
// is wrong.
func CheckEscrow(ctx context.Context, c *chain.Client, t Terms, self solana.PublicKey) (*chain.Escrow, error) {
	_, want, err := Threshold(len(t.Workers), t.Quorum)
	if err != nil {
		return nil, fmt.Errorf("escrow for job %s: %w", t.JobID, err)
	}
	e, err := c.GetEscrow(ctx, t.JobID, t.payer(), t.Mint)
	if err != nil {
		return nil, fmt.Errorf("escrow for job %s: %w", t.JobID, err)
	}
	if err := checkEscrow(e, t, self, want); err != nil {
		return nil, &badEscrow{jobID: t.JobID, reason: err.Error()}
	}
	return e, nil
}

// checkEscrow is CheckEscrow's judgement of what it read.
func checkEscrow(e *chain.Escrow, t Terms, self solana.PublicKey, want int) error {
	if e.Mint != t.Mint {
		return fmt.Errorf("is in mint %s, the job pays in %s", e.Mint, t.Mint)
	}
	if e.Amount < t.Amount {
		return fmt.Errorf("holds %d, the job pays %d", e.Amount, t.Amount)
	}
	for i, s := range e.Signers {
		if slices.Contains(e.Signers[:i], s) {
			return fmt.Errorf("lists signer %s twice, so it would count twice", s)
		}
	}
	if !slices.Contains(e.Signers, self) {
		return fmt.Errorf("does not list this node (%s) as a signer", self)
	}
	allowed := append([]solana.PublicKey{t.Submitter}, t.Workers...)
	for _, s := range e.Signers {
		if !slices.Contains(allowed, s) {
			return fmt.Errorf("has signer %s, who is neither the submitter nor an assigned worker", s)
		}
	}
	for _, a := range allowed {
		if !slices.Contains(e.Signers, a) {
			return fmt.Errorf("lacks %s among its %d signers", a, len(e.Signers))
		}
	}
	switch {
	case e.M == 1:
		return fmt.Errorf("has threshold 1, which lets the submitter alone take it back (want %d)", want)
	case e.M < want:
		return fmt.Errorf("has threshold %d, which lets the submitter with %d workers take it back, fewer than the quorum of %d (want %d)", e.M, e.M-1, t.Quorum, want)
	case e.M > want:
		return fmt.Errorf("has threshold %d, so the submitter and the %d agreeing workers could not release it (want %d)", e.M, t.Quorum, want)
	}
	return nil
}
