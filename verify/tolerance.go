package verify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ToleranceMatcher compares two results as numbers: GPUs do not add up
// floats in the same order, so honest workers' outputs differ in the last
// bits and equal CIDs are too strict.
//
// Two results match when they have the same files, every .npy array and
// raw .f32/.f64 file agrees element by element within tolerance (integer
// and bool arrays exactly), and every other file is byte-equal.
type ToleranceMatcher struct {
	fetch    Fetcher
	scratch  string
	tol      tolerance
	maxBytes int64
}

// NewToleranceMatcher returns a matcher that fetches results into
// scratchDir and refuses results over maxBytes (0: no limit).
func NewToleranceMatcher(f Fetcher, scratchDir string, relTol, absTol float64, maxBytes int64) *ToleranceMatcher {
	return &ToleranceMatcher{fetch: f, scratch: scratchDir, tol: tolerance{rel: relTol, abs: absTol}, maxBytes: maxBytes}
}

// Match fetches a and b and compares them; a difference is (false, nil),
// an error means they could not be compared.
func (m *ToleranceMatcher) Match(ctx context.Context, a, b string) (bool, error) {
	f, err := newFetched(m.scratch)
	if err != nil {
		return false, err
	}
	defer f.Close()
	pa, err := f.get(ctx, m.fetch, a, "a", m.maxBytes)
	if err != nil {
		return false, err
	}
	pb, err := f.get(ctx, m.fetch, b, "b", m.maxBytes)
	if err != nil {
		return false, err
	}
	return compareTrees(ctx, pa, pb, m.tol)
}

type tolerance struct{ rel, abs float64 }

// agree is the tolerance rule: |a-b| <= abs + rel*max(|a|,|b|), where NaN
// agrees only with NaN and an infinity only with the same infinity.
func (t tolerance) agree(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return a == b
	}
	return math.Abs(a-b) <= t.abs+t.rel*math.Max(math.Abs(a), math.Abs(b))
}

// compareTrees compares two fetched results, each a file or a directory.
func compareTrees(ctx context.Context, a, b string, tol tolerance) (bool, error) {
	ta, err := listTree(a)
	if err != nil {
		return false, err
	}
	tb, err := listTree(b)
	if err != nil {
		return false, err
	}
	if len(ta) != len(tb) {
		return false, nil
	}
	names := make([]string, 0, len(ta))
	for name, mode := range ta {
		if mb, ok := tb[name]; !ok || mb.Type() != mode.Type() {
			return false, nil
		}
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		same, err := compareEntry(ctx, filepath.Join(a, name), filepath.Join(b, name), name, ta[name], tol)
		if err != nil || !same {
			return false, err
		}
	}
	return true, nil
}

// listTree maps each path under root (relative, "." for root itself) to
// its type. Symlinks are not followed: a result is what was exported.
func listTree(root string) (map[string]fs.FileMode, error) {
	entries := make(map[string]fs.FileMode)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		entries[filepath.ToSlash(rel)] = d.Type()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	return entries, nil
}

func compareEntry(ctx context.Context, a, b, name string, mode fs.FileMode, tol tolerance) (bool, error) {
	switch {
	case mode.IsDir():
		return true, nil
	case mode&fs.ModeSymlink != 0:
		la, err := os.Readlink(a)
		if err != nil {
			return false, err
		}
		lb, err := os.Readlink(b)
		return la == lb, err
	case !mode.IsRegular():
		return false, fmt.Errorf("%s: not a regular file (%s)", name, mode.Type())
	}
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	kind := fileKind(name, fa, fb)
	var same bool
	switch kind {
	case ".npy":
		same, err = compareNPY(ctx, fa, fb, tol)
	case ".f32":
		same, err = compareRaw(ctx, fa, fb, 4, tol)
	case ".f64":
		same, err = compareRaw(ctx, fa, fb, 8, tol)
	default:
		same, err = compareBytes(ctx, fa, fb)
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	return same, nil
}

// fileKind is how a file is compared, by its extension. A result that is
// one file has no name of its own ("."), so two .npy files are known by
// their magic.
func fileKind(name string, a, b *os.File) string {
	if name != "." {
		return strings.ToLower(filepath.Ext(name))
	}
	for _, f := range []*os.File{a, b} {
		magic := make([]byte, len(npyMagic))
		if n, _ := f.ReadAt(magic, 0); !bytes.Equal(magic[:n], []byte(npyMagic)) {
			return ""
		}
	}
	return ".npy"
}

const chunkSize = 64 << 10

// compareBytes compares two files byte for byte.
func compareBytes(ctx context.Context, a, b *os.File) (bool, error) {
	sa, sb, err := sizes(a, b)
	if err != nil || sa != sb {
		return false, err
	}
	return streamEqual(ctx, a, b)
}

// streamEqual reads both readers to the end, a chunk at a time, so that
// multi-gigabyte outputs are compared without holding them in memory.
func streamEqual(ctx context.Context, a, b io.Reader) (bool, error) {
	ba, bb := make([]byte, chunkSize), make([]byte, chunkSize)
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		na, errA := io.ReadFull(a, ba)
		nb, errB := io.ReadFull(b, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if done, err := chunkEnd(errA, errB); done {
			return err == nil, err
		}
	}
}

// compareRaw compares raw little-endian float32 (elem 4) or float64
// (elem 8) files within tolerance.
func compareRaw(ctx context.Context, a, b *os.File, elem int, tol tolerance) (bool, error) {
	sa, sb, err := sizes(a, b)
	if err != nil {
		return false, err
	}
	for _, s := range []int64{sa, sb} {
		if s%int64(elem) != 0 {
			return false, fmt.Errorf("%d bytes is not a whole number of %d-byte floats", s, elem)
		}
	}
	if sa != sb {
		return false, nil
	}
	return compareFloats(ctx, a, b, sa, elem, tol)
}

// compareFloats streams n bytes of little-endian floats from each reader.
func compareFloats(ctx context.Context, a, b io.Reader, n int64, elem int, tol tolerance) (bool, error) {
	ra, rb := bufio.NewReaderSize(a, chunkSize), bufio.NewReaderSize(b, chunkSize)
	buf := make([]byte, chunkSize-chunkSize%(2*elem))
	half := len(buf) / 2
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		step := int(min(int64(half), n))
		ba, bb := buf[:step], buf[half:half+step]
		if _, err := io.ReadFull(ra, ba); err != nil {
			return false, fmt.Errorf("read: %w", err)
		}
		if _, err := io.ReadFull(rb, bb); err != nil {
			return false, fmt.Errorf("read: %w", err)
		}
		for i := 0; i < step; i += elem {
			if !tol.agree(decodeFloat(ba[i:], elem), decodeFloat(bb[i:], elem)) {
				return false, nil
			}
		}
		n -= int64(step)
	}
	return true, nil
}

func decodeFloat(b []byte, elem int) float64 {
	switch elem {
	case 2:
		return halfToFloat(binary.LittleEndian.Uint16(b))
	case 4:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

func sizes(a, b *os.File) (int64, int64, error) {
	ia, err := a.Stat()
	if err != nil {
		return 0, 0, err
	}
	ib, err := b.Stat()
	if err != nil {
		return 0, 0, err
	}
	return ia.Size(), ib.Size(), nil
}

// chunkEnd reports whether a pair of io.ReadFull calls reached the end.
func chunkEnd(errA, errB error) (bool, error) {
	for _, err := range []error{errA, errB} {
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return true, err
		}
	}
	return errA != nil || errB != nil, nil
}
