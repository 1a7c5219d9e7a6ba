package verify

import (
	"fmt"
	"math"
	"testing"
)

// jobSecret stands for the market's per-job secret, its signature over
// "vft/spot/"‖jobID: one secret per job, unknown to the workers.
func jobSecret(key string, i int) []byte { return fmt.Appendf(nil, "%s/vft/spot/job-%d", key, i) }

func TestSpotDrawFrequency(t *testing.T) {
	const n = 10_000
	for _, p := range []float64{0, 0.01, 0.1, 0.5, 1} {
		hits := 0
		for i := range n {
			if SpotDraw(jobSecret("submitter", i), p) {
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
	differ := 0
	for i := range 1000 {
		a, b := jobSecret("submitter a", i), jobSecret("submitter b", i)
		if SpotDraw(a, 0.5) != SpotDraw(a, 0.5) {
			t.Fatalf("job %d: the draw is not deterministic", i)
		}
		if SpotDraw(a, 0.5) != SpotDraw(b, 0.5) {
			differ++
		}
	}
	// Without the secret a worker's guess is a coin toss: about half differ.
	if differ < 400 || differ > 600 {
		t.Fatalf("another secret changed %d of 1000 draws, want about 500", differ)
	}
}
