// Package units holds the value types config files use for durations and
// byte sizes, so that "30s" and "1GiB" read as people write them.
package units

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as "30s", "5m", "1h30m" in TOML.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it like 30s, 5m or 1h", text)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Std returns the standard library form.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Bytes is a size written as "512MiB", "2GB", "1048576" in TOML.
type Bytes int64

var byteSuffixes = []struct {
	suffix string
	scale  int64
}{
	// Longest suffixes first so "MiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// maxBytes is the largest size: far above any disk, with headroom below
// the int64 limit for sums.
const maxBytes = 1 << 62

// ParseBytes reads a byte size with an optional unit suffix.
func ParseBytes(s string) (Bytes, error) {
	text := strings.TrimSpace(s)
	scale := int64(1)
	for _, u := range byteSuffixes {
		if strings.HasSuffix(text, u.suffix) {
			text = strings.TrimSpace(strings.TrimSuffix(text, u.suffix))
			scale = u.scale
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a byte size: write it like 512MiB, 2GB or 1048576", s)
	}
	// One bound for every unit, so that a size this accepts prints (String
	// picks the largest exact unit) as text it accepts again: with the
	// bound on suffixed sizes only, 7000000000000000000 was read but its
	// printed form, 6835937500000000KiB, was refused, and a config.toml
	// written by `vft config set` did not load.
	if n > maxBytes/scale {
		return 0, fmt.Errorf("byte size %q is too large: the limit is %d bytes (4 EiB)", s, int64(maxBytes))
	}
	return Bytes(n * scale), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *Bytes) UnmarshalText(text []byte) error {
	v, err := ParseBytes(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText implements encoding.TextMarshaler; it picks the largest
// binary unit that divides the value exactly.
func (b Bytes) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

func (b Bytes) String() string {
	for _, u := range []struct {
		suffix string
		scale  int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.scale == 0 {
			return strconv.FormatInt(int64(b)/u.scale, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
