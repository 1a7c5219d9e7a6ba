package wasm

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// fakeClock is the only time a task sees. It starts at a fixed instant and
// moves only when the task reads or waits on it: each monotonic read advances
// it by a microsecond (so a loop that waits for time to pass ends) and a
// sleep advances it by the time asked for, instantly. Both depend only on
// what the task does, so the same task reads the same times everywhere.
type fakeClock struct {
	ns int64
}

// fakeEpoch is 2000-01-01T00:00:00Z, in seconds since the Unix epoch.
const fakeEpoch = 946684800

func (c *fakeClock) walltime() (int64, int32) {
	return fakeEpoch + c.ns/1e9, int32(c.ns % 1e9)
}

func (c *fakeClock) nanotime() int64 {
	c.ns += 1000
	return c.ns
}

func (c *fakeClock) nanosleep(ns int64) {
	if ns > 0 {
		c.ns += ns
	}
}

// randDomain separates the sandbox's key derivation from any other use of
// the seed; changing it changes every result, so it is versioned.
const randDomain = "vft/wasm/rand/v1"

// seededRand is the task's random_get source: ChaCha8 keyed by
// SHA-256(randDomain ‖ seed little-endian).
func seededRand(seed uint64) io.Reader {
	in := binary.LittleEndian.AppendUint64([]byte(randDomain), seed)
	return rand.NewChaCha8(sha256.Sum256(in))
}

// limitedAllocator backs the task's linear memory and refuses to grow it past
// limit. wazero turns the refusal into a failed memory.grow (-1 to the
// module); hit records it so that the run can be reported as ErrMemoryLimit
// whatever the module does next (a Go module throws "out of memory").
type limitedAllocator struct {
	limit uint64
	hit   atomic.Bool
}

func (a *limitedAllocator) Allocate(capacity, _ uint64) experimental.LinearMemory {
	return &limitedMemory{alloc: a, buf: make([]byte, 0, min(capacity, a.limit))}
}

type limitedMemory struct {
	alloc *limitedAllocator
	buf   []byte
}

func (m *limitedMemory) Reallocate(size uint64) []byte {
	if size > m.alloc.limit {
		m.alloc.hit.Store(true)
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// Grow geometrically like append, within the limit, so that a module
	// growing page by page does not copy its whole memory each time.
	newCap := min(max(size, uint64(cap(m.buf))*5/4), m.alloc.limit)
	buf := make([]byte, size, newCap)
	copy(buf, m.buf)
	m.buf = buf
	return buf
}

func (m *limitedMemory) Free() { m.buf = nil }
