package job

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/verify"
	"github.com/vft-network/vft/wire"
)

// This file is the submitter's side of verification: commitments come in,
// reveals are asked for once every worker has committed, the policy
// decides, the verdict is gossiped, and an accepted job is settled. The
// rules themselves live in the verify package.

// ErrWillNotPay marks a settlement failure that retrying cannot fix (the
// chain rejected the payout, the wallet lacks the funds): the job fails
// with it instead of staying in settling.
var ErrWillNotPay = errors.New("payment refused")

// ErrRewardTooSmall marks a job refused before it is offered because its
// reward could not be paid to a miner with an empty wallet.
var ErrRewardTooSmall = errors.New("reward too small to pay")

// handleCommit records a worker's commitment (or its failed run) and
// starts the reveal phase once every worker of the job has committed.
func (m *Market) handleCommit(st network.Stream) {
	serve(st, 4<<10, func(from peer.ID, req []byte) ([]byte, error) {
		var c CommitMsg
		if err := openDirect(req, KindCommit, from, m.now(), &c); err != nil {
			return nil, err
		}
		refuse := func(reason string) ([]byte, error) {
			return wire.Seal(m.key, KindAck, m.now(), AckMsg{Job: c.Job, Reason: reason})
		}
		rec, err := m.awaitWorker(c.Job, from)
		if err != nil || rec.Role != RoleSubmitter || !slices.Contains(rec.Workers, from) {
			return refuse("not a worker of this job")
		}
		if rec.State.Terminal() {
			return refuse("job is " + string(rec.State))
		}
		if c.Failure != "" && (c.Error == "" || len(c.Failure) > maxFailureSignature) {
			m.penalize(from, "sent a malformed failure for job "+c.Job)
			return refuse(fmt.Sprintf("a failure comes with its error and is at most %d bytes", maxFailureSignature))
		}
		if c.Error == "" && len(c.Commitment) != 32 {
			m.penalize(from, "sent a malformed commitment for job "+c.Job)
			return refuse("a commitment is 32 bytes")
		}
		if prev, ok := rec.Commits[from.String()]; ok && string(prev) != string(c.Commitment) {
			m.penalize(from, "tried to change its commitment for job "+c.Job)
			return refuse("a commitment cannot change")
		}
		rec, err = m.book.Update(m.ctx, c.Job, func(r *Record) {
			w := from.String()
			if _, done := r.Reports[w]; done {
				return // already revealed or failed
			}
			if c.Error != "" {
				if r.Reports == nil {
					r.Reports = map[string]string{}
				}
				r.Reports[w] = "error: " + c.Error
				if c.Failure != "" {
					if r.Failures == nil {
						r.Failures = map[string]string{}
					}
					r.Failures[w] = c.Failure
				}
				return
			}
			if r.Commits == nil {
				r.Commits = map[string][]byte{}
			}
			r.Commits[w] = c.Commitment
		})
		if err != nil {
			return nil, err
		}
		if rec.State == StateAssigned || rec.State == StateRunning {
			if moved, err := m.book.Move(m.ctx, rec.ID, StateVerifying, "first commitment in", nil); err == nil {
				rec = moved
			}
		}
		m.maybeReveal(rec)
		return wire.Seal(m.key, KindAck, m.now(), AckMsg{Job: c.Job, OK: true})
	})
}

// committed is true when every worker the job needs has committed or
// reported a failed run: nobody can copy from a reveal any more.
func committed(r Record) bool {
	if len(r.Workers) == 0 {
		return false
	}
	for _, w := range r.Workers {
		_, c := r.Commits[w.String()]
		_, f := r.Reports[w.String()]
		if !c && !f {
			return false
		}
	}
	return true
}

// maybeReveal starts the reveal phase of a fully committed job, once.
func (m *Market) maybeReveal(rec Record) {
	o, err := RecordedOffer(rec.Offer)
	if err != nil || rec.State.Terminal() || len(rec.Workers) < rec.needed(int(o.Spec.Verify.Workers)) || !committed(rec) {
		return
	}
	m.mu.Lock()
	if m.revealing[rec.ID] {
		m.mu.Unlock()
		return
	}
	m.revealing[rec.ID] = true
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			m.mu.Lock()
			delete(m.revealing, rec.ID)
			m.mu.Unlock()
		}()
		m.reveal(o)
	}()
}

// reveal asks each committed worker to open its commitment, records what
// each revealed (a reveal that does not open the commitment is a failed
// report and counts against the worker), then decides.
func (m *Market) reveal(o Offer) {
	id := o.ID.String()
	rec, err := m.book.Get(m.ctx, id)
	if err != nil {
		return
	}
	req, err := wire.Seal(m.key, KindRevealRequest, m.now(), RevealRequest{Job: id})
	if err != nil {
		return
	}
	for _, w := range rec.Workers {
		commitment, ok := rec.Commits[w.String()]
		if _, done := rec.Reports[w.String()]; done || !ok {
			continue
		}
		report, raw := m.askReveal(w, id, req, commitment)
		rec, err = m.book.Update(m.ctx, id, func(r *Record) {
			if r.Reports == nil {
				r.Reports = map[string]string{}
			}
			if r.Reveals == nil {
				r.Reveals = map[string][]byte{}
			}
			r.Reports[w.String()] = report
			if raw != nil {
				r.Reveals[w.String()] = raw
			}
		})
		if err != nil {
			return
		}
	}
	m.decide(rec)
}

// askReveal gets one worker's reveal, retrying a little, and checks it
// against the commitment. It returns the report and the signed reveal.
func (m *Market) askReveal(w peer.ID, id string, req, commitment []byte) (string, []byte) {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-m.ctx.Done():
				return "error: " + m.ctx.Err().Error(), nil
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		var reply []byte
		if reply, err = exchange(m.ctx, m.streams, w, ProtocolReveal, req, 2<<10); err != nil {
			continue
		}
		var r RevealMsg
		if err = openDirect(reply, KindReveal, w, m.now(), &r); err != nil {
			continue
		}
		if r.Job != id {
			err = fmt.Errorf("revealed job %s instead", r.Job)
			continue
		}
		if err := verify.CheckReveal(commitment, r.Result, w, r.Salt); err != nil {
			// Not kept as evidence: what it revealed proves nothing, and
			// it might even be the accepted result.
			m.penalize(w, fmt.Sprintf("job %s: %v", id, err))
			return "error: " + err.Error(), nil
		}
		return r.Result, reply
	}
	m.log.Info("no reveal", "job", id, "worker", w, "err", err)
	return "error: no reveal: " + err.Error(), nil
}

// decide hands the revealed reports to verify.Next, which owns the rule,
// and carries out its step: conclude (accept, reject, the program's
// failure) or ask for more workers (a spot check's verifier, a
// tie-breaker).
func (m *Market) decide(rec Record) {
	if rec.State.Terminal() || rec.State == StateSettling || len(rec.Workers) == 0 {
		return
	}
	o, err := RecordedOffer(rec.Offer)
	if err != nil {
		return
	}
	pol := o.Spec.Verify
	var reports []verify.Report
	for _, w := range rec.Workers {
		r, ok := rec.Reports[w.String()]
		if !ok {
			continue
		}
		failed, isErr := strings.CutPrefix(r, "error: ")
		if isErr {
			reports = append(reports, verify.Report{Worker: w, Failed: failed, Failure: rec.Failures[w.String()]})
		} else {
			reports = append(reports, verify.Report{Worker: w, Result: r})
		}
	}
	if len(reports) < len(rec.Workers) {
		return // reveals still to come
	}
	var match verify.Matcher
	if m.opts.Matcher != nil {
		if match, err = m.opts.Matcher(pol); err != nil {
			m.fail(rec.ID, "cannot compare results: "+err.Error())
			return
		}
		if match != nil {
			match = lenientMatcher{match, m.log.With("job", rec.ID)}
		}
	}
	step, err := verify.Next(m.ctx, pol, verify.Progress{
		Workers: len(rec.Workers), Reports: reports,
		SpotSecret: m.spotSecret(rec.ID),
		// An escrow locks the reward of exactly k workers, and a
		// tie-breaker needs time for one more run.
		MayAddWorkers: !o.Spec.Escrow && time.UnixMilli(o.Spec.Deadline).Sub(m.now()) > o.Spec.Needs.Timeout(),
	}, match)
	switch {
	case err != nil:
		m.fail(rec.ID, err.Error())
	case step.Workers > 0:
		m.needMore(rec.ID, step.Workers, step.Why)
	case step.Done:
		m.conclude(rec, o, step.Outcome)
	}
}

// lenientMatcher counts a pair it cannot compare (a result that cannot be
// fetched, a verifier module that traps on it) as not matching: one
// worker's unfetchable result must not fail the whole job.
type lenientMatcher struct {
	verify.Matcher
	log *slog.Logger
}

func (l lenientMatcher) Match(ctx context.Context, a, b string) (bool, error) {
	same, err := l.Matcher.Match(ctx, a, b)
	if err != nil {
		l.log.Info("results not comparable; counted as different", "a", a, "b", b, "err", err)
		return false, nil
	}
	return same, nil
}

// needMore raises the number of workers a job needs; collect assigns them.
func (m *Market) needMore(id string, n int, why string) {
	_, err := m.book.Update(m.ctx, id, func(r *Record) {
		r.Needed = n
		r.History = append(r.History, Change{State: r.State, At: m.now(), Note: why})
	})
	if err != nil {
		m.log.Warn("record need for workers", "job", id, "err", err)
	}
}

// maxVerdictReason bounds the reason a verdict gives for one dissenter: a
// failed worker's error (its stderr's end among it) runs to kilobytes, and
// k + MaxTieBreakers of them must fit, with the lists of workers, in the
// 8 KiB a verdict has beside its offer and reveals (MaxVerdictSize).
const maxVerdictReason = 200

// verdictReason is r cut to maxVerdictReason bytes, at a rune boundary.
func verdictReason(r string) string {
	if len(r) <= maxVerdictReason {
		return r
	}
	const more = "…"
	cut := maxVerdictReason - len(more)
	for cut > 0 && !utf8.RuneStart(r[cut]) {
		cut--
	}
	return r[:cut] + more
}

// conclude records and gossips the verdict, tells the reputation table,
// and settles an accepted job or fails a rejected one.
func (m *Market) conclude(rec Record, o Offer, out verify.Outcome) {
	v := Verdict{Job: rec.ID, Offer: rec.Offer, Accepted: out.Accepted, Reasons: map[string]string{}}
	vr := &VerdictRecord{Accepted: out.Accepted, Reason: out.Reason, Reasons: map[string]string{}, Author: m.key.PeerID().String(),
		Agreed: []string{}, Dissented: []string{}}
	for _, w := range out.Agreed {
		v.Agreed = append(v.Agreed, w.String())
	}
	for _, w := range out.Dissented {
		v.Dissented = append(v.Dissented, w.String())
		report := rec.Reports[w.String()]
		if failed, isErr := strings.CutPrefix(report, "error: "); isErr {
			v.Reasons[w.String()] = verdictReason(failed)
		} else if out.Accepted != "" {
			v.Reasons[w.String()] = "revealed " + report + ", not the accepted result"
		} else {
			v.Reasons[w.String()] = "revealed " + report
		}
	}
	for _, w := range rec.Missed {
		if !slices.Contains(v.Dissented, w) {
			v.Dissented = append(v.Dissented, w)
			v.Reasons[w] = "did not commit a result by the report deadline"
		}
	}
	for _, w := range rec.Workers {
		if raw, ok := rec.Reveals[w.String()]; ok {
			v.Reveals = append(v.Reveals, raw)
		}
	}
	vr.Agreed, vr.Dissented, vr.Reasons = v.Agreed, v.Dissented, v.Reasons
	if vr.Agreed == nil {
		vr.Agreed = []string{}
	}
	if vr.Dissented == nil {
		vr.Dissented = []string{}
	}
	if m.opts.OnVerdict != nil && !out.Unchecked {
		// An unchecked spot job is no evidence about its worker.
		m.opts.OnVerdict(CheckedVerdict{Author: m.key.PeerID(), Job: rec.ID, Accepted: out.Accepted,
			Agreed: out.Agreed, Dissented: out.Dissented, Unproven: decodePeers(rec.Missed)})
	}
	if raw, err := wire.Seal(m.key, KindVerdict, m.now(), v); err != nil {
		m.log.Warn("seal verdict", "job", rec.ID, "err", err)
	} else {
		m.announce(rec, raw)
	}
	setVerdict := func(r *Record) { r.Verdict = vr }
	if out.Accepted == "" {
		reason := out.Reason
		if out.Failure != "" {
			// The program's own words, from one of the runs that agree.
			reason += ": " + programOutput(rec, out.Failure)
		}
		if len(v.Reasons) > 0 {
			sep := ": "
			if out.Failure != "" {
				sep = "; besides, "
			}
			reason += sep + summarize(v.Reasons)
		}
		failed, err := m.book.Move(m.ctx, rec.ID, StateFailed, reason, func(r *Record) { setVerdict(r); r.Reason = reason })
		if err != nil {
			m.log.Warn("record rejection", "job", rec.ID, "err", err)
			return
		}
		m.refund(failed)
		return
	}
	accept := func(r *Record) { setVerdict(r); r.Result = out.Accepted }
	if m.opts.Settle == nil || o.Spec.Reward == 0 {
		m.book.Move(m.ctx, rec.ID, StateDone, out.Reason, accept)
		return
	}
	if _, err := m.book.Move(m.ctx, rec.ID, StateSettling, out.Reason+"; paying "+fmt.Sprint(len(out.Agreed))+" worker(s)", accept); err != nil {
		m.log.Warn("record acceptance", "job", rec.ID, "err", err)
		return
	}
	m.wg.Add(1)
	go m.settle(rec.ID)
}

// announce gossips a verdict for every node's reputation table and also
// hands it to each of the job's workers directly, so that a worker that
// just (re)joined the topic still learns how its job ended.
func (m *Market) announce(rec Record, raw []byte) {
	if m.verdicts != nil {
		if err := m.verdicts.Publish(m.ctx, raw); err != nil {
			m.log.Info("verdict not gossiped", "job", rec.ID, "err", err)
		}
	}
	for _, w := range rec.Workers {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if _, err := exchange(m.ctx, m.streams, w, ProtocolVerdict, raw, 1<<10); err != nil {
				m.log.Debug("verdict not delivered to worker", "job", rec.ID, "worker", w, "err", err)
			}
		}()
	}
}

// handleVerdict takes a verdict about one of this worker's jobs straight
// from its submitter.
func (m *Market) handleVerdict(st network.Stream) {
	serve(st, MaxVerdictSize, m.directVerdict)
}

// directVerdict asks, before checking any signature, whether the verdict
// is about a job this node works on for the peer that sent it: anyone can
// open the protocol, and the checks cost a signature per reveal.
func (m *Market) directVerdict(from peer.ID, req []byte) ([]byte, error) {
	peek, err := peekVerdict(req)
	if err != nil {
		return nil, fmt.Errorf("verdict from %s refused: %w", from, err)
	}
	rec, err := m.book.Get(m.ctx, peek.Job)
	if err != nil || rec.Role != RoleWorker {
		return nil, fmt.Errorf("verdict from %s refused: job %q is not one this node works on", from, peek.Job)
	}
	if o, err := RecordedOffer(rec.Offer); err != nil || o.Submitter != from {
		return nil, fmt.Errorf("verdict from %s refused: it did not submit job %s", from, peek.Job)
	}
	v, err := m.openVerdict(req)
	if err != nil || v.Author != from {
		return nil, fmt.Errorf("verdict from %s refused: %v", from, err)
	}
	m.workerVerdict(v)
	return wire.Seal(m.key, KindAck, m.now(), AckMsg{Job: v.Job, OK: true})
}

// openVerdict is OpenVerdict checked once per node: the gossip validator,
// the topic reader and the direct protocol see the same bytes.
func (m *Market) openVerdict(raw []byte) (CheckedVerdict, error) {
	return m.checkedVerdicts.open(raw, m.now())
}

// verdictCacheSize and verdictCacheTTL bound what a node remembers of the
// verdicts it checked: enough for the few seconds between a verdict's
// validation, its delivery on the topic, and its direct copy.
const (
	verdictCacheSize = 1024
	verdictCacheTTL  = 2 * time.Minute
)

// verdictCache remembers the outcome of checking a verdict, by the hash
// of its bytes. The zero value is ready; open is wire.Open unless a test
// sets it.
type verdictCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cachedVerdict
	order   [][32]byte // oldest first
	check   openFunc
}

type cachedVerdict struct {
	v   CheckedVerdict
	err error
	at  time.Time
}

func (c *verdictCache) open(raw []byte, now time.Time) (CheckedVerdict, error) {
	key := sha256.Sum256(raw)
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && now.Sub(e.at) < verdictCacheTTL && !e.at.After(now) {
		c.mu.Unlock()
		return e.v, e.err
	}
	check := c.check
	c.mu.Unlock()
	if check == nil {
		check = wire.Open
	}
	v, err := openVerdict(raw, now, check)
	if errors.Is(err, wire.ErrFuture) || errors.Is(err, wire.ErrStale) {
		return v, err // a matter of the clock, not of the bytes
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[32]byte]cachedVerdict{}
	}
	if _, ok := c.entries[key]; !ok {
		c.order = append(c.order, key)
	}
	c.entries[key] = cachedVerdict{v: v, err: err, at: now}
	for len(c.order) > verdictCacheSize {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	return v, err
}

func decodePeers(ids []string) []peer.ID {
	out := make([]peer.ID, 0, len(ids))
	for _, s := range ids {
		if p, err := peer.Decode(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// programOutput is the error one of the workers whose runs failed with
// signature reported: the exit or trap and the tail of the program's
// stderr, for the submitter to fix its program.
func programOutput(rec Record, signature string) string {
	for _, w := range rec.Workers {
		if rec.Failures[w.String()] == signature {
			return strings.TrimPrefix(rec.Reports[w.String()], "error: ")
		}
	}
	return signature
}

func summarize(reasons map[string]string) string {
	var parts []string
	for w, r := range reasons {
		parts = append(parts, shortPeer(w)+" "+r)
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

func shortPeer(s string) string {
	if len(s) > 12 {
		return "…" + s[len(s)-6:]
	}
	return s
}

// settle pays an accepted job's workers, retrying with backoff while the
// chain cannot be reached: the job stays settling and nothing is lost. A
// refusal that retrying cannot fix fails the job, its result kept.
func (m *Market) settle(id string) {
	defer m.wg.Done()
	noted := false
	for wait := time.Second; ; wait = min(2*wait, time.Minute) {
		rec, err := m.book.Get(m.ctx, id)
		if err != nil || rec.State != StateSettling {
			return
		}
		payouts, err := m.opts.Settle(m.ctx, rec)
		if err == nil {
			rewards := 0
			for _, p := range payouts {
				if !p.Returned {
					rewards++
				}
			}
			paid := func(r *Record) { r.Payouts = payouts }
			if _, err := m.book.Move(m.ctx, id, StateDone, fmt.Sprintf("paid %d worker(s)", rewards), paid); errors.Is(err, ErrTransition) {
				// Cancelled while the payment was on its way: what was
				// sent is still recorded.
				m.book.Update(m.ctx, id, func(r *Record) {
					paid(r)
					r.History = append(r.History, Change{State: r.State, At: m.now(), Note: fmt.Sprintf("paid %d worker(s) before the cancel took effect", rewards)})
				})
			}
			return
		}
		if errors.Is(err, ErrWillNotPay) {
			reason := "verified, but not paid: " + err.Error()
			m.book.Move(m.ctx, id, StateFailed, reason, func(r *Record) { r.Reason = reason })
			return
		}
		m.log.Warn("settlement failed; retrying", "job", id, "err", err, "in", wait)
		if !noted {
			noted = true
			m.book.Update(m.ctx, id, func(r *Record) {
				r.History = append(r.History, Change{State: r.State, At: m.now(), Note: "payment not sent yet, retrying: " + err.Error()})
			})
		}
		select {
		case <-m.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// penalize counts a protocol violation against a peer.
func (m *Market) penalize(p peer.ID, reason string) {
	m.log.Info("peer penalised", "peer", p, "reason", reason)
	if m.opts.Penalize != nil {
		m.opts.Penalize(p, reason)
	}
}

// ValidateVerdict is the verdicts topic's GossipSub validator: a verdict
// must be signed by the submitter of the job it is about, and its evidence
// must hold (OpenVerdict). A bad one counts against its author.
func (m *Market) ValidateVerdict(_ context.Context, from peer.ID, data []byte) error {
	v, err := m.openVerdict(data)
	if err == nil && v.Author != from {
		err = fmt.Errorf("verdict signed by %s but published by %s", v.Author, from)
	}
	if err != nil {
		m.penalize(from, "bad verdict: "+err.Error())
	}
	return err
}

// readVerdicts feeds other submitters' verdicts to the reputation table,
// and ends this worker's own jobs as their submitter decided them.
func (m *Market) readVerdicts() {
	defer m.wg.Done()
	if m.verdicts == nil {
		return
	}
	for {
		_, data, err := m.verdicts.Next(m.ctx)
		if err != nil {
			return
		}
		v, err := m.openVerdict(data)
		if err != nil || v.Author == m.key.PeerID() {
			continue // invalid (the validator refused it) or our own
		}
		if m.opts.OnVerdict != nil {
			// Others' unproven claims are theirs alone to vouch for.
			m.opts.OnVerdict(CheckedVerdict{Author: v.Author, Job: v.Job, Accepted: v.Accepted, Agreed: v.Agreed, Dissented: v.Dissented})
		}
		m.workerVerdict(v)
	}
}

// workerVerdict ends this worker's record of a job its submitter decided.
func (m *Market) workerVerdict(v CheckedVerdict) {
	rec, err := m.book.Get(m.ctx, v.Job)
	if err != nil || rec.Role != RoleWorker || rec.State.Terminal() {
		return
	}
	o, err := RecordedOffer(rec.Offer)
	if err != nil || o.Submitter != v.Author {
		return
	}
	self := m.key.PeerID()
	vr := &VerdictRecord{Accepted: v.Accepted, Author: v.Author.String(), Agreed: []string{}, Dissented: []string{}}
	for _, p := range v.Agreed {
		vr.Agreed = append(vr.Agreed, p.String())
	}
	for _, p := range append(slices.Clone(v.Dissented), v.Unproven...) {
		vr.Dissented = append(vr.Dissented, p.String())
	}
	if len(v.Revealed) > 0 {
		vr.Revealed = map[string]string{}
		for p, result := range v.Revealed {
			vr.Revealed[p.String()] = result
		}
	}
	to, note := StateFailed, "the submitter's verdict: this worker's result was not accepted"
	if slices.Contains(v.Agreed, self) {
		to, note = StateDone, "the submitter accepted this worker's result"
	}
	vr.Reason = note
	if _, err := m.book.Move(m.ctx, v.Job, to, note, func(r *Record) {
		r.Verdict = vr
		if to == StateFailed {
			r.Reason = note
		}
	}); err != nil {
		m.log.Debug("record verdict", "job", v.Job, "err", err)
	}
}

// handleStarted moves one of our jobs to running when its first worker
// says it started: the submitter's view of the stages a user waits on.
func (m *Market) handleStarted(st network.Stream) {
	serve(st, 1<<10, func(from peer.ID, req []byte) ([]byte, error) {
		var s StartedMsg
		if err := openDirect(req, KindStarted, from, m.now(), &s); err != nil {
			return nil, err
		}
		rec, err := m.awaitWorker(s.Job, from)
		if err == nil && rec.Role == RoleSubmitter && rec.State == StateAssigned && slices.Contains(rec.Workers, from) {
			m.book.Move(m.ctx, s.Job, StateRunning, "a worker started", nil)
		}
		return wire.Seal(m.key, KindAck, m.now(), AckMsg{Job: s.Job, OK: true})
	})
}
