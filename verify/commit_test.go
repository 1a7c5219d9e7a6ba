package verify

import (
	"bytes"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestCommitReveal(t *testing.T) {
	const result = "bafyresult"
	alice, bob := peer.ID("alice"), peer.ID("bob")
	salt := NewSalt()
	commitment := Commit(result, alice, salt)

	tests := []struct {
		name   string
		result string
		worker peer.ID
		salt   []byte
		ok     bool
	}{
		{"opens", result, alice, salt, true},
		{"wrong salt", result, alice, NewSalt(), false},
		{"short salt", result, alice, salt[:8], false},
		{"wrong result", "bafyother", alice, salt, false},
		// Bob copied Alice's commitment: even knowing her result and salt
		// (both are revealed later) he cannot open it under his own ID.
		{"copied commitment opened by another worker", result, bob, salt, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckReveal(commitment, tt.result, tt.worker, tt.salt)
			if tt.ok && err != nil {
				t.Fatalf("CheckReveal: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrRevealMismatch) {
				t.Fatalf("CheckReveal = %v, want ErrRevealMismatch", err)
			}
		})
	}
}

func TestCommitHidesParts(t *testing.T) {
	salt := NewSalt()
	// Length prefixes keep ("ab","c") and ("a","bc") apart.
	if bytes.Equal(Commit("ab", "c", salt), Commit("a", "bc", salt)) {
		t.Fatal("commitments of differently split parts collide")
	}
	if bytes.Equal(NewSalt(), NewSalt()) {
		t.Fatal("two salts are equal")
	}
}
