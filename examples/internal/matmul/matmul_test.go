package matmul

import (
	"bytes"
	"fmt"
	"testing"
)

func TestMulSmall(t *testing.T) {
	a := &Matrix{Rows: 2, Cols: 3, Data: []float64{1, 2, 3, 4, 5, 6}}
	b := &Matrix{Rows: 3, Cols: 2, Data: []float64{7, 8, 9, 10, 11, 12}}
	c, err := Mul(a, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{58, 64, 139, 154}
	for i, v := range want {
		if c.Data[i] != v {
			t.Fatalf("c = %v, want %v", c.Data, want)
		}
	}
	if _, err := Mul(a, a); err == nil {
		t.Fatal("2x3 × 2x3 did not fail")
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	// 70×70 is more than one of Decode's 4096-element chunks.
	for _, n := range []int{5, 70} {
		m := Generate(n, 3)
		var buf bytes.Buffer
		if err := Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		enc := bytes.Clone(buf.Bytes())
		got, err := Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if Checksum(got) != Checksum(m) {
			t.Fatalf("n=%d: round trip changed the matrix", n)
		}
		for _, keep := range []int{5, 12, 13, len(enc) - 8, len(enc) - 1} {
			if _, err := Decode(bytes.NewReader(enc[:keep])); err == nil {
				t.Fatalf("n=%d: the first %d of %d bytes accepted", n, keep, len(enc))
			}
		}
	}
	if _, err := Decode(bytes.NewReader([]byte("VFTM\xff\xff\xff\xff\x01\x00\x00\x00"))); err == nil {
		t.Fatal("huge header accepted")
	}
}

// BenchmarkMul is the native side of the wazero/native comparison in
// examples (BenchmarkMatmulKernel runs the same Mul in wazero).
func BenchmarkMul(b *testing.B) {
	for _, n := range []int{128, 256} {
		b.Run(fmt.Sprint("n=", n), func(b *testing.B) {
			x, y := Generate(n, 1), Generate(n, 2)
			for b.Loop() {
				Mul(x, y)
			}
		})
	}
}

// TestMulMatchesNaive checks the blocked kernel against the textbook triple
// loop, bit for bit, on sizes that exercise the remainder path.
func TestMulMatchesNaive(t *testing.T) {
	for _, dims := range [][3]int{{1, 1, 1}, {7, 9, 5}, {8, 8, 8}, {5, 13, 3}, {6, 17, 11}} {
		a, b := Generate(dims[0]*dims[1], 1), Generate(dims[1]*dims[2], 2)
		a = &Matrix{Rows: dims[0], Cols: dims[1], Data: a.Data[:dims[0]*dims[1]]}
		b = &Matrix{Rows: dims[1], Cols: dims[2], Data: b.Data[:dims[1]*dims[2]]}
		c, err := Mul(a, b)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < a.Rows; i++ {
			for j := 0; j < b.Cols; j++ {
				var s float64
				for k := 0; k < a.Cols; k++ {
					s += float64(a.Data[i*a.Cols+k] * b.Data[k*b.Cols+j])
				}
				if got := c.Data[i*c.Cols+j]; got != s {
					t.Fatalf("%v: c[%d][%d] = %v, want %v", dims, i, j, got, s)
				}
			}
		}
	}
}
