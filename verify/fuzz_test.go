package verify

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzToleranceFiles compares two result files as the tolerance matcher
// does, with the kind picked by the extension (.npy, .f32, .f64, other)
// or, for single-file results, by the .npy magic. Results come from
// workers, so any bytes are possible: the comparison must not panic, and
// a file compared with an identical copy is never a mismatch.
func FuzzToleranceFiles(f *testing.F) {
	seeds := [][]byte{
		npy(1, "<f8", false, "(3,)", f64s(1, 2, math.NaN())),
		npy(2, "<f4", true, "(2, 1)", f32s(1, 2)),
		npy(3, "<c8", false, "(1,)", f32s(1, 2)),
		npy(1, "<U2", false, "(1,)", make([]byte, 8)),
		npy(1, "<f2", false, "(2,)", []byte{0, 0x3c, 0, 0x7c}),
		npy(1, "<i8", false, "(9223372036854775807, 2)", nil),
		npy(1, "|O", false, "()", nil),
		f64s(1, math.Inf(-1), 3),
		f32s(0.5),
		[]byte("\x93NUMPY\x01\x00\xff\xff"),
		[]byte("plain text\n"),
	}
	for _, s := range seeds {
		for _, name := range []string{"r.npy", "r.f32", "r.f64", "r.bin", "."} {
			f.Add(name, s, s)
		}
	}
	f.Add("r.npy", seeds[0], seeds[1])
	f.Fuzz(func(t *testing.T, name string, a, b []byte) {
		switch name {
		case "r.npy", "r.f32", "r.f64", "r.bin", ".":
		default:
			return
		}
		dir := t.TempDir()
		pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		if err := os.WriteFile(pa, a, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pb, b, 0o644); err != nil {
			t.Fatal(err)
		}
		tol := tolerance{rel: 1e-6, abs: 1e-9}
		same, err := compareEntry(context.Background(), pa, pb, name, 0, tol)
		if err == nil && string(a) == string(b) && !same {
			t.Fatalf("%s compared with an identical copy is a mismatch", name)
		}
	})
}

// FuzzNPYHeader parses arbitrary .npy header dicts and dtypes.
func FuzzNPYHeader(f *testing.F) {
	f.Add("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", "<f8")
	f.Add(`{"descr": "|b1", "fortran_order": True, "shape": (10L,)}`, "<U9223372036854775807")
	f.Add("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': ()}", ">c16")
	f.Fuzz(func(t *testing.T, dict, descr string) {
		h, err := parseNPYDict(dict)
		if err == nil {
			for _, d := range h.shape {
				if d < 0 {
					t.Fatalf("negative dimension %d in %q", d, dict)
				}
			}
		}
		if dt, err := parseDtype(descr); err == nil && (dt.size <= 0 || dt.float < 0 || dt.float > dt.size) {
			t.Fatalf("dtype %q parsed as %+v", descr, dt)
		}
	})
}
