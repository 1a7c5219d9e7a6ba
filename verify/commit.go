package verify

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"
)

// SaltSize is the size of a commitment's random salt.
const SaltSize = 32

// NewSalt returns a fresh random salt.
func NewSalt() []byte {
	s := make([]byte, SaltSize)
	rand.Read(s) // never fails (crypto/rand panics on a broken source)
	return s
}

// Commit is H("vft/commit/1" ‖ resultCID ‖ workerID ‖ salt). Binding the
// worker's ID means a copied commitment cannot be opened by the copier,
// and the salt means a commitment does not reveal a guessable result.
func Commit(resultCID string, worker peer.ID, salt []byte) []byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte("vft/commit/1"), []byte(resultCID), []byte(worker), salt} {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(part)>>24), byte(len(part)>>16), byte(len(part)>>8), byte(len(part))
		h.Write(n[:]) // length-prefixed, so parts cannot run into each other
		h.Write(part)
	}
	return h.Sum(nil)
}

// ErrRevealMismatch is a reveal that does not open its commitment.
var ErrRevealMismatch = errors.New("reveal does not match its commitment")

// CheckReveal checks that (resultCID, salt) opens worker's commitment.
func CheckReveal(commitment []byte, resultCID string, worker peer.ID, salt []byte) error {
	if len(salt) != SaltSize || !bytes.Equal(commitment, Commit(resultCID, worker, salt)) {
		return ErrRevealMismatch
	}
	return nil
}
