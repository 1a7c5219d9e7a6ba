package nn

import (
	"math"
	"math/rand/v2"
)

// Blobs returns n points in the plane from `classes` Gaussian blobs whose
// centres sit on a circle of radius 3, with their labels.
func Blobs(rng *rand.Rand, n, classes int) ([][]float32, []int) {
	xs, ys := make([][]float32, n), make([]int, n)
	for i := range xs {
		c := i % classes
		angle := 2 * math.Pi * float64(c) / float64(classes)
		xs[i] = []float32{
			float32(3*math.Cos(angle) + rng.NormFloat64()),
			float32(3*math.Sin(angle) + rng.NormFloat64()),
		}
		ys[i] = c
	}
	return xs, ys
}

// Train fits a fresh MLP to (xs, ys) with plain stochastic gradient descent
// on the cross-entropy loss. The same rng gives the same weights on the
// same architecture.
func Train(rng *rand.Rand, xs [][]float32, ys []int, hidden, classes, epochs int, lr float32) *MLP {
	m := NewMLP(len(xs[0]), hidden, classes)
	scale := float32(1 / math.Sqrt(float64(m.In)))
	for i := range m.W1 {
		m.W1[i] = float32(rng.NormFloat64()) * scale
	}
	scale = float32(1 / math.Sqrt(float64(hidden)))
	for i := range m.W2 {
		m.W2[i] = float32(rng.NormFloat64()) * scale
	}
	order := make([]int, len(xs))
	for i := range order {
		order[i] = i
	}
	dh := make([]float32, hidden)
	for range epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, n := range order {
			x := xs[n]
			h, p := m.Forward(x)
			// dLoss/dlogit = p - onehot(y)
			p[ys[n]]--
			clear(dh)
			for o, g := range p {
				for j, hv := range h {
					dh[j] += g * m.W2[o*hidden+j]
					m.W2[o*hidden+j] -= lr * g * hv
				}
				m.B2[o] -= lr * g
			}
			for j, g := range dh {
				if h[j] <= 0 {
					continue
				}
				for i, xv := range x {
					m.W1[j*m.In+i] -= lr * g * xv
				}
				m.B1[j] -= lr * g
			}
		}
	}
	return m
}
