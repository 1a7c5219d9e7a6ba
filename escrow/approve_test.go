package escrow

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gagliardetto/solana-go"

	"github.com/vft-network/vft/chain"
)

// TestApprove: what a worker co-signs, decided from its own record of the
// job. A refund takes the work for nothing, so a worker that committed a
// result signs one only on evidence that no quorum was reached (item 2 of
// issue #13); a release must pay every agreeing worker and only the job's
// workers (item 6).
func TestApprove(t *testing.T) {
	key := func() solana.PublicKey { return solana.NewWallet().PublicKey() }
	sub, a, b, c, outsider := key(), key(), key(), key(), key()
	const reward, good, bad, other = 1000, "bafy-good", "bafy-bad", "bafy-other"
	stake := func(edit func(*Stake)) Stake {
		s := Stake{Terms: Terms{Submitter: sub, Workers: []solana.PublicKey{a, b, c}, Quorum: 2, Reward: reward, Amount: 3 * reward},
			Self: a, Exact: true, Result: good}
		edit(&s)
		return s
	}
	accepted := &Verdict{Accepted: good, Agreed: []solana.PublicKey{a, b, c},
		Revealed: map[solana.PublicKey]string{a: good, b: good, c: good}}
	refund := SignRequest{Kind: KindRefund, Payouts: []chain.Payout{{Recipient: sub, Amount: 3 * reward}}}
	release := func(result string, pay ...chain.Payout) SignRequest {
		return SignRequest{Kind: KindRelease, ResultCID: result, Payouts: pay}
	}
	p := func(to solana.PublicKey, amount uint64) chain.Payout {
		return chain.Payout{Recipient: to, Amount: amount}
	}
	none := func(*Stake) {}

	cases := []struct {
		name    string
		stake   Stake
		req     SignRequest
		wantErr string // empty: signed
	}{
		// Refunds.
		{"refund after revealing, no verdict (the theft)", stake(none), refund, "holds no verdict"},
		{"refund after an accepted verdict", stake(func(s *Stake) { s.Verdict = accepted }), refund, "accepted result"},
		{"refund on a rejection whose reveals all differ", stake(func(s *Stake) {
			s.Verdict = &Verdict{Revealed: map[solana.PublicKey]string{a: good, b: bad, c: other}}
		}), refund, ""},
		{"refund on a rejection that leaves out the others' reveals", stake(func(s *Stake) {
			s.Verdict = &Verdict{Revealed: map[solana.PublicKey]string{a: good}}
		}), refund, "could reach the quorum"},
		{"refund on a rejection that leaves out this worker's reveal", stake(func(s *Stake) {
			s.Verdict = &Verdict{Revealed: map[solana.PublicKey]string{b: bad, c: other}}
		}), refund, "could reach the quorum"},
		{"refund on a rejection of two agreeing reveals", stake(func(s *Stake) {
			s.Verdict = &Verdict{Revealed: map[solana.PublicKey]string{a: good, b: good, c: bad}}
		}), refund, "could reach the quorum"},
		{"refund on a rejection in tolerance mode", stake(func(s *Stake) {
			s.Exact = false
			s.Verdict = &Verdict{Revealed: map[solana.PublicKey]string{a: good, b: bad, c: other}}
		}), refund, "compares results by content"},
		{"refund from a worker that never committed, job over", stake(func(s *Stake) { s.Result, s.Ended = "", true }), refund, ""},
		{"refund from a worker still running", stake(func(s *Stake) { s.Result = "" }), refund, "still running"},

		// Releases.
		{"release paying the agreeing workers", stake(func(s *Stake) { s.Verdict = accepted }),
			release(good, p(a, reward), p(b, reward), p(c, reward)), ""},
		{"release leaving out an agreeing worker", stake(func(s *Stake) { s.Verdict = accepted }),
			release(good, p(a, reward), p(b, reward), p(sub, reward)), "does not pay " + c.String()},
		{"release paying a stranger instead of a worker", stake(func(s *Stake) {
			s.Verdict = &Verdict{Accepted: good, Agreed: []solana.PublicKey{a, b}}
		}), release(good, p(a, reward), p(b, reward), p(outsider, reward)), "not one of the job's 3 workers"},
		{"release paying one worker twice", stake(func(s *Stake) {
			s.Verdict = &Verdict{Accepted: good, Agreed: []solana.PublicKey{a, b}}
		}), release(good, p(a, reward), p(b, reward), p(b, reward)), "twice"},
		{"release without a verdict before the deadline", stake(none),
			release(good, p(a, reward), p(b, reward), p(sub, reward)), "no verdict from the submitter"},
		{"rescue after the deadline, below the quorum", stake(func(s *Stake) { s.PastDeadline = true }),
			release(good, p(a, reward), p(sub, 2*reward)), "fewer than the quorum"},
		{"rescue after the deadline, the quorum paid", stake(func(s *Stake) { s.PastDeadline = true }),
			release(good, p(a, reward), p(b, reward), p(sub, reward)), ""},
		{"release of another result", stake(func(s *Stake) { s.PastDeadline = true }),
			release(bad, p(a, reward), p(b, reward), p(sub, reward)), "this worker computed"},
		{"release not paying this worker", stake(func(s *Stake) { s.Verdict = &Verdict{Accepted: good, Agreed: []solana.PublicKey{b, c}} }),
			release(good, p(b, reward), p(c, reward), p(sub, reward)), "does not pay this worker"},
		{"release of a wrong amount", stake(func(s *Stake) { s.Verdict = &Verdict{Accepted: good, Agreed: []solana.PublicKey{a, b}} }),
			release(good, p(a, reward+1), p(b, reward), p(sub, reward-1)), "the reward is"},
		{"release moving less than the escrow", stake(func(s *Stake) { s.Verdict = &Verdict{Accepted: good, Agreed: []solana.PublicKey{a, b}} }),
			release(good, p(a, reward), p(b, reward)), "moves 2000 of the escrow's 3000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Approve(tc.stake, tc.req)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotApproved) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Approve = %v, want ErrNotApproved with %q", err, tc.wantErr)
			}
		})
	}
}

// TestReleasePayouts: the split a release sender computes, and that the
// workers it pays approve it: what ReleasePayouts plans is what Approve
// signs, for every set of agreeing workers a verdict or a rescue can name.
func TestReleasePayouts(t *testing.T) {
	key := func() solana.PublicKey { return solana.NewWallet().PublicKey() }
	sub, a, b, c, outsider := key(), key(), key(), key(), key()
	const reward = 1000
	terms := Terms{JobID: "job-1", Submitter: sub, Workers: []solana.PublicKey{a, b, c}, Quorum: 2, Reward: reward, Amount: 3 * reward}
	p := func(to solana.PublicKey, amount uint64) chain.Payout {
		return chain.Payout{Recipient: to, Amount: amount}
	}

	cases := []struct {
		name     string
		agreeing []solana.PublicKey
		want     []chain.Payout
		wantErr  string
	}{
		{"all three agree: nothing goes back", []solana.PublicKey{a, b, c}, []chain.Payout{p(a, reward), p(b, reward), p(c, reward)}, ""},
		{"two agree: the third share goes back to the submitter", []solana.PublicKey{b, a}, []chain.Payout{p(b, reward), p(a, reward), p(sub, reward)}, ""},
		{"one agrees", []solana.PublicKey{c}, []chain.Payout{p(c, reward), p(sub, 2*reward)}, ""},
		{"nobody agrees", nil, nil, "at least one agreeing worker"},
		{"a stranger", []solana.PublicKey{a, outsider}, nil, "is not one of the job's 3 workers"},
		{"a worker twice", []solana.PublicKey{a, a}, nil, "listed twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			payouts, approvers, err := ReleasePayouts(terms, tc.agreeing)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReleasePayouts = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(payouts, tc.want) || !slices.Equal(approvers, tc.agreeing) {
				t.Fatalf("payouts %v approvers %v, want %v approvers %v", payouts, approvers, tc.want, tc.agreeing)
			}
			// Each approver signs it, after a verdict naming them and in a
			// rescue past the deadline once the quorum is paid.
			req := SignRequest{Kind: KindRelease, ResultCID: "bafy-good", Payouts: payouts}
			for _, self := range approvers {
				withVerdict := Stake{Terms: terms, Self: self, Exact: true, Result: "bafy-good",
					Verdict: &Verdict{Accepted: "bafy-good", Agreed: tc.agreeing}}
				if err := Approve(withVerdict, req); err != nil {
					t.Errorf("%s refuses the split after a verdict: %v", self, err)
				}
				rescue := Stake{Terms: terms, Self: self, Exact: true, Result: "bafy-good", PastDeadline: true}
				err := Approve(rescue, req)
				if enough := len(approvers) >= terms.Quorum; (err == nil) != enough {
					t.Errorf("%s in a rescue paying %d workers (quorum %d): Approve = %v", self, len(approvers), terms.Quorum, err)
				}
			}
		})
	}
}

func TestRefundApproversAndRescue(t *testing.T) {
	w := []solana.PublicKey{solana.NewWallet().PublicKey(), solana.NewWallet().PublicKey()}
	if got := RefundApprovers(Terms{Workers: w}); !slices.Equal(got, w) {
		t.Fatalf("RefundApprovers = %v, want every worker %v", got, w)
	}
	for _, m := range []int{1, 2, 5} {
		_, threshold, err := Threshold(MaxWorkers, m)
		if err != nil {
			t.Fatal(err)
		}
		if got := WorkersToRescue(m); got != threshold {
			t.Fatalf("WorkersToRescue(%d) = %d, the multisig threshold is %d", m, got, threshold)
		}
	}
}
