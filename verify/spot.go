package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Spot checks re-run a job only with probability p. That deters cheating
// only if a worker cannot tell which of its jobs will be checked, so the
// draw is keyed by a secret only the submitter holds: workers know the job
// ID, never the secret. The submitter can later reveal the secret to show
// the draw was honest.

// SpotDraw reports whether the job is spot-checked: HMAC-SHA256(secret,
// "vft/spot/"+jobID) read as a number in [0,1), below p.
func SpotDraw(secret []byte, jobID string, p float64) bool {
	return keyedUnit(secret, "vft/spot/"+jobID) < p
}

// PickVerifier chooses the peer that re-runs a job, uniformly among the
// candidates that are not excluded (the job's worker never checks itself),
// by the same keyed randomness. It reports false when no one is eligible.
// The pick does not depend on the candidates' order.
func PickVerifier(secret []byte, jobID string, candidates []peer.ID, exclude []peer.ID) (peer.ID, bool) {
	var eligible []peer.ID
	for _, c := range candidates {
		if !slices.Contains(exclude, c) && !slices.Contains(eligible, c) {
			eligible = append(eligible, c)
		}
	}
	if len(eligible) == 0 {
		return "", false
	}
	slices.Sort(eligible)
	// A separate label keeps the pick independent of the spot draw.
	hi, _ := bits.Mul64(keyed(secret, "vft/pick/"+jobID), uint64(len(eligible)))
	return eligible[hi], true
}

// keyed is the first 8 bytes of HMAC-SHA256(secret, msg).
func keyed(secret []byte, msg string) uint64 {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(msg))
	return binary.BigEndian.Uint64(mac.Sum(nil))
}

// keyedUnit maps keyed(secret, msg) to [0,1) with 53 bits, a float64's
// precision.
func keyedUnit(secret []byte, msg string) float64 {
	return float64(keyed(secret, msg)>>11) / (1 << 53)
}
