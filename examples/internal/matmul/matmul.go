// Package matmul is the compute kernel of the matmul example, shared by the
// WASM program (examples/matmul) and native Go benchmarks, so that both run
// the very same code.
//
// Matrix file format (a.bin, b.bin, c.bin), all little-endian:
//
//	4 bytes  magic "VFTM"
//	uint32   rows
//	uint32   cols
//	rows*cols float64, row-major
package matmul

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Magic starts every matrix file.
const Magic = "VFTM"

// MaxDim bounds rows and cols read from a file, so a corrupt header cannot
// make the program allocate without end.
const MaxDim = 1 << 14

// Matrix is a dense row-major matrix.
type Matrix struct {
	Rows, Cols int
	Data       []float64
}

// New returns a zero rows×cols matrix.
func New(rows, cols int) *Matrix {
	return &Matrix{Rows: rows, Cols: cols, Data: make([]float64, rows*cols)}
}

// Generate returns an n×n matrix of values in [-1, 1) drawn from a
// splitmix64 sequence started at seed: the same on every platform.
func Generate(n int, seed uint64) *Matrix {
	m := New(n, n)
	s := seed
	for i := range m.Data {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		m.Data[i] = float64(z>>11)/(1<<52) - 1
	}
	return m
}

// Mul returns a×b.
//
// The loop order (i, k, j) walks b and the result row by row. Two rows of
// the result are computed together, and four rows of b are folded into them
// per pass, eight columns at a time: each load of b serves both rows, each
// element of the result is loaded and stored once per four products, and
// the innermost loop runs once per 64 products. Natively that runs no faster
// than one row four columns at a time; in WASM it is about twice as fast, since
// there every Go loop iteration costs a jump through the function's
// dispatch table and, in the sandbox, a termination check, and every load
// and store a bounds check (BenchmarkMatmulKernel in examples/). Each
// c[i][j] is still summed in k order, one product at a time, and the
// explicit float64 conversions forbid fused multiply-add, so the result is
// bit-for-bit the same on every architecture and in WASM.
func Mul(a, b *Matrix) (*Matrix, error) {
	if a.Cols != b.Rows {
		return nil, fmt.Errorf("cannot multiply %dx%d by %dx%d", a.Rows, a.Cols, b.Rows, b.Cols)
	}
	c := New(a.Rows, b.Cols)
	n, kn := b.Cols, a.Cols
	i := 0
	for ; i+2 <= a.Rows; i += 2 {
		mulRows2(c.Data[i*n:(i+2)*n], a.Data[i*kn:(i+2)*kn], b.Data, n, kn)
	}
	if i < a.Rows {
		mulRow(c.Data[i*n:(i+1)*n], a.Data[i*kn:(i+1)*kn], b.Data, n, kn)
	}
	return c, nil
}

// mulRows2 adds to the two rows in c (2×n) the product of the two rows in
// a (2×kn) by b (kn×n).
func mulRows2(c, a, b []float64, n, kn int) {
	c0, c1 := c[:n], c[n:2*n]
	ar0, ar1 := a[:kn], a[kn:2*kn]
	k := 0
	for ; k+4 <= kn; k += 4 {
		a00, a01, a02, a03 := ar0[k], ar0[k+1], ar0[k+2], ar0[k+3]
		a10, a11, a12, a13 := ar1[k], ar1[k+1], ar1[k+2], ar1[k+3]
		b0 := b[k*n : (k+1)*n][:len(c0)]
		b1 := b[(k+1)*n : (k+2)*n][:len(c0)]
		b2 := b[(k+2)*n : (k+3)*n][:len(c0)]
		b3 := b[(k+3)*n : (k+4)*n][:len(c0)]
		c1 := c1[:len(c0)]
		j := 0
		for ; j+8 <= len(c0); j += 8 {
			x0, x1, x2, x3 := b0[j:j+8:j+8], b1[j:j+8:j+8], b2[j:j+8:j+8], b3[j:j+8:j+8]
			p, q := c0[j:j+8:j+8], c1[j:j+8:j+8]
			y0, y1, y2, y3 := x0[0], x1[0], x2[0], x3[0]
			p[0] = p[0] + float64(a00*y0) + float64(a01*y1) + float64(a02*y2) + float64(a03*y3)
			q[0] = q[0] + float64(a10*y0) + float64(a11*y1) + float64(a12*y2) + float64(a13*y3)
			y0, y1, y2, y3 = x0[1], x1[1], x2[1], x3[1]
			p[1] = p[1] + float64(a00*y0) + float64(a01*y1) + float64(a02*y2) + float64(a03*y3)
			q[1] = q[1] + float64(a10*y0) + float64(a11*y1) + float64(a12*y2) + float64(a13*y3)
			y0, y1, y2, y3 = x0[2], x1[2], x2[2], x3[2]
			p[2] = p[2] + float64(a00*y0) + float64(a01*y1) + float64(a02*y2) + float64(a03*y3)
			q[2] = q[2] + float64(a10*y0) + float64(a11*y1) + float64(a12*y2) + float64(a13*y3)
			y0, y1, y2, y3 = x0[3], x1[3], x2[3], x3[3]
			p[3] = p[3] + float64(a00*y0) + float64(a01*y1) + float64(a02*y2) + float64(a03*y3)
			q[3] = q[3] + float64(a10*y0) + float64(a11*y1) + float64(a12*y2) + float64(a13*y3)
			y0, y1, y2, y3 = x0[4], x1[4], x2[4], x3[4]
			p[4] = p[4] + float64(a00*y0) + float64(a01*y1) + float64(a02*y2) + float64(a03*y3)
			q[4] = q[4] + float64(a10*y0) + float64(a11*y1) + float64(a12*y2) + float64(a13*y3)
			y0, y1, y2, y3 = x0[5], x1[5], x2[5], x3[5]
			p[5] = p[5] + float64(a00*y0) + float64(a01*y1) + float64(a02*y2) + float64(a03*y3)
			q[5] = q[5] + float64(a10*y0) + float64(a11*y1) + float64(a12*y2) + float64(a13*y3)
			y0, y1, y2, y3 = x0[6], x1[6], x2[6], x3[6]
			p[6] = p[6] + float64(a00*y0) + float64(a01*y1) + float64(a02*y2) + float64(a03*y3)
			q[6] = q[6] + float64(a10*y0) + float64(a11*y1) + float64(a12*y2) + float64(a13*y3)
			y0, y1, y2, y3 = x0[7], x1[7], x2[7], x3[7]
			p[7] = p[7] + float64(a00*y0) + float64(a01*y1) + float64(a02*y2) + float64(a03*y3)
			q[7] = q[7] + float64(a10*y0) + float64(a11*y1) + float64(a12*y2) + float64(a13*y3)
		}
		for ; j < len(c0); j++ {
			c0[j] = c0[j] + float64(a00*b0[j]) + float64(a01*b1[j]) + float64(a02*b2[j]) + float64(a03*b3[j])
			c1[j] = c1[j] + float64(a10*b0[j]) + float64(a11*b1[j]) + float64(a12*b2[j]) + float64(a13*b3[j])
		}
	}
	for ; k < kn; k++ {
		a0k, a1k := ar0[k], ar1[k]
		brow := b[k*n : (k+1)*n][:len(c0)]
		c1 := c1[:len(c0)]
		for j := range c0 {
			c0[j] += float64(a0k * brow[j])
			c1[j] += float64(a1k * brow[j])
		}
	}
}

// mulRow is mulRows2 for the last row when there is an odd number of rows.
func mulRow(crow, arow, b []float64, n, kn int) {
	crow, arow = crow[:n], arow[:kn]
	k := 0
	for ; k+4 <= kn; k += 4 {
		a0, a1, a2, a3 := arow[k], arow[k+1], arow[k+2], arow[k+3]
		b0 := b[k*n : (k+1)*n][:len(crow)]
		b1 := b[(k+1)*n : (k+2)*n][:len(crow)]
		b2 := b[(k+2)*n : (k+3)*n][:len(crow)]
		b3 := b[(k+3)*n : (k+4)*n][:len(crow)]
		for j := range crow {
			crow[j] = crow[j] + float64(a0*b0[j]) + float64(a1*b1[j]) + float64(a2*b2[j]) + float64(a3*b3[j])
		}
	}
	for ; k < kn; k++ {
		aik := arow[k]
		brow := b[k*n : (k+1)*n][:len(crow)]
		for j := range crow {
			crow[j] += float64(aik * brow[j])
		}
	}
}

// Marshal returns m in the matrix file format. It builds the whole file in
// memory, one element per loop iteration and no call per element: under
// WASM, a call and a loop iteration cost far more than natively.
func Marshal(m *Matrix) []byte {
	buf := make([]byte, 12+8*len(m.Data))
	copy(buf, Magic)
	binary.LittleEndian.PutUint32(buf[4:], uint32(m.Rows))
	binary.LittleEndian.PutUint32(buf[8:], uint32(m.Cols))
	for i, v := range m.Data {
		binary.LittleEndian.PutUint64(buf[12+8*i:], math.Float64bits(v))
	}
	return buf
}

// Encode writes m in the matrix file format.
func Encode(w io.Writer, m *Matrix) error {
	_, err := w.Write(Marshal(m))
	return err
}

// Decode reads a matrix in the matrix file format.
func Decode(r io.Reader) (*Matrix, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(hdr[:4]) != Magic {
		return nil, errors.New("not a matrix file (magic is not VFTM)")
	}
	rows, cols := binary.LittleEndian.Uint32(hdr[4:]), binary.LittleEndian.Uint32(hdr[8:])
	if rows == 0 || cols == 0 || rows > MaxDim || cols > MaxDim {
		return nil, fmt.Errorf("matrix size %dx%d out of range 1..%d", rows, cols, MaxDim)
	}
	m := New(int(rows), int(cols))
	// Read in chunks, not element by element (see Marshal), and without a
	// second copy of the whole matrix.
	buf := make([]byte, 8*min(len(m.Data), 4096))
	for done := 0; done < len(m.Data); {
		chunk := buf[:8*min(len(m.Data)-done, len(buf)/8)]
		if _, err := io.ReadFull(r, chunk); err != nil {
			return nil, fmt.Errorf("read elements %d..%d: %w", done, done+len(chunk)/8-1, err)
		}
		for i := range m.Data[done : done+len(chunk)/8] {
			m.Data[done+i] = math.Float64frombits(binary.LittleEndian.Uint64(chunk[8*i:]))
		}
		done += len(chunk) / 8
	}
	return m, nil
}

// ReadFile decodes a matrix file.
func ReadFile(path string) (*Matrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// WriteFile encodes m into a file.
func WriteFile(path string, m *Matrix) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Encode(f, m); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Job is what the matmul program does: read /input/a.bin and /input/b.bin if
// present (else generate two n×n matrices from seed and seed+1), multiply,
// and write c.bin and checksum.txt into outDir.
func Job(inDir, outDir string, n int, seed uint64) error {
	a, b, err := inputs(inDir, n, seed)
	if err != nil {
		return err
	}
	c, err := Mul(a, b)
	if err != nil {
		return err
	}
	enc := Marshal(c)
	if err := os.WriteFile(filepath.Join(outDir, "c.bin"), enc, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, "checksum.txt"), []byte(checksum(c, enc)), 0o644)
}

// GenerateFiles writes the matrices Job would generate as a.bin and b.bin.
func GenerateFiles(outDir string, n int, seed uint64) error {
	if n <= 0 || n > MaxDim {
		return fmt.Errorf("-n %d out of range 1..%d", n, MaxDim)
	}
	if err := WriteFile(filepath.Join(outDir, "a.bin"), Generate(n, seed)); err != nil {
		return err
	}
	return WriteFile(filepath.Join(outDir, "b.bin"), Generate(n, seed+1))
}

func inputs(inDir string, n int, seed uint64) (*Matrix, *Matrix, error) {
	aPath, bPath := filepath.Join(inDir, "a.bin"), filepath.Join(inDir, "b.bin")
	if _, err := os.Stat(aPath); err != nil {
		if n <= 0 || n > MaxDim {
			return nil, nil, fmt.Errorf("no %s and no valid -n (got %d)", aPath, n)
		}
		return Generate(n, seed), Generate(n, seed+1), nil
	}
	a, err := ReadFile(aPath)
	if err != nil {
		return nil, nil, err
	}
	b, err := ReadFile(bPath)
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// Checksum summarises m: its size, the sum and trace of its elements and the
// SHA-256 of its encoding.
func Checksum(m *Matrix) string {
	return checksum(m, Marshal(m))
}

// checksum is Checksum for a matrix already encoded as enc.
func checksum(m *Matrix, enc []byte) string {
	var sum, trace float64
	for _, v := range m.Data {
		sum += v
	}
	for i := range min(m.Rows, m.Cols) {
		trace += m.Data[i*m.Cols+i]
	}
	return fmt.Sprintf("rows %d\ncols %d\nsum %.17g\ntrace %.17g\nsha256 %x\n", m.Rows, m.Cols, sum, trace, sha256.Sum256(enc))
}

// Repeat multiplies two generated n×n matrices reps times and returns the
// sum of the last product's first row. It is the kernel benchmark's
// workload, shared by the native benchmark and the mulkernel module.
func Repeat(n, reps int) float64 {
	a, b := Generate(n, 1), Generate(n, 2)
	var sum float64
	for range reps {
		c, _ := Mul(a, b)
		sum = 0
		for _, v := range c.Data[:n] {
			sum += v
		}
	}
	return sum
}
