package job

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/verify"
	"github.com/vft-network/vft/wire"
)

// Commit–reveal and verdict messages (docs/VERIFICATION.md).
const (
	KindCommit        = "job-commit/1"
	KindRevealRequest = "job-reveal-request/1"
	KindReveal        = "job-reveal/1"
	KindVerdict       = "job-verdict/1"
	KindStarted       = "job-started/1"

	// ProtocolStarted tells the submitter a worker began running its job,
	// so `vft job submit --wait` can show the running stage.
	ProtocolStarted = "/vft/started/1"

	// ProtocolCommit carries a worker's commitment to its submitter.
	ProtocolCommit = "/vft/commit/1"
	// ProtocolReveal is the submitter asking a worker to open its
	// commitment, once every worker has committed.
	ProtocolReveal = "/vft/reveal/1"
	// ProtocolVerdict hands a verdict to the job's workers directly.
	ProtocolVerdict = "/vft/verdict/1"
	// VerdictsTopic is where submitters gossip signed verdicts.
	VerdictsTopic = "/vft/1/verdicts"
)

// MaxVerdictSize bounds a verdict: the offer plus one reveal per worker.
const MaxVerdictSize = MaxOfferSize + MaxRedundancy*1024 + 8<<10

// Reveals travel inside verdicts, which are gossiped a little after the
// reveal was signed and re-checked by every node that receives them.
var revealInVerdictLimits = wire.Limits{MaxSize: 1024, MaxAge: 24 * time.Hour, MaxFuture: MaxOfferFuture}

var verdictLimits = wire.Limits{MaxSize: MaxVerdictSize, MaxAge: time.Hour, MaxFuture: MaxOfferFuture}

// CommitMsg is a worker's commitment H(resultCID ‖ workerID ‖ salt), sent
// before anyone reveals, so no worker can copy another's result. A worker
// whose run failed sends the reason instead, and, when the program itself
// failed, the failure's signature ("exit code 3", "trap: unreachable"),
// which every honest run of the job repeats.
type CommitMsg struct {
	Job        string `cbor:"job"`
	Commitment []byte `cbor:"commitment"`
	Error      string `cbor:"error"`
	Failure    string `cbor:"failure"`
}

// maxFailureSignature bounds a failure's signature: it is compared, not read.
const maxFailureSignature = 256

// StartedMsg says a worker has its inputs and is running the job.
type StartedMsg struct {
	Job string `cbor:"job"`
}

// RevealRequest asks a worker to open its commitment.
type RevealRequest struct {
	Job string `cbor:"job"`
}

// RevealMsg opens a commitment. Signed by the worker, it is also the
// evidence a verdict carries.
type RevealMsg struct {
	Job    string `cbor:"job"`
	Result string `cbor:"result"`
	Salt   []byte `cbor:"salt"`
}

// Verdict is a submitter's signed account of how a job was decided. It
// carries the offer (so anyone can see the policy and who submitted it)
// and the workers' own signed reveals, so any node can check that the
// agreeing workers did reveal the accepted result and the dissenters
// something else, before counting it in its reputation table.
type Verdict struct {
	Job       string   `cbor:"job"`
	Offer     []byte   `cbor:"offer"`
	Accepted  string   `cbor:"accepted"` // empty: rejected
	Agreed    []string `cbor:"agreed"`
	Dissented []string `cbor:"dissented"`
	// Reveals are the workers' signed RevealMsgs.
	Reveals [][]byte `cbor:"reveals"`
	// Reasons say why each dissenter dissented (failed run, no reveal,
	// reveal not matching its commitment, different result).
	Reasons map[string]string `cbor:"reasons"`
}

// CheckedVerdict is a verdict whose evidence was checked: Agreed and
// Dissented hold only the workers the signed reveals prove it about.
type CheckedVerdict struct {
	Author    peer.ID
	Job       string
	Accepted  string
	Agreed    []peer.ID
	Dissented []peer.ID
	// Unproven are dissenters the verdict names without evidence a third
	// party can check (no reveal); the author alone can vouch for them.
	Unproven []peer.ID
	// Revealed is what each worker whose signed reveal the verdict carries
	// revealed: a rejection's evidence that there was no quorum.
	Revealed map[peer.ID]string
}

// Errors a verdict's receiver can tell apart (wrapped with details).
var (
	// ErrVerdictReveals: the reveals a verdict carries are malformed,
	// repeated, or more than the job has workers; found before any of
	// them is signature-checked.
	ErrVerdictReveals = errors.New("verdict carries bad reveals")
	// ErrForgedRejection: a verdict rejects a job whose carried reveals
	// reach the quorum, or names as a dissenter a worker whose reveal
	// shows a result.
	ErrForgedRejection = errors.New("verdict rejects a job its evidence accepts")
)

// openFunc opens a signed message as wire.Open does: wire.Open itself,
// the market's openSigned (its offer signature cache), or in tests a
// counter of the signature checks.
type openFunc func(data []byte, kind string, lim wire.Limits, now time.Time) (wire.Opened, error)

// OpenVerdict checks a gossiped verdict: signed by the job's submitter,
// the offer valid, every reveal signed by a worker it names and about this
// job, and in exact mode the agreeing reveals equal to the accepted result,
// at least m of them, and no evidenced dissenter revealing it too. A
// rejection is valid only when its reveals show no quorum (verify.Decide,
// as the submitter decides) and names as dissenters only workers without
// a revealed result. Anything else is an error: a forged verdict, or one
// about a job the sender did not submit.
func OpenVerdict(raw []byte, now time.Time) (CheckedVerdict, error) {
	return openVerdict(raw, now, wire.Open)
}

// peekVerdict decodes a verdict without checking any signature, for the
// checks that must come before the expensive ones.
func peekVerdict(raw []byte) (Verdict, error) {
	if len(raw) > verdictLimits.MaxSize {
		return Verdict{}, fmt.Errorf("%w: %d bytes, limit %d", wire.ErrTooLarge, len(raw), verdictLimits.MaxSize)
	}
	var env wire.Envelope
	if err := wire.Unmarshal(raw, &env); err != nil {
		return Verdict{}, err
	}
	if env.Kind != KindVerdict {
		return Verdict{}, fmt.Errorf("%w: %q, want %q", wire.ErrWrongKind, env.Kind, KindVerdict)
	}
	var v Verdict
	if err := wire.Unmarshal(env.Body, &v); err != nil {
		return Verdict{}, err
	}
	return v, nil
}

// revealSigners returns who signed each reveal, unchecked, refusing more
// than limit reveals and two by one signer before any signature is
// verified: each costs an ed25519 check on every node the verdict reaches.
func revealSigners(reveals [][]byte, limit int) ([]peer.ID, error) {
	if len(reveals) > limit {
		return nil, fmt.Errorf("%w: %d reveals, the job has at most %d workers", ErrVerdictReveals, len(reveals), limit)
	}
	signers := make([]peer.ID, 0, len(reveals))
	for _, r := range reveals {
		if len(r) > revealInVerdictLimits.MaxSize {
			return nil, fmt.Errorf("%w: a reveal of %d bytes, limit %d", ErrVerdictReveals, len(r), revealInVerdictLimits.MaxSize)
		}
		var env wire.Envelope
		if err := wire.Unmarshal(r, &env); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrVerdictReveals, err)
		}
		p, err := peer.IDFromBytes(env.Signer)
		if err != nil || env.Kind != KindReveal {
			return nil, fmt.Errorf("%w: a reveal of kind %q by %q", ErrVerdictReveals, env.Kind, env.Signer)
		}
		if slices.Contains(signers, p) {
			return nil, fmt.Errorf("%w: two reveals by %s", ErrVerdictReveals, p)
		}
		signers = append(signers, p)
	}
	return signers, nil
}

// maxWorkersOf is the most workers a job can have had: its k, plus the
// tie-breakers a split job without escrow may add (a spot check's
// verifier and tie-breaker among them).
func maxWorkersOf(s Spec) int { return s.Verify.MaxWorkers(s.Escrow) }

func openVerdict(raw []byte, now time.Time, open openFunc) (CheckedVerdict, error) {
	peek, err := peekVerdict(raw)
	if err != nil {
		return CheckedVerdict{}, err
	}
	if _, err := revealSigners(peek.Reveals, MaxRedundancy+verify.MaxTieBreakers); err != nil {
		return CheckedVerdict{}, err
	}
	msg, err := open(raw, KindVerdict, verdictLimits, now)
	if err != nil {
		return CheckedVerdict{}, err
	}
	var v Verdict
	if err := wire.Unmarshal(msg.Body, &v); err != nil {
		return CheckedVerdict{}, err
	}
	// The offer may be older than its own freshness window by now; what
	// matters is its signature and ID.
	id, err := offerID(v.Offer)
	if err != nil || id.String() != v.Job {
		return CheckedVerdict{}, fmt.Errorf("verdict names job %s but carries the offer of another", v.Job)
	}
	om, err := open(v.Offer, KindOffer, wire.Limits{MaxSize: MaxOfferSize, MaxAge: 2 * MaxOfferAge, MaxFuture: MaxOfferFuture}, now)
	if err != nil {
		return CheckedVerdict{}, fmt.Errorf("verdict's offer: %w", err)
	}
	if om.Signer != msg.Signer {
		return CheckedVerdict{}, fmt.Errorf("verdict on job %s signed by %s, not by its submitter %s", v.Job, msg.Signer, om.Signer)
	}
	var spec Spec
	if err := wire.Unmarshal(om.Body, &spec); err != nil {
		return CheckedVerdict{}, fmt.Errorf("verdict's offer: %w", err)
	}
	out := CheckedVerdict{Author: msg.Signer, Job: v.Job, Accepted: v.Accepted, Revealed: map[peer.ID]string{}}
	named := map[peer.ID]string{} // worker → "agreed" | "dissented"
	for _, list := range []struct {
		ids  []string
		side string
	}{{v.Agreed, "agreed"}, {v.Dissented, "dissented"}} {
		for _, s := range list.ids {
			p, err := peer.Decode(s)
			if err != nil {
				return CheckedVerdict{}, fmt.Errorf("verdict names %q, not a peer ID", s)
			}
			if _, dup := named[p]; dup || p == msg.Signer {
				return CheckedVerdict{}, fmt.Errorf("verdict names %s twice or names its own author", p)
			}
			named[p] = list.side
		}
	}
	if len(named) > MaxRedundancy*2 {
		return CheckedVerdict{}, fmt.Errorf("verdict names %d workers", len(named))
	}
	signers, err := revealSigners(v.Reveals, maxWorkersOf(spec))
	if err != nil {
		return CheckedVerdict{}, err
	}
	rejected := v.Accepted == ""
	for i, s := range signers {
		// A rejection carries the reveals of workers it does not name
		// (differing results prove nothing against them): its evidence.
		if _, ok := named[s]; !ok && !rejected {
			return CheckedVerdict{}, fmt.Errorf("verdict carries a reveal by %s, whom it does not name", s)
		}
		if s == msg.Signer {
			return CheckedVerdict{}, fmt.Errorf("verdict carries a reveal by its own author %s", s)
		}
		rm, err := open(v.Reveals[i], KindReveal, revealInVerdictLimits, now)
		if err != nil {
			return CheckedVerdict{}, fmt.Errorf("verdict's reveal: %w", err)
		}
		var body RevealMsg
		if err := wire.Unmarshal(rm.Body, &body); err != nil {
			return CheckedVerdict{}, err
		}
		if body.Job != v.Job {
			return CheckedVerdict{}, fmt.Errorf("verdict on %s carries a reveal about %s", v.Job, body.Job)
		}
		out.Revealed[rm.Signer] = body.Result
	}
	if rejected {
		if err := checkRejection(spec, out.Revealed, named); err != nil {
			return CheckedVerdict{}, fmt.Errorf("verdict on %s: %w", v.Job, err)
		}
	}
	exact := spec.Verify.ByCID()
	for p, side := range named {
		result, has := out.Revealed[p]
		switch {
		case side == "agreed" && !has:
			return CheckedVerdict{}, fmt.Errorf("verdict says %s agreed but carries no reveal of it", p)
		case side == "agreed" && exact && result != v.Accepted:
			return CheckedVerdict{}, fmt.Errorf("verdict says %s agreed, but it revealed %s, not %s", p, result, v.Accepted)
		case side == "agreed":
			out.Agreed = append(out.Agreed, p)
		case has && exact && v.Accepted != "" && result == v.Accepted:
			return CheckedVerdict{}, fmt.Errorf("verdict says %s dissented, but it revealed the accepted result", p)
		case has:
			out.Dissented = append(out.Dissented, p)
		default:
			out.Unproven = append(out.Unproven, p)
		}
	}
	if v.Accepted != "" && len(out.Agreed) < spec.Verify.M() {
		return CheckedVerdict{}, fmt.Errorf("verdict accepts %s with %d agreeing, the job needs %d", v.Accepted, len(out.Agreed), spec.Verify.M())
	}
	for _, l := range [][]peer.ID{out.Agreed, out.Dissented, out.Unproven} {
		slices.Sort(l)
	}
	return out, nil
}

// checkRejection holds a rejection to what verify.Decide, the submitter's
// own rule, makes of its carried reveals: no M of them may agree (compared
// by CID, all a third party can do; equal CIDs agree under every policy),
// and a dissenter it names must not have revealed a result, since in a
// rejection only failed workers are proven wrong.
func checkRejection(spec Spec, revealed map[peer.ID]string, named map[peer.ID]string) error {
	quorum := spec.Verify.CheckedQuorum() // a spot check is rejected only once checked (verify.Next)
	reports := make([]verify.Report, 0, len(revealed))
	for p, r := range revealed {
		reports = append(reports, verify.Report{Worker: p, Result: r})
	}
	slices.SortFunc(reports, func(a, b verify.Report) int { return strings.Compare(string(a.Worker), string(b.Worker)) })
	out, err := verify.Decide(context.Background(), quorum, reports, len(reports), nil)
	if err != nil {
		return err
	}
	if out.Accepted != "" {
		return fmt.Errorf("%w: %s", ErrForgedRejection, out.Reason)
	}
	for p, side := range named {
		if side == "agreed" {
			return fmt.Errorf("%w: it names %s as agreeing with no accepted result", ErrForgedRejection, p)
		}
		if r, ok := revealed[p]; ok && r != "" {
			return fmt.Errorf("%w: it names %s a dissenter, but %s revealed result %s", ErrForgedRejection, p, p, r)
		}
	}
	return nil
}
