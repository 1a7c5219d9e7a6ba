package job

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/wire"
)

// A verdict is evidence other nodes count in their reputation tables, so
// every way of lying in one must be refused: the checks of OpenVerdict.
func TestOpenVerdict(t *testing.T) {
	submitter, _ := identity.Generate()
	stranger, _ := identity.Generate()
	var workers []*identity.Key
	for range 3 {
		k, _ := identity.Generate()
		workers = append(workers, k)
	}
	now := t0.Add(time.Minute)
	offer, err := NewOffer(submitter, validSpec(), t0)
	if err != nil {
		t.Fatal(err)
	}
	good, bad := fakeCID("good"), fakeCID("bad")
	reveal := func(k *identity.Key, job, result string) []byte {
		raw, err := wire.Seal(k, KindReveal, now, RevealMsg{Job: job, Result: result, Salt: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	id := offer.ID.String()
	honest := func() Verdict {
		return Verdict{Job: id, Offer: offer.Raw, Accepted: good,
			Agreed:    []string{workers[0].PeerID().String(), workers[1].PeerID().String()},
			Dissented: []string{workers[2].PeerID().String()},
			Reveals:   [][]byte{reveal(workers[0], id, good), reveal(workers[1], id, good), reveal(workers[2], id, bad)},
			Reasons:   map[string]string{workers[2].PeerID().String(): "revealed " + bad},
		}
	}
	cases := []struct {
		name    string
		signer  *identity.Key
		edit    func(*Verdict)
		wantErr string
	}{
		{"honest verdict", submitter, func(*Verdict) {}, ""},
		{"signed by someone who did not submit the job", stranger, func(*Verdict) {}, "not by its submitter"},
		{"offer of another job", submitter, func(v *Verdict) { v.Job = fakeCID("another job") }, "carries the offer of another"},
		{"agreeing worker revealed something else", submitter, func(v *Verdict) { v.Reveals[1] = reveal(workers[1], id, bad) }, "not " + good},
		{"dissenter revealed the accepted result", submitter, func(v *Verdict) { v.Reveals[2] = reveal(workers[2], id, good) }, "revealed the accepted result"},
		{"agreeing worker without a reveal", submitter, func(v *Verdict) { v.Reveals = v.Reveals[1:] }, "carries no reveal"},
		{"reveal forged for a worker", submitter, func(v *Verdict) { v.Reveals[0] = reveal(stranger, id, good) }, "does not name"},
		{"reveal about another job", submitter, func(v *Verdict) { v.Reveals[0] = reveal(workers[0], fakeCID("x"), good) }, "about"},
		{"below the quorum", submitter, func(v *Verdict) {
			v.Agreed, v.Dissented = v.Agreed[:1], append(v.Dissented, v.Agreed[1])
			v.Reveals = v.Reveals[:1]
		}, "the job needs 2"},
		{"a worker named twice", submitter, func(v *Verdict) { v.Dissented = append(v.Dissented, v.Agreed[0]) }, "twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := honest()
			tc.edit(&v)
			raw, err := wire.Seal(tc.signer, KindVerdict, now, v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := OpenVerdict(raw, now)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.Author != submitter.PeerID() || len(got.Agreed) != 2 || len(got.Dissented) != 1 || len(got.Unproven) != 0 {
					t.Fatalf("checked verdict %+v", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("OpenVerdict: %v, want an error saying %q", err, tc.wantErr)
			}
		})
	}

	// A tampered byte breaks the submitter's signature.
	raw, _ := wire.Seal(submitter, KindVerdict, now, honest())
	raw[len(raw)-1] ^= 1
	if _, err := OpenVerdict(raw, now); err == nil {
		t.Fatal("a tampered verdict was accepted")
	}
	// A dissenter the verdict has no reveal of is unproven: only the
	// author vouches for it.
	v := honest()
	v.Reveals = v.Reveals[:2]
	raw, _ = wire.Seal(submitter, KindVerdict, now, v)
	got, err := OpenVerdict(raw, now)
	if err != nil || len(got.Dissented) != 0 || len(got.Unproven) != 1 {
		t.Fatalf("verdict without the dissenter's reveal: %+v, %v", got, err)
	}
}

// TestVerdictOfManyFailuresFits: a verdict names every dissenter with a
// reason, and a failed worker's reason is its error, stderr tail and all
// (kilobytes). Found while writing the protocol spec (issue #21): with a
// handful of long failures an honest verdict outgrew MaxVerdictSize, every
// node refused it and the submitter was penalised. Reasons are cut to
// maxVerdictReason, so the most dissenters a job can have, each with a
// long error, fit in the 8 KiB a verdict has beside its offer and reveals.
func TestVerdictOfManyFailuresFits(t *testing.T) {
	long := "task trapped: stderr ends: " + strings.Repeat("panic: ünïcode déjà vu ", 200)
	v := Verdict{Job: fakeCID("job"), Accepted: "", Reasons: map[string]string{}}
	for range MaxRedundancy + 2 { // k and the tie-breakers
		k, _ := identity.Generate()
		id := k.PeerID().String()
		v.Dissented = append(v.Dissented, id)
		v.Agreed = append(v.Agreed, id) // the lists' worst case together
		v.Reasons[id] = verdictReason(long)
	}
	body, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if budget := MaxVerdictSize - MaxOfferSize - MaxRedundancy*1024; len(body) > budget {
		t.Fatalf("a verdict's lists and reasons take %d bytes, its budget is %d", len(body), budget)
	}
	r := verdictReason(long)
	if len(r) > maxVerdictReason || !strings.HasPrefix(long, strings.TrimSuffix(r, "…")) || !utf8.ValidString(r) {
		t.Fatalf("verdictReason = %q (%d bytes): want a valid prefix of at most %d bytes", r, len(r), maxVerdictReason)
	}
}
