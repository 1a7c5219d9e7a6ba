package protodoc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/escrow"
	"github.com/vft-network/vft/executor/native"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/heartbeat"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/verify"
	"github.com/vft-network/vft/wire"
)

var update = flag.Bool("update", false, "rewrite docs/vectors/ from the code")

const vectorsDir = "../../docs/vectors"

// TestVectorsAreCurrent: the vectors on disk are what the code makes
// (signatures are deterministic: ed25519 over fixed keys and times).
// -update rewrites them.
func TestVectorsAreCurrent(t *testing.T) {
	set, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	for file, vs := range set {
		want, err := json.MarshalIndent(vs, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		path := filepath.Join(vectorsDir, file)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v: run go test ./internal/protodoc -update", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from what the code makes now: if the change is intended, run go test ./internal/protodoc -update and review the diff (a changed byte form is a protocol change, see PROTOCOL.md, Versioning)", path)
		}
	}
}

func loadVectors(t *testing.T) map[string]Vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in %s (%v)", vectorsDir, err)
	}
	all := map[string]Vector{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var vs []Vector
		if err := json.Unmarshal(data, &vs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range vs {
			if _, dup := all[v.Name]; dup {
				t.Fatalf("two vectors named %s", v.Name)
			}
			all[v.Name] = v
		}
	}
	return all
}

// TestVectorsReplay runs every vector through the code a receiving node
// runs for its kind, at the vector's clock, and checks the outcome.
func TestVectorsReplay(t *testing.T) {
	all := loadVectors(t)
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	kinds := map[string]bool{}
	for _, name := range names {
		v := all[name]
		t.Run(name, func(t *testing.T) {
			err := replay(t, v, all)
			switch {
			case v.Valid && err != nil:
				t.Fatalf("valid vector refused: %v", err)
			case !v.Valid && err == nil:
				t.Fatalf("invalid vector accepted (want an error containing %q)", v.Error)
			case !v.Valid && !strings.Contains(err.Error(), v.Error):
				t.Fatalf("refused with %q, want it to contain %q", err, v.Error)
			}
			if v.Valid {
				kinds[v.Kind] = true
			}
		})
	}
	// Every kind on the wire has at least one valid example.
	for _, k := range []string{heartbeat.Kind, job.KindOffer, job.KindCancel, job.KindBid, job.KindAck, job.KindInvite, job.KindAssign,
		job.KindStarted, job.KindProgress, job.KindCommit, job.KindRevealRequest, job.KindReveal, job.KindVerdict, escrow.KindSignRequest, escrow.KindSignReply} {
		if !kinds[k] {
			t.Errorf("no valid vector of kind %s", k)
		}
	}
}

func replay(t *testing.T, v Vector, all map[string]Vector) error {
	raw := v.EnvelopeBytes()
	now := time.UnixMilli(v.NowMS)
	signer, err := peer.Decode(v.Signer)
	if err != nil {
		t.Fatalf("signer %q: %v", v.Signer, err)
	}
	if b, _ := hex.DecodeString(v.SignerBytes); string(b) != string(signer) {
		t.Fatalf("signer_bytes_hex is not the binary form of %s", v.Signer)
	}
	switch v.Kind {
	case heartbeat.Kind:
		// The real topic validator, on a fresh node's table.
		key, _ := Key(99)
		svc, err := heartbeat.New(heartbeat.DefaultConfig(), key, nil, false, slog.New(slog.DiscardHandler), heartbeat.Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return svc.Validate(context.Background(), signer, raw)
	case job.KindOffer:
		o, err := job.OpenOffer(raw, now)
		if err == nil && o.ID.String() != v.JobID {
			t.Fatalf("job ID %s, the vector says %s", o.ID, v.JobID)
		}
		return err
	case job.KindCancel:
		of := all[v.Offer]
		o, err := job.OpenOffer(of.EnvelopeBytes(), time.UnixMilli(of.NowMS))
		if err != nil {
			t.Fatalf("the cancel's offer %s: %v", v.Offer, err)
		}
		_, err = job.OpenCancel(raw, o, now)
		return err
	case job.KindVerdict:
		cv, err := job.OpenVerdict(raw, now)
		if err == nil && cv.Author != signer {
			t.Fatalf("verdict author %s, signer %s", cv.Author, signer)
		}
		return err
	case escrow.KindSignRequest:
		return openAs(raw, v.Kind, EscrowReqLimits, now, &escrow.SignRequest{})
	case escrow.KindSignReply:
		return openAs(raw, v.Kind, EscrowRepLimits, now, &escrow.SignReply{})
	case job.KindBid:
		return openAs(raw, v.Kind, DirectLimits, now, &job.BidMsg{})
	case job.KindAck:
		return openAs(raw, v.Kind, DirectLimits, now, &job.AckMsg{})
	case job.KindInvite:
		var inv job.InviteMsg
		if err := openAs(raw, v.Kind, DirectLimits, now, &inv); err != nil {
			return err
		}
		o, err := job.OpenOffer(inv.Offer, now)
		if err == nil && o.Submitter != signer {
			t.Fatalf("invitation signed by %s to bid on %s's offer", signer, o.Submitter)
		}
		return err
	case job.KindAssign:
		var a job.AssignMsg
		if err := openAs(raw, v.Kind, DirectLimits, now, &a); err != nil {
			return err
		}
		_, err := job.OpenOffer(a.Offer, now)
		return err
	case job.KindStarted:
		return openAs(raw, v.Kind, DirectLimits, now, &job.StartedMsg{})
	case job.KindProgress:
		return openAs(raw, v.Kind, DirectLimits, now, &job.ProgressMsg{})
	case job.KindCommit:
		var c job.CommitMsg
		err := openAs(raw, v.Kind, DirectLimits, now, &c)
		if err == nil && v.Commitment != "" && hex.EncodeToString(c.Commitment) != v.Commitment {
			t.Fatalf("commitment %x, the vector says %s", c.Commitment, v.Commitment)
		}
		return err
	case job.KindRevealRequest:
		return openAs(raw, v.Kind, DirectLimits, now, &job.RevealRequest{})
	case job.KindReveal:
		var r job.RevealMsg
		if err := openAs(raw, v.Kind, DirectLimits, now, &r); err != nil {
			return err
		}
		c, _ := hex.DecodeString(v.Commitment)
		return verify.CheckReveal(c, r.Result, signer, r.Salt)
	}
	t.Fatalf("no replay for kind %q", v.Kind)
	return errors.New("unreachable")
}

// openAs is what every direct-stream handler does first: wire.Open with
// the kind's limits, then a strict decode into the message type.
func openAs(raw []byte, kind string, lim Limits, now time.Time, body any) error {
	msg, err := wire.Open(raw, kind, wire.Limits{MaxSize: lim.MaxSize, MaxAge: lim.MaxAge, MaxFuture: lim.MaxFuture}, now)
	if err != nil {
		return err
	}
	return wire.Unmarshal(msg.Body, body)
}

// The executor kinds a vft binary registers (node/kinds.go): offers are
// validated by their rules.
func init() {
	job.RegisterKind(wasm.Kind{})
	job.RegisterKind(native.Kind{})
}
