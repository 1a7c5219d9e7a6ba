package wire

import (
	"errors"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/vft-network/vft/identity"
)

type ping struct {
	N    uint64 `cbor:"n"`
	Note string `cbor:"note"`
}

var lim = Limits{MaxSize: 1024, MaxAge: time.Minute, MaxFuture: 10 * time.Second}

func mustKey(t *testing.T) *identity.Key {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	key := mustKey(t)
	now := time.Now()
	data, err := Seal(key, "ping/1", now, ping{N: 7, Note: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(data, "ping/1", lim, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got.Signer != key.PeerID() || got.Time.UnixMilli() != now.UnixMilli() {
		t.Fatalf("signer %s time %v", got.Signer, got.Time)
	}
	var body ping
	if err := Unmarshal(got.Body, &body); err != nil || body.N != 7 {
		t.Fatalf("body %+v, %v", body, err)
	}
	// Deterministic: the same message signs to the same bytes.
	again, _ := Seal(key, "ping/1", now, ping{N: 7, Note: "hi"})
	if string(again) != string(data) {
		t.Fatal("sealing the same message twice gave different bytes")
	}
}

func TestOpenRejects(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	now := time.Now()
	good, _ := Seal(key, "ping/1", now, ping{N: 1})

	var env Envelope
	if err := cbor.Unmarshal(good, &env); err != nil {
		t.Fatal(err)
	}
	tamperedBody := env
	tamperedBody.Body, _ = Marshal(ping{N: 2})
	forgedSigner := env
	forgedSigner.Signer = []byte(other.PeerID())
	enc := func(e Envelope) []byte { b, _ := Marshal(e); return b }
	// A non-canonical encoding of the same envelope: keys in Go field order.
	nonCanonical, _ := cbor.Marshal(env)

	stale, _ := Seal(key, "ping/1", now.Add(-2*time.Minute), ping{N: 1})
	future, _ := Seal(key, "ping/1", now.Add(time.Minute), ping{N: 1})
	big, _ := Seal(key, "ping/1", now, ping{Note: string(make([]byte, 2000))})

	cases := []struct {
		name string
		data []byte
		kind string
		want error
	}{
		{"tampered body", enc(tamperedBody), "ping/1", ErrBadSignature},
		{"signer swapped", enc(forgedSigner), "ping/1", ErrBadSignature},
		{"wrong kind", good, "pong/1", ErrWrongKind},
		{"stale", stale, "ping/1", ErrStale},
		{"future", future, "ping/1", ErrFuture},
		{"oversize", big, "ping/1", ErrTooLarge},
		{"garbage", []byte{0xff, 0x00}, "ping/1", ErrMalformed},
		{"non-canonical", nonCanonical, "ping/1", ErrMalformed},
	}
	// A cache that has seen the good, the stale and the future message's
	// signatures check out must refuse the same cases: it skips only the
	// signature check, and only for the exact bytes it saw pass.
	warm := NewSigCache(16)
	for _, m := range []struct {
		data []byte
		at   time.Time
	}{{good, now}, {stale, now.Add(-2 * time.Minute)}, {future, now.Add(time.Minute)}} {
		if _, err := warm.Open(m.data, "ping/1", lim, m.at); err != nil {
			t.Fatal(err)
		}
	}
	openers := []struct {
		name string
		open func([]byte, string, Limits, time.Time) (Opened, error)
	}{{"Open", Open}, {"SigCache.Open", warm.Open}}
	for _, o := range openers {
		for _, tc := range cases {
			t.Run(o.name+"/"+tc.name, func(t *testing.T) {
				_, err := o.open(tc.data, tc.kind, lim, now)
				if !errors.Is(err, tc.want) {
					t.Fatalf("%s = %v, want %v", o.name, err, tc.want)
				}
			})
		}
	}
}

// The same bytes cost one signature check per cache, a forgotten one is
// checked again, and a failed check is not remembered.
func TestSigCacheChecksTheSameBytesOnce(t *testing.T) {
	key := mustKey(t)
	now := time.Now()
	var msgs [3][]byte
	for i := range msgs {
		msgs[i], _ = Seal(key, "ping/1", now, ping{N: uint64(i)})
	}
	c := NewSigCache(2)
	for range 3 {
		if _, err := c.Open(msgs[0], "ping/1", lim, now); err != nil {
			t.Fatal(err)
		}
	}
	if c.verified != 1 {
		t.Fatalf("3 opens of the same bytes verified %d signatures, want 1", c.verified)
	}
	c.Open(msgs[1], "ping/1", lim, now)
	c.Open(msgs[2], "ping/1", lim, now) // msgs[0], the oldest, is forgotten
	c.Open(msgs[0], "ping/1", lim, now)
	if c.verified != 4 {
		t.Fatalf("verified %d signatures, want 4: the forgotten message checked again", c.verified)
	}

	var env Envelope
	Unmarshal(msgs[1], &env)
	env.Sig[0] ^= 1
	bad, _ := Marshal(env)
	for range 2 {
		if _, err := c.Open(bad, "ping/1", lim, now); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("a bad signature opened as %v", err)
		}
	}
	if c.verified != 4 || len(c.known) != 2 {
		t.Fatalf("a bad signature was remembered: %d verified, %d known", c.verified, len(c.known))
	}
}

func TestUnmarshalRejectsUnknownFields(t *testing.T) {
	data, _ := Marshal(map[string]any{"n": 1, "note": "x", "extra": true})
	var p ping
	if err := Unmarshal(data, &p); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Unmarshal with an unknown field = %v, want ErrMalformed", err)
	}
}
