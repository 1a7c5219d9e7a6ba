// Package nn is a two-layer perceptron (inputs → ReLU hidden layer →
// softmax), its file formats, and a small trainer for the nninfer example.
//
// weights.bin, little-endian:
//
//	4 bytes  magic "VFTN"
//	uint32   in, hidden, out
//	float32  W1[hidden][in], b1[hidden], W2[out][hidden], b2[out]
//
// x.bin (input vectors), little-endian:
//
//	4 bytes  magic "VFTX"
//	uint32   count, dim
//	float32  X[count][dim]
package nn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// MaxDim bounds every size read from a file.
const MaxDim = 1 << 16

// MLP is a two-layer perceptron.
type MLP struct {
	In, Hidden, Out int
	W1, B1, W2, B2  []float32
}

// NewMLP returns a zero network.
func NewMLP(in, hidden, out int) *MLP {
	return &MLP{In: in, Hidden: hidden, Out: out,
		W1: make([]float32, hidden*in), B1: make([]float32, hidden),
		W2: make([]float32, out*hidden), B2: make([]float32, out)}
}

// Forward returns the hidden activations and the class probabilities of x.
func (m *MLP) Forward(x []float32) (hidden, probs []float32) {
	hidden = make([]float32, m.Hidden)
	for h := range hidden {
		s := m.B1[h]
		for i, v := range x {
			s += float32(m.W1[h*m.In+i] * v)
		}
		hidden[h] = max(s, 0)
	}
	logits := make([]float32, m.Out)
	for o := range logits {
		s := m.B2[o]
		for h, v := range hidden {
			s += float32(m.W2[o*m.Hidden+h] * v)
		}
		logits[o] = s
	}
	return hidden, softmax(logits)
}

// Predict returns the most probable class of x and the probabilities.
func (m *MLP) Predict(x []float32) (int, []float32) {
	_, p := m.Forward(x)
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best, p
}

func softmax(z []float32) []float32 {
	top := z[0]
	for _, v := range z {
		top = max(top, v)
	}
	var sum float64
	out := make([]float32, len(z))
	for i, v := range z {
		e := math.Exp(float64(v - top))
		out[i] = float32(e)
		sum += e
	}
	for i := range out {
		out[i] = float32(float64(out[i]) / sum)
	}
	return out
}

// Encode writes the weights file.
func (m *MLP) Encode(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("VFTN")
	writeU32s(bw, uint32(m.In), uint32(m.Hidden), uint32(m.Out))
	for _, s := range [][]float32{m.W1, m.B1, m.W2, m.B2} {
		writeF32s(bw, s)
	}
	return bw.Flush()
}

// DecodeMLP reads a weights file.
func DecodeMLP(r io.Reader) (*MLP, error) {
	br := bufio.NewReader(r)
	dims, err := readHeader(br, "VFTN", 3)
	if err != nil {
		return nil, err
	}
	m := NewMLP(dims[0], dims[1], dims[2])
	for _, s := range [][]float32{m.W1, m.B1, m.W2, m.B2} {
		if err := readF32s(br, s); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// EncodeInputs writes an x.bin file.
func EncodeInputs(w io.Writer, xs [][]float32) error {
	if len(xs) == 0 {
		return errors.New("no input vectors")
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("VFTX")
	writeU32s(bw, uint32(len(xs)), uint32(len(xs[0])))
	for _, x := range xs {
		writeF32s(bw, x)
	}
	return bw.Flush()
}

// DecodeInputs reads an x.bin file.
func DecodeInputs(r io.Reader) ([][]float32, error) {
	br := bufio.NewReader(r)
	dims, err := readHeader(br, "VFTX", 2)
	if err != nil {
		return nil, err
	}
	xs := make([][]float32, dims[0])
	for i := range xs {
		xs[i] = make([]float32, dims[1])
		if err := readF32s(br, xs[i]); err != nil {
			return nil, err
		}
	}
	return xs, nil
}

func readHeader(r io.Reader, magic string, n int) ([]int, error) {
	buf := make([]byte, 4+4*n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(buf[:4]) != magic {
		return nil, fmt.Errorf("bad magic %q, want %q", buf[:4], magic)
	}
	dims := make([]int, n)
	for i := range dims {
		d := binary.LittleEndian.Uint32(buf[4+4*i:])
		if d == 0 || d > MaxDim {
			return nil, fmt.Errorf("dimension %d out of range 1..%d", d, MaxDim)
		}
		dims[i] = int(d)
	}
	return dims, nil
}

func writeU32s(w io.Writer, vs ...uint32) {
	var b [4]byte
	for _, v := range vs {
		binary.LittleEndian.PutUint32(b[:], v)
		w.Write(b[:])
	}
}

func writeF32s(w io.Writer, vs []float32) {
	var b [4]byte
	for _, v := range vs {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		w.Write(b[:])
	}
}

func readF32s(r io.Reader, vs []float32) error {
	var b [4]byte
	for i := range vs {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return fmt.Errorf("read weights: %w", err)
		}
		vs[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[:]))
	}
	return nil
}
