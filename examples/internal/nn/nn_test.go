package nn

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestTrainedModelClassifiesBlobs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs, ys := Blobs(rng, 300, 3)
	m := Train(rng, xs, ys, 8, 3, 20, 0.01)

	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	m2, err := DecodeMLP(&buf)
	if err != nil {
		t.Fatal(err)
	}
	test, labels := Blobs(rng, 60, 3)
	correct := 0
	for i, x := range test {
		c, p := m2.Predict(x)
		if c == labels[i] {
			correct++
		}
		var sum float32
		for _, v := range p {
			sum += v
		}
		if sum < 0.999 || sum > 1.001 {
			t.Fatalf("probabilities sum to %v", sum)
		}
	}
	if correct < 50 {
		t.Fatalf("%d/60 correct after training", correct)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, in := range []string{"", "VFTX\x01\x00\x00\x00", "VFTN\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00", "VFTN\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00"} {
		if _, err := DecodeMLP(bytes.NewReader([]byte(in))); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
