package units

import (
	"strings"
	"testing"
	"time"
)

// A byte size people write either fails with a message that quotes it, or
// reads as a non-negative value that prints back as the same value.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"512MiB", "2GB", "1048576", "0", "1TiB", " 4 KiB ", "-1", "9223372036854775807", "4611686018427387904KiB", "1.5GB", "+5MB", "MiB", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBytes(s)
		if err != nil {
			if !strings.Contains(err.Error(), "byte size") {
				t.Fatalf("ParseBytes(%q): error %q does not say what it wanted", s, err)
			}
			return
		}
		if b < 0 {
			t.Fatalf("ParseBytes(%q) = %d, negative", s, b)
		}
		again, err := ParseBytes(b.String())
		if err != nil || again != b {
			t.Fatalf("ParseBytes(%q) = %d prints as %q, which reads back as %d, %v", s, b, b.String(), again, err)
		}
	})
}

// A duration either fails, or is non-negative and round-trips through its
// text form.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"30s", "5m", "1h30m", "0", "-1s", "2562047h47m16.854775807s", "1.5h", "1e3s", "", "10µs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("%q reads as negative %s", s, time.Duration(d))
		}
		text, _ := d.MarshalText()
		var again Duration
		if err := again.UnmarshalText(text); err != nil || again != d {
			t.Fatalf("%q = %s prints as %q, which reads back as %s, %v", s, time.Duration(d), text, time.Duration(again), err)
		}
	})
}
