package verify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dirFetcher is a content store made of local paths: Get copies the file
// or directory registered under a CID.
type dirFetcher map[string]string

func (d dirFetcher) Get(_ context.Context, cid, path string, _ int64) error {
	src, ok := d[cid]
	if !ok {
		return fmt.Errorf("%s: not found", cid)
	}
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if info.IsDir() {
		return os.CopyFS(path, os.DirFS(src))
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	_, err = io.Copy(out, in)
	return err
}

// writeTree writes files (relative path → content) under a new directory.
func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func f32s(v ...float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func f64s(v ...float64) []byte {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// npy builds an .npy file the way numpy.save does: the header padded with
// spaces to a multiple of 64 bytes and ended by a newline.
func npy(version int, descr string, fortran bool, shape string, data []byte) []byte {
	order := "False"
	if fortran {
		order = "True"
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, order, shape)
	pre := 10
	if version > 1 {
		pre = 12
	}
	pad := 64 - (pre+len(dict)+1)%64
	dict += strings.Repeat(" ", pad%64) + "\n"
	b := append([]byte(npyMagic), byte(version), 0)
	if version == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(dict)))
	}
	return append(append(b, dict...), data...)
}

func TestToleranceMatcher(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	big := make([]float64, 100_000) // several chunks: the difference is at the end
	bigOff := append([]float64(nil), big...)
	bigOff[len(bigOff)-1] = 1
	tests := []struct {
		name    string
		a, b    map[string][]byte
		want    bool
		wantErr string
	}{
		{"identical trees", map[string][]byte{"x.txt": []byte("hi"), "d/y.bin": {1, 2}},
			map[string][]byte{"x.txt": []byte("hi"), "d/y.bin": {1, 2}}, true, ""},
		{"other file differs by a byte", map[string][]byte{"x.txt": []byte("hi")},
			map[string][]byte{"x.txt": []byte("ho")}, false, ""},
		{"different file sets", map[string][]byte{"x.txt": nil},
			map[string][]byte{"y.txt": nil}, false, ""},
		{"an extra file", map[string][]byte{"x.txt": nil},
			map[string][]byte{"x.txt": nil, "y.txt": nil}, false, ""},
		{"f32 within tolerance", map[string][]byte{"o.f32": f32s(1, 2, 1000)},
			map[string][]byte{"o.f32": f32s(1.000001, 2, 1000.0005)}, true, ""},
		{"f32 outside tolerance", map[string][]byte{"o.f32": f32s(1, 2)},
			map[string][]byte{"o.f32": f32s(1.01, 2)}, false, ""},
		{"f64 absolute tolerance near zero", map[string][]byte{"o.f64": f64s(0, 1e-10)},
			map[string][]byte{"o.f64": f64s(5e-10, 0)}, true, ""},
		{"f64 NaN agrees with NaN", map[string][]byte{"o.f64": f64s(nan, inf, -inf)},
			map[string][]byte{"o.f64": f64s(nan, inf, -inf)}, true, ""},
		{"f64 NaN does not agree with a number", map[string][]byte{"o.f64": f64s(nan)},
			map[string][]byte{"o.f64": f64s(0)}, false, ""},
		{"f64 +Inf does not agree with -Inf", map[string][]byte{"o.f64": f64s(inf)},
			map[string][]byte{"o.f64": f64s(-inf)}, false, ""},
		{"f64 +Inf does not agree with a huge number", map[string][]byte{"o.f64": f64s(inf)},
			map[string][]byte{"o.f64": f64s(math.MaxFloat64)}, false, ""},
		{"f64 streamed over chunks", map[string][]byte{"o.f64": f64s(big...)},
			map[string][]byte{"o.f64": f64s(bigOff...)}, false, ""},
		{"f64 different lengths", map[string][]byte{"o.f64": f64s(1, 2)},
			map[string][]byte{"o.f64": f64s(1)}, false, ""},
		{"f32 not a whole number of floats", map[string][]byte{"o.f32": {1, 2, 3, 4, 5}},
			map[string][]byte{"o.f32": {1, 2, 3, 4, 5}}, false, "o.f32"},
		{"npy v1 f4 within tolerance", map[string][]byte{"a.npy": npy(1, "<f4", false, "(2,)", f32s(1, 2))},
			map[string][]byte{"a.npy": npy(1, "<f4", false, "(2,)", f32s(1.000001, 2))}, true, ""},
		{"npy v2 f8 outside tolerance", map[string][]byte{"a.npy": npy(2, "<f8", false, "(1, 2)", f64s(1, 2))},
			map[string][]byte{"a.npy": npy(2, "<f8", false, "(1, 2)", f64s(1, 3))}, false, ""},
		{"npy v3 against v1 with the same array", map[string][]byte{"a.npy": npy(3, "<f8", false, "(2,)", f64s(1, 2))},
			map[string][]byte{"a.npy": npy(1, "<f8", false, "(2,)", f64s(1, 2))}, true, ""},
		{"npy f2 within tolerance", map[string][]byte{"a.npy": npy(1, "<f2", false, "(1,)", []byte{0x00, 0x3c})},
			map[string][]byte{"a.npy": npy(1, "<f2", false, "(1,)", []byte{0x00, 0x3c})}, true, ""},
		{"npy shapes differ", map[string][]byte{"a.npy": npy(1, "<f4", false, "(2, 1)", f32s(1, 2))},
			map[string][]byte{"a.npy": npy(1, "<f4", false, "(1, 2)", f32s(1, 2))}, false, ""},
		{"npy fortran order differs", map[string][]byte{"a.npy": npy(1, "<f4", false, "(1, 2)", f32s(1, 2))},
			map[string][]byte{"a.npy": npy(1, "<f4", true, "(1, 2)", f32s(1, 2))}, false, ""},
		{"npy dtypes differ", map[string][]byte{"a.npy": npy(1, "<f4", false, "(2,)", f32s(1, 2))},
			map[string][]byte{"a.npy": npy(1, "<i4", false, "(2,)", f32s(1, 2))}, false, ""},
		{"npy integers must be exact", map[string][]byte{"a.npy": npy(1, "<i4", false, "(2,)", []byte{1, 0, 0, 0, 2, 0, 0, 0})},
			map[string][]byte{"a.npy": npy(1, "<i4", false, "(2,)", []byte{1, 0, 0, 0, 3, 0, 0, 0})}, false, ""},
		{"npy equal bools", map[string][]byte{"a.npy": npy(1, "|b1", false, "(3,)", []byte{1, 0, 1})},
			map[string][]byte{"a.npy": npy(1, "|b1", false, "(3,)", []byte{1, 0, 1})}, true, ""},
		{"npy big-endian is an error", map[string][]byte{"m/a.npy": npy(1, ">f8", false, "(1,)", f64s(1))},
			map[string][]byte{"m/a.npy": npy(1, ">f8", false, "(1,)", f64s(1))}, false, `m/a.npy: big-endian dtype ">f8"`},
		{"npy object dtype is an error", map[string][]byte{"a.npy": npy(1, "|O", false, "(1,)", f64s(1))},
			map[string][]byte{"a.npy": npy(1, "|O", false, "(1,)", f64s(1))}, false, `a.npy: object dtype "|O"`},
		{"npy truncated data is an error", map[string][]byte{"a.npy": npy(1, "<f4", false, "(3,)", f32s(1, 2))},
			map[string][]byte{"a.npy": npy(1, "<f4", false, "(3,)", f32s(1, 2))}, false, "a.npy: npy data is 8 bytes"},
		{"npy without magic is an error", map[string][]byte{"a.npy": []byte("hello")},
			map[string][]byte{"a.npy": []byte("hello")}, false, "a.npy: not an .npy file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scratch := t.TempDir()
			f := dirFetcher{"A": writeTree(t, tt.a), "B": writeTree(t, tt.b)}
			m := NewToleranceMatcher(f, scratch, 1e-5, 1e-9, 0)
			got, err := m.Match(context.Background(), "A", "B")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Match = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("Match = %v, %v; want %v", got, err, tt.want)
			}
			if left, _ := os.ReadDir(scratch); len(left) != 0 {
				t.Fatalf("scratch dir not cleaned up: %v", left)
			}
		})
	}
}

func TestToleranceMatcherSingleFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A result that is one .npy file loses its name: it is known by its magic.
	f := dirFetcher{
		"A": write("a", npy(1, "<f8", false, "(1,)", f64s(1))),
		"B": write("b", npy(1, "<f8", false, "(1,)", f64s(1+1e-9))),
		"C": write("c", []byte("plain")),
	}
	m := NewToleranceMatcher(f, t.TempDir(), 1e-6, 0, 0)
	if same, err := m.Match(context.Background(), "A", "B"); err != nil || !same {
		t.Fatalf("two close .npy files: Match = %v, %v", same, err)
	}
	if same, err := m.Match(context.Background(), "A", "C"); err != nil || same {
		t.Fatalf("an .npy file and a text file: Match = %v, %v", same, err)
	}
}

func TestToleranceMatcherErrors(t *testing.T) {
	big := writeTree(t, map[string][]byte{"o.f64": f64s(make([]float64, 1000)...)})
	f := dirFetcher{"A": big, "B": big}
	m := NewToleranceMatcher(f, t.TempDir(), 0, 0, 4000)
	if _, err := m.Match(context.Background(), "A", "B"); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "A is 8000 bytes") {
		t.Fatalf("over maxBytes: err = %v, want ErrTooLarge naming the CID and size", err)
	}
	m = NewToleranceMatcher(f, t.TempDir(), 0, 0, 0)
	if _, err := m.Match(context.Background(), "A", "missing"); err == nil || !strings.Contains(err.Error(), "fetch missing") {
		t.Fatalf("fetch failure: err = %v, want it to name the CID", err)
	}
}

func TestToleranceAgree(t *testing.T) {
	tol := tolerance{rel: 1e-3, abs: 1e-6}
	tests := []struct {
		a, b float64
		want bool
	}{
		{1, 1.001, true},
		{1, 1.0011, false},
		{-1000, -1001, true},
		{0, 1e-6, true},
		{0, 2e-6, false},
		{math.NaN(), math.NaN(), true},
		{math.Inf(-1), math.Inf(-1), true},
		{math.Inf(1), math.NaN(), false},
	}
	for _, tt := range tests {
		if got := tol.agree(tt.a, tt.b); got != tt.want {
			t.Errorf("agree(%g, %g) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
