package verify

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestSpotDrawFrequency(t *testing.T) {
	secret := []byte("submitter secret")
	const n = 10_000
	for _, p := range []float64{0, 0.01, 0.1, 0.5, 1} {
		hits := 0
		for i := range n {
			if SpotDraw(secret, fmt.Sprintf("job-%d", i), p) {
				hits++
			}
		}
		freq := float64(hits) / n
		// Five standard deviations: a correct draw fails about once in
		// three million runs.
		if dev := 5 * math.Sqrt(p*(1-p)/n); math.Abs(freq-p) > dev {
			t.Errorf("p=%g: %d of %d jobs drawn (%.4f), want within %.4f", p, hits, n, freq, dev)
		}
	}
}

func TestSpotDrawIsKeyed(t *testing.T) {
	a, b := []byte("secret a"), []byte("secret b")
	differ := 0
	for i := range 1000 {
		job := fmt.Sprintf("job-%d", i)
		if SpotDraw(a, job, 0.5) != SpotDraw(a, job, 0.5) {
			t.Fatalf("%s: the draw is not deterministic", job)
		}
		if SpotDraw(a, job, 0.5) != SpotDraw(b, job, 0.5) {
			differ++
		}
	}
	// Without the secret a worker's guess is a coin toss: about half differ.
	if differ < 400 || differ > 600 {
		t.Fatalf("another secret changed %d of 1000 draws, want about 500", differ)
	}
}

func TestPickVerifier(t *testing.T) {
	secret := []byte("submitter secret")
	cands := []peer.ID{"a", "b", "c", "d"}
	tests := []struct {
		name       string
		candidates []peer.ID
		exclude    []peer.ID
		ok         bool
		allowed    []peer.ID
	}{
		{"no exclusion", cands, nil, true, cands},
		{"the worker never checks itself", cands, []peer.ID{"b"}, true, []peer.ID{"a", "c", "d"}},
		{"one left", cands, []peer.ID{"a", "b", "c"}, true, []peer.ID{"d"}},
		{"all excluded", cands, cands, false, nil},
		{"no candidates", nil, nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 500 {
				job := fmt.Sprintf("job-%d", i)
				got, ok := PickVerifier(secret, job, tt.candidates, tt.exclude)
				if ok != tt.ok || (ok && !slices.Contains(tt.allowed, got)) {
					t.Fatalf("%s: PickVerifier = %q, %v; want one of %v", job, got, ok, tt.allowed)
				}
			}
		})
	}
}

func TestPickVerifierUniformAndDeterministic(t *testing.T) {
	secret := []byte("submitter secret")
	cands := []peer.ID{"a", "b", "c", "d"}
	reversed := slices.Clone(cands)
	slices.Reverse(reversed)
	counts := map[peer.ID]int{}
	const n = 10_000
	for i := range n {
		job := fmt.Sprintf("job-%d", i)
		got, _ := PickVerifier(secret, job, cands, nil)
		if again, _ := PickVerifier(secret, job, reversed, nil); again != got {
			t.Fatalf("%s: picked %q, then %q from the same candidates in another order", job, got, again)
		}
		counts[got]++
	}
	for _, c := range cands {
		// Expected 2500, standard deviation about 43.
		if counts[c] < 2250 || counts[c] > 2750 {
			t.Errorf("%s picked %d times of %d, want about %d", c, counts[c], n, n/len(cands))
		}
	}
}
