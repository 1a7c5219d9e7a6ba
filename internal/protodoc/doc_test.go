package protodoc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/escrow"
	"github.com/vft-network/vft/heartbeat"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/verify"
	"github.com/vft-network/vft/wire"
)

const protocolDoc = "../../docs/PROTOCOL.md"

// bodyTypes are the Go types of every message body and of the maps inside
// them, by the name PROTOCOL.md's `<!-- fields: NAME -->` comments use.
var bodyTypes = map[string]any{
	"heartbeat.Heartbeat": heartbeat.Heartbeat{},
	"heartbeat.GPU":       heartbeat.GPU{},
	"job.Spec":            job.Spec{},
	"job.Input":           job.Input{},
	"job.Resources":       job.Resources{},
	"verify.Policy":       verify.Policy{},
	"job.Cancel":          job.Cancel{},
	"job.BidMsg":          job.BidMsg{},
	"job.AckMsg":          job.AckMsg{},
	"job.InviteMsg":       job.InviteMsg{},
	"job.AssignMsg":       job.AssignMsg{},
	"job.StartedMsg":      job.StartedMsg{},
	"job.ProgressMsg":     job.ProgressMsg{},
	"job.CommitMsg":       job.CommitMsg{},
	"job.RevealRequest":   job.RevealRequest{},
	"job.RevealMsg":       job.RevealMsg{},
	"job.Verdict":         job.Verdict{},
	"escrow.SignRequest":  escrow.SignRequest{},
	"escrow.SignReply":    escrow.SignReply{},
	"chain.Payout":        chain.Payout{},
	"wire.Envelope":       wire.Envelope{},
}

// docRow is one row of a doc table: its cells, trimmed.
type docRow []string

// docTables returns each table that follows a `<!-- NAME -->` comment
// (`fields: X` or `limits`), by that comment's text, without the header
// and separator rows.
func docTables(t *testing.T) map[string][]docRow {
	t.Helper()
	f, err := os.Open(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tables := map[string][]docRow{}
	marker := regexp.MustCompile(`^<!-- (.+) -->$`)
	var current string
	var header int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := marker.FindStringSubmatch(line); m != nil {
			current, header = m[1], 0
			if _, dup := tables[current]; dup {
				t.Fatalf("PROTOCOL.md has two tables marked %q", current)
			}
			tables[current] = nil
			continue
		}
		if current == "" {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if header > 0 {
				current = "" // the table ended
			}
			continue
		}
		header++
		if header <= 2 {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		row := make(docRow, len(cells))
		for i, c := range cells {
			row[i] = strings.TrimSpace(c)
		}
		tables[current] = append(tables[current], row)
	}
	return tables
}

var firstCode = regexp.MustCompile("`([^`]+)`")

// wireFields are a struct type's CBOR keys (the cbor tag, or the json
// tag fxamacker/cbor falls back to) and whether each is omitempty.
func wireFields(typ reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, ok := f.Tag.Lookup("cbor")
		if !ok {
			tag, ok = f.Tag.Lookup("json")
		}
		name, opts, _ := strings.Cut(tag, ",")
		if !ok || name == "" {
			name = f.Name
		}
		if name == "-" {
			continue
		}
		out[name] = strings.Contains(opts, "omitempty")
	}
	return out
}

// TestDocFields: every message type's CBOR keys are in PROTOCOL.md's table
// for it, and no table lists a key the type lacks, and "optional" is said
// exactly of the omitempty keys.
func TestDocFields(t *testing.T) {
	tables := docTables(t)
	for name, v := range bodyTypes {
		rows, ok := tables["fields: "+name]
		if !ok {
			t.Errorf("PROTOCOL.md has no table marked <!-- fields: %s -->: document the type's CBOR keys", name)
			continue
		}
		want := wireFields(reflect.TypeOf(v))
		seen := map[string]bool{}
		for _, r := range rows {
			m := firstCode.FindStringSubmatch(r[0])
			if m == nil {
				t.Errorf("%s: row %q names no `key`", name, r[0])
				continue
			}
			key := m[1]
			seen[key] = true
			omit, ok := want[key]
			if !ok {
				t.Errorf("%s: PROTOCOL.md lists key %q, which the Go type does not have", name, key)
				continue
			}
			if len(r) < 3 {
				t.Errorf("%s: row %q has no required/optional column", name, key)
				continue
			}
			if doc := r[2]; (doc == "optional") != omit {
				t.Errorf("%s: PROTOCOL.md says %q is %s, the Go type says omitempty=%v (omitempty keys are optional, all others required)", name, key, doc, omit)
			}
		}
		for key := range want {
			if !seen[key] {
				t.Errorf("%s: CBOR key %q is missing from PROTOCOL.md's table", name, key)
			}
		}
	}
	for name := range tables {
		if typ, ok := strings.CutPrefix(name, "fields: "); ok {
			if _, known := bodyTypes[typ]; !known {
				t.Errorf("PROTOCOL.md marks a table for %s, which this test does not know: add it to bodyTypes", typ)
			}
		}
	}
}

// docLimit is one row of the limits table.
type docLimit struct {
	size           int
	age, future    time.Duration
	kind, travelOn string
}

func docLimits(t *testing.T) []docLimit {
	t.Helper()
	var out []docLimit
	for _, r := range docTables(t)["limits"] {
		if len(r) != 5 {
			t.Fatalf("limits row %q: want 5 cells", r)
		}
		size, err := strconv.Atoi(strings.Fields(r[2])[0])
		if err != nil || !strings.HasPrefix(strings.Fields(r[2])[1], "B") {
			t.Fatalf("limits row %s: size %q is not `N B …`", r[0], r[2])
		}
		age, err1 := time.ParseDuration(strings.Fields(r[3])[0])
		future, err2 := time.ParseDuration(strings.Fields(r[4])[0])
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("limits row %s: %v", r[0], err)
		}
		out = append(out, docLimit{size, age, future, r[0], r[1]})
	}
	if len(out) == 0 {
		t.Fatal("PROTOCOL.md has no <!-- limits --> table")
	}
	return out
}

// TestDocLimits holds the limits table to the code: to its exported
// constants where there are some, to its behaviour (a message just inside
// the documented limit passes, one just outside fails) where the limit is
// private to its package.
func TestDocLimits(t *testing.T) {
	check := func(d docLimit, l Limits) {
		t.Helper()
		if d.size != l.MaxSize || d.age != l.MaxAge || d.future != l.MaxFuture {
			t.Errorf("PROTOCOL.md limits for %s: %d B, %s, %s; the code: %d B, %s, %s", d.kind, d.size, d.age, d.future, l.MaxSize, l.MaxAge, l.MaxFuture)
		}
	}
	kinds := map[string]bool{}
	for _, d := range docLimits(t) {
		for _, m := range firstCode.FindAllStringSubmatch(d.kind, -1) {
			kinds[m[1]] = true
		}
		switch {
		case d.kind == "`heartbeat/2`":
			check(d, HeartbeatLimits)
			probeAge(t, d, func(at time.Time) error { return replayHeartbeatAt(at) })
		case d.kind == "`job-offer/1`":
			check(d, OfferLimits)
		case d.kind == "`job-cancel/1`":
			check(d, CancelLimits)
			probeAge(t, d, func(at time.Time) error { return cancelAt(at, "") })
			probeSize(t, d, func(pad int) error { return cancelAt(Now, strings.Repeat("x", pad)) })
		case d.kind == "`job-verdict/1`":
			check(d, VerdictLimits)
			probeAge(t, d, func(at time.Time) error { return verdictAt(at, Now) })
		case strings.HasPrefix(d.kind, "`job-reveal/1` inside a verdict"):
			check(d, RevealInVerdictLimits)
			probeAge(t, d, func(at time.Time) error { return verdictAt(Now, at) })
		case strings.HasPrefix(d.kind, "`job-offer/1` inside a verdict"):
			check(d, Limits{job.MaxOfferSize, 2 * job.MaxOfferAge, job.MaxOfferFuture})
		case strings.HasPrefix(d.kind, "`job-bid/1`"):
			// Private to job/ (directLimits); the vectors use these numbers.
			check(d, DirectLimits)
		case d.kind == "`escrow-sign/1`":
			check(d, EscrowReqLimits)
		case d.kind == "`escrow-signature/1`":
			check(d, EscrowRepLimits)
		default:
			t.Errorf("limits row %s: this test does not know it", d.kind)
		}
	}
	for _, k := range []string{heartbeat.Kind, job.KindOffer, job.KindCancel, job.KindVerdict, job.KindBid, job.KindAck, job.KindInvite, job.KindAssign,
		job.KindStarted, job.KindProgress, job.KindCommit, job.KindRevealRequest, job.KindReveal, escrow.KindSignRequest, escrow.KindSignReply} {
		if !kinds[k] {
			t.Errorf("kind %s is missing from PROTOCOL.md's limits table", k)
		}
	}
}

// probeAge: signed exactly at the documented age and future passes, a
// millisecond past either fails with the matching error.
func probeAge(t *testing.T, d docLimit, at func(time.Time) error) {
	t.Helper()
	for _, c := range []struct {
		when time.Time
		want error
	}{
		{Now.Add(-d.age), nil},
		{Now.Add(-d.age - time.Millisecond), wire.ErrStale},
		{Now.Add(d.future), nil},
		{Now.Add(d.future + time.Millisecond), wire.ErrFuture},
	} {
		err := at(c.when)
		if (c.want == nil && err != nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s signed %s from the receiver's clock: got %v, want %v (PROTOCOL.md: max age %s, max future %s)", d.kind, c.when.Sub(Now), err, c.want, d.age, d.future)
		}
	}
}

// probeSize: an envelope of exactly the documented size passes, one byte
// more fails as too large. pad makes the message that many bytes longer.
func probeSize(t *testing.T, d docLimit, at func(pad int) error) {
	t.Helper()
	for pad := 0; pad < d.size; pad++ {
		err := at(pad)
		if errors.Is(err, wire.ErrTooLarge) {
			// The first too-large size must be one over the limit.
			if prev := at(pad - 1); prev != nil {
				t.Errorf("%s: an envelope just under the documented %d B fails: %v", d.kind, d.size, prev)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("limit %d", d.size)) {
				t.Errorf("%s: refused as %v, PROTOCOL.md says the limit is %d B", d.kind, err, d.size)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", d.kind, err)
		}
	}
	t.Errorf("%s: no envelope up to %d B was refused as too large", d.kind, d.size)
}

// replayHeartbeatAt runs heartbeat-valid, signed at `at`, through a fresh
// node's topic validator at Now.
func replayHeartbeatAt(at time.Time) error {
	v, err := seal("probe", "", workerA, workerASeed, heartbeat.Kind, at, miner(), HeartbeatLimits)
	if err != nil {
		return err
	}
	key, _ := Key(99)
	svc, err := heartbeat.New(heartbeat.DefaultConfig(), key, nil, false, discard(), heartbeat.Options{Now: func() time.Time { return Now }})
	if err != nil {
		return err
	}
	return svc.Validate(ctxBackground(), workerA.PeerID(), v.EnvelopeBytes())
}

// probeOffer is the offer the probes cancel and judge: offer-valid.
var probeOffer = sync.OnceValues(func() (job.Offer, error) {
	set, err := Build()
	if err != nil {
		return job.Offer{}, err
	}
	return job.OpenOffer(set["jobs.json"][0].EnvelopeBytes(), Now)
})

// cancelAt runs a cancel of probeOffer signed at `at` with the given
// reason through job.OpenCancel at Now.
func cancelAt(at time.Time, reason string) error {
	o, err := probeOffer()
	if err != nil {
		return err
	}
	raw, err := job.NewCancel(submitter, o.ID, reason, at)
	if err != nil {
		return err
	}
	_, err = job.OpenCancel(raw, o, Now)
	return err
}

// verdictAt runs an accepted verdict on probeOffer, itself signed at
// `signed` and carrying two reveals signed at `revealed`, through
// job.OpenVerdict at Now.
func verdictAt(signed, revealed time.Time) error {
	o, err := probeOffer()
	if err != nil {
		return err
	}
	result := cidOf("result")
	var reveals [][]byte
	var agreed []string
	for _, k := range []byte{2, 3} {
		key, _ := Key(k)
		salt := make([]byte, verify.SaltSize)
		r, err := wire.Seal(key, job.KindReveal, revealed, job.RevealMsg{Job: o.ID.String(), Result: result, Salt: salt})
		if err != nil {
			return err
		}
		reveals = append(reveals, r)
		agreed = append(agreed, key.PeerID().String())
	}
	raw, err := wire.Seal(submitter, job.KindVerdict, signed, job.Verdict{Job: o.ID.String(), Offer: o.Raw, Accepted: result, Agreed: agreed, Reveals: reveals})
	if err != nil {
		return err
	}
	_, err = job.OpenVerdict(raw, Now)
	return err
}

func discard() *slog.Logger          { return slog.New(slog.DiscardHandler) }
func ctxBackground() context.Context { return context.Background() }
