package verify

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The .npy format (numpy.lib.format): magic, version, a little-endian
// header length (2 bytes in v1, 4 in v2 and v3), a Python dict literal
// describing the array, then the raw data.
const npyMagic = "\x93NUMPY"

// maxNPYHeader bounds the header we read; real headers are under 1 KiB.
const maxNPYHeader = 1 << 20

// maxNPYItem bounds an element's declared size (numpy's itemsize is an
// int32; no real array has elements of a GiB).
const maxNPYItem = 1 << 30

type npyHeader struct {
	descr   string
	fortran bool
	shape   []int64
	offset  int64 // where the data starts
}

// dtype is how an array's elements are compared.
type dtype struct {
	size  int // bytes per element
	float int // bytes per float component, 0 when compared exactly
}

var (
	npyDescr   = regexp.MustCompile(`['"]descr['"]\s*:\s*['"]([^'"]*)['"]`)
	npyFortran = regexp.MustCompile(`['"]fortran_order['"]\s*:\s*(True|False)`)
	npyShape   = regexp.MustCompile(`['"]shape['"]\s*:\s*\(([^)]*)\)`)
)

func readNPYHeader(f *os.File) (npyHeader, error) {
	var pre [10]byte
	if _, err := io.ReadFull(f, pre[:8]); err != nil || string(pre[:6]) != npyMagic {
		return npyHeader{}, fmt.Errorf("not an .npy file (no %q magic)", npyMagic)
	}
	var n, offset int64
	switch major := pre[6]; major {
	case 1:
		if _, err := io.ReadFull(f, pre[8:10]); err != nil {
			return npyHeader{}, fmt.Errorf("npy header: %w", err)
		}
		n, offset = int64(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(f, l[:]); err != nil {
			return npyHeader{}, fmt.Errorf("npy header: %w", err)
		}
		n, offset = int64(binary.LittleEndian.Uint32(l[:])), 12
	default:
		return npyHeader{}, fmt.Errorf("npy format version %d.%d is not supported (1, 2 and 3 are)", major, pre[7])
	}
	if n > maxNPYHeader {
		return npyHeader{}, fmt.Errorf("npy header of %d bytes is over the %d-byte limit", n, maxNPYHeader)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(f, buf); err != nil {
		return npyHeader{}, fmt.Errorf("npy header: %w", err)
	}
	h, err := parseNPYDict(string(buf))
	h.offset = offset + n
	return h, err
}

func parseNPYDict(s string) (npyHeader, error) {
	var h npyHeader
	m := npyDescr.FindStringSubmatch(s)
	if m == nil {
		// Structured dtypes have a list here, not a string.
		return h, fmt.Errorf("npy header %q: descr is not a simple dtype", strings.TrimSpace(s))
	}
	h.descr = m[1]
	if m = npyFortran.FindStringSubmatch(s); m == nil {
		return h, fmt.Errorf("npy header %q: no fortran_order", strings.TrimSpace(s))
	}
	h.fortran = m[1] == "True"
	if m = npyShape.FindStringSubmatch(s); m == nil {
		return h, fmt.Errorf("npy header %q: no shape", strings.TrimSpace(s))
	}
	for _, dim := range strings.Split(m[1], ",") {
		if dim = strings.TrimSpace(dim); dim == "" {
			continue // "(3,)" has a trailing comma
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(dim, "L"), 10, 64)
		if err != nil || v < 0 {
			return h, fmt.Errorf("npy header: bad dimension %q in shape", dim)
		}
		h.shape = append(h.shape, v)
	}
	return h, nil
}

// parseDtype maps a descr such as "<f4" to how it is compared: floats and
// complex numbers within tolerance, everything else (integers, bools,
// fixed-size strings, dates) exactly.
func parseDtype(descr string) (dtype, error) {
	if strings.Contains(descr, "O") {
		return dtype{}, fmt.Errorf("object dtype %q cannot be compared (it holds pickled Python objects)", descr)
	}
	if len(descr) < 3 {
		return dtype{}, fmt.Errorf("dtype %q is not supported", descr)
	}
	order, kind := descr[0], descr[1]
	size, err := strconv.Atoi(descr[2:])
	// maxNPYItem keeps "<U9223372036854775807" from overflowing 4*size
	// into a negative element size (found by FuzzNPYHeader).
	if err != nil || size <= 0 || size > maxNPYItem || !strings.ContainsRune("<>|=", rune(order)) {
		return dtype{}, fmt.Errorf("dtype %q is not supported", descr)
	}
	if order == '>' && size > 1 {
		return dtype{}, fmt.Errorf("big-endian dtype %q is not supported; save the array little-endian", descr)
	}
	switch kind {
	case 'f':
		if size != 2 && size != 4 && size != 8 {
			return dtype{}, fmt.Errorf("float dtype %q is not supported (f2, f4 and f8 are)", descr)
		}
		return dtype{size: size, float: size}, nil
	case 'c':
		if size != 8 && size != 16 {
			return dtype{}, fmt.Errorf("complex dtype %q is not supported (c8 and c16 are)", descr)
		}
		return dtype{size: size, float: size / 2}, nil
	case 'b', 'i', 'u', 'S', 'V', 'm', 'M':
		return dtype{size: size}, nil
	case 'U': // UCS-4: the size counts characters
		return dtype{size: 4 * size}, nil
	}
	return dtype{}, fmt.Errorf("dtype %q is not supported", descr)
}

// compareNPY compares two .npy arrays: same dtype, shape and memory
// order, then the data streamed element by element.
func compareNPY(ctx context.Context, a, b *os.File, tol tolerance) (bool, error) {
	ha, err := readNPYHeader(a)
	if err != nil {
		return false, err
	}
	hb, err := readNPYHeader(b)
	if err != nil {
		return false, err
	}
	dt, err := parseDtype(ha.descr)
	if err != nil {
		return false, err
	}
	if _, err := parseDtype(hb.descr); err != nil {
		return false, err
	}
	if ha.descr != hb.descr || ha.fortran != hb.fortran || !slices.Equal(ha.shape, hb.shape) {
		return false, nil
	}
	n := int64(dt.size)
	for _, d := range ha.shape {
		if d != 0 && n > math.MaxInt64/d {
			return false, fmt.Errorf("npy shape %v is too large", ha.shape)
		}
		n *= d
	}
	for _, f := range []struct {
		file *os.File
		h    npyHeader
	}{{a, ha}, {b, hb}} {
		info, err := f.file.Stat()
		if err != nil {
			return false, err
		}
		if got := info.Size() - f.h.offset; got != n {
			return false, fmt.Errorf("npy data is %d bytes, shape %v of %s needs %d", got, f.h.shape, f.h.descr, n)
		}
	}
	// Both files are positioned at their data after the headers.
	if dt.float == 0 {
		return streamEqual(ctx, a, b)
	}
	return compareFloats(ctx, a, b, n, dt.float, tol)
}

// halfToFloat decodes an IEEE 754 half-precision float (numpy's f2).
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h>>15 == 1 {
		sign = -1
	}
	exp, frac := int(h>>10)&0x1f, float64(h&0x3ff)
	switch exp {
	case 0: // zero or subnormal
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}
