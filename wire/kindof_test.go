package wire

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// KindOf runs on every gossiped message before its signature is checked,
// so it must be as strict as Open: an envelope that Open would refuse for
// its form must not be dispatched on a kind either.
func TestKindOfBounded(t *testing.T) {
	key := mustKey(t)
	good, err := Seal(key, "ping/1", time.Now(), ping{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	// {"kind": "a", "kind": "b"}: which kind? Open refuses it; so must KindOf.
	dupKind := []byte{0xa2, 0x64, 'k', 'i', 'n', 'd', 0x61, 'a', 0x64, 'k', 'i', 'n', 'd', 0x61, 'b'}
	// {_ "kind": "a"}: an indefinite-length map.
	indef := []byte{0xbf, 0x64, 'k', 'i', 'n', 'd', 0x61, 'a', 0xff}
	// {"kind": "a", "x": [[[[...]]]]}: nested 40 deep in a skipped field.
	deep := append([]byte{0xa2, 0x64, 'k', 'i', 'n', 'd', 0x61, 'a', 0x61, 'x'}, bytes.Repeat([]byte{0x81}, 40)...)
	deep = append(deep, 0x00)
	// {"kind": "a", "x": [5000 zeros]}: more elements than any message has.
	wide := append([]byte{0xa2, 0x64, 'k', 'i', 'n', 'd', 0x61, 'a', 0x61, 'x', 0x99, 0x13, 0x88}, make([]byte, 5000)...)
	huge := make([]byte, MaxMessageSize+1)

	if kind, err := KindOf(good); err != nil || kind != "ping/1" {
		t.Fatalf("KindOf(genuine) = %q, %v", kind, err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"duplicate kind", dupKind, ErrMalformed},
		{"indefinite length", indef, ErrMalformed},
		{"nested 40 deep", deep, ErrMalformed},
		{"5000-element array", wide, ErrMalformed},
		{"over MaxMessageSize", huge, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if kind, err := KindOf(tc.data); !errors.Is(err, tc.want) {
				t.Fatalf("KindOf = %q, %v; want %v", kind, err, tc.want)
			}
		})
	}
}

func TestUnmarshalRefusesOversize(t *testing.T) {
	var p ping
	if err := Unmarshal(make([]byte, MaxMessageSize+1), &p); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Unmarshal of %d bytes = %v, want ErrTooLarge", MaxMessageSize+1, err)
	}
}
