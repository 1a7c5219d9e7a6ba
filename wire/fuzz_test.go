package wire

import (
	"bytes"
	"testing"
	"time"

	"github.com/vft-network/vft/identity"
)

// fuzzSeeds are real envelopes, signed as nodes sign them.
func fuzzSeeds(f *testing.F) (now time.Time) {
	key, err := identity.Generate()
	if err != nil {
		f.Fatal(err)
	}
	now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, body := range []any{ping{N: 7, Note: "hi"}, ping{}, map[string]any{"a": []any{1, "x", []byte{1}}}} {
		data, err := Seal(key, "ping/1", now, body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{0xa1, 0x64, 'k', 'i', 'n', 'd', 0x61, 'a'})
	f.Add([]byte{0xbf, 0xff})
	return now
}

// FuzzOpen: no input panics Open, what it accepts is signed, fresh and in
// the one byte form (re-encoding the envelope gives the same bytes), and a
// SigCache opens every input as Open does, the first time and again.
func FuzzOpen(f *testing.F) {
	now := fuzzSeeds(f)
	// One cache for the whole run: whatever it has remembered, it opens
	// each input exactly as Open does.
	cache := NewSigCache(64)
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxSize: 4096, MaxAge: time.Minute, MaxFuture: time.Minute}
		msg, err := Open(data, "ping/1", lim, now)
		for range 2 {
			cached, cachedErr := cache.Open(data, "ping/1", lim, now)
			if (err == nil) != (cachedErr == nil) || cached.Signer != msg.Signer || !bytes.Equal(cached.Body, msg.Body) {
				t.Fatalf("SigCache.Open = %v, %v; Open = %v, %v", cached, cachedErr, msg, err)
			}
		}
		if err != nil {
			return
		}
		var env Envelope
		if err := Unmarshal(data, &env); err != nil {
			t.Fatalf("Open accepted what Unmarshal refuses: %v", err)
		}
		if !bytes.Equal(env.Body, msg.Body) || msg.Signer == "" {
			t.Fatalf("Open returned a body or signer not from the envelope")
		}
	})
}

// FuzzUnmarshal: decoding never panics, and an accepted input re-encodes
// to itself (one byte form per message).
func FuzzUnmarshal(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var env Envelope
		if err := Unmarshal(data, &env); err == nil {
			again, err := Marshal(env)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("accepted envelope re-encodes differently: %x vs %x (%v)", again, data, err)
			}
		}
		var m map[string]any
		_ = Unmarshal(data, &m)
	})
}

// FuzzKindOf: no input panics KindOf, and a kind it reports for a message
// Open accepts is that message's kind.
func FuzzKindOf(f *testing.F) {
	now := fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, err := KindOf(data)
		if _, oerr := Open(data, "ping/1", Limits{MaxSize: 4096, MaxAge: time.Minute, MaxFuture: time.Minute}, now); oerr == nil {
			if err != nil || kind != "ping/1" {
				t.Fatalf("Open accepted a ping/1 that KindOf reads as %q, %v", kind, err)
			}
		}
	})
}
