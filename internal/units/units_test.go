package units

import (
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	cases := []struct {
		in      string
		want    Bytes
		wantErr bool
	}{
		{"1048576", 1 << 20, false},
		{"512MiB", 512 << 20, false},
		{"2GB", 2e9, false},
		{"1 GiB", 1 << 30, false},
		{"10B", 10, false},
		{"-1", 0, true},
		{"lots", 0, true},
		{"1.5GiB", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseBytes(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseBytes(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("ParseBytes(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestBytesRoundTrip(t *testing.T) {
	for _, v := range []Bytes{0, 1, 1000, 1 << 10, 3 << 20, 5 << 30} {
		text, _ := v.MarshalText()
		var back Bytes
		if err := back.UnmarshalText(text); err != nil || back != v {
			t.Fatalf("%d -> %q -> %d (%v)", v, text, back, err)
		}
	}
}

func TestDuration(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Std() != 90*time.Second {
		t.Fatalf("1m30s -> %v, %v", d, err)
	}
	for _, bad := range []string{"soon", "-5s", "10"} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Fatalf("UnmarshalText(%q) accepted a bad duration", bad)
		}
	}
}
