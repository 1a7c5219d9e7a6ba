package storage

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	chunker "github.com/ipfs/boxo/chunker"
)

// An import's leaves are read into buffers mapped outside the Go heap,
// and each goes back to its pool once its block is on disk
// (recycleLeaves). On the heap, the leaves in flight (read ahead, being
// linked, being written: about eight 1 MiB chunks) were most of what was
// live during an import, and the collector lets the heap grow to twice
// what is live before it runs: a 1 GiB import ended before that, a
// 10 GiB import reached it, and its peak RSS was 1.2–1.3× the 1 GiB
// one's. Mapped, the buffers count once, whatever the file's size, and
// the heap holds only the small garbage of CIDs and links
// (docs/BENCHMARKS.md, issue #18).
//
// A mapping is never unmapped: a block kept by mistake past its recycling
// would read another leaf's bytes, as with any pooled buffer, and never
// fault. An idle pool gives the pages of all but leafPoolKeep buffers
// back to the system after leafPoolIdle. A buffer that is never returned
// (an import's batch that failed in flatfs, which may still be writing
// it) stays mapped; past leafPoolMaxMapped mappings the pool hands out
// heap buffers, so that such losses are bounded.
const (
	leafPoolKeep      = 2
	leafPoolIdle      = 10 * time.Second
	leafPoolMaxMapped = 64
)

// leafPool hands out buffers of one size (a fixed-size chunker's).
type leafPool struct {
	size int
	mu   sync.Mutex
	// warm are idle buffers whose pages are in memory, cold idle ones
	// whose pages went back to the system (they read as zeros).
	warm, cold [][]byte
	mapped     int
	trimmer    *time.Timer // runs trim once the pool has been idle
}

var leafPools = struct {
	sync.Mutex
	bySize map[int]*leafPool
	// owner finds the pool of a mapped buffer by its first byte.
	owner map[*byte]*leafPool
}{bySize: map[int]*leafPool{}, owner: map[*byte]*leafPool{}}

// leafPoolFor returns the process's pool of buffers of size bytes.
func leafPoolFor(size int) *leafPool {
	leafPools.Lock()
	defer leafPools.Unlock()
	p := leafPools.bySize[size]
	if p == nil {
		p = &leafPool{size: size}
		p.trimmer = time.AfterFunc(leafPoolIdle, p.trim)
		leafPools.bySize[size] = p
	}
	return p
}

// get returns an idle buffer, else a newly mapped one, else (mapping
// failed, or leafPoolMaxMapped reached) one from the heap.
func (p *leafPool) get() []byte {
	p.mu.Lock()
	if b, ok := pop(&p.warm); ok {
		p.mu.Unlock()
		return b
	}
	if b, ok := pop(&p.cold); ok {
		p.mu.Unlock()
		return b
	}
	if p.mapped >= leafPoolMaxMapped {
		p.mu.Unlock()
		return make([]byte, p.size)
	}
	p.mapped++
	p.mu.Unlock()
	b, err := mapLeaf(p.size)
	if err != nil {
		p.mu.Lock()
		p.mapped--
		p.mu.Unlock()
		return make([]byte, p.size)
	}
	leafPools.Lock()
	leafPools.owner[unsafe.SliceData(b)] = p
	leafPools.Unlock()
	return b
}

func pop(list *[][]byte) ([]byte, bool) {
	n := len(*list)
	if n == 0 {
		return nil, false
	}
	b := (*list)[n-1]
	*list = (*list)[:n-1]
	return b, true
}

// put takes back b, a mapped buffer get returned, once nothing holds it.
func (p *leafPool) put(b []byte) {
	p.mu.Lock()
	p.warm = append(p.warm, b[:p.size])
	p.mu.Unlock()
	p.trimmer.Reset(leafPoolIdle)
}

// trim gives the pages of the idle buffers past leafPoolKeep back to the
// system, once no buffer has come back for leafPoolIdle.
func (p *leafPool) trim() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.warm) > leafPoolKeep {
		b, _ := pop(&p.warm)
		releaseLeaf(b)
		p.cold = append(p.cold, b)
	}
}

// putLeaf returns b to its pool if it is a mapped leaf buffer, and says
// whether it was.
func putLeaf(b []byte) bool {
	if cap(b) == 0 {
		return false
	}
	leafPools.Lock()
	p := leafPools.owner[unsafe.SliceData(b)]
	leafPools.Unlock()
	if p == nil || cap(b) != p.size {
		return false
	}
	p.put(b)
	return true
}

// newLeafSplitter splits r as chunker.FromString(r, spec) does. A
// fixed-size chunker of at least minPooledBlock reads into a leafPool's
// buffers when the leaves are raw: a raw leaf's block is its chunk, and
// goes back to the pool with it (recycleLeaves). Other chunkers, and
// leaves wrapped in UnixFS (whose chunks nobody returns), are boxo's.
func newLeafSplitter(r io.Reader, spec string, rawLeaves bool) (chunker.Splitter, error) {
	size, ok := fixedChunkSize(spec)
	if !ok || size < minPooledBlock || !rawLeaves {
		return chunker.FromString(r, spec)
	}
	return &leafSplitter{r: r, pool: leafPoolFor(size)}, nil
}

// fixedChunkSize is N in "size-N", when the spec is one boxo takes.
func fixedChunkSize(spec string) (int, bool) {
	rest, ok := strings.CutPrefix(spec, "size-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n <= 0 || n > chunker.ChunkSizeLimit {
		return 0, false
	}
	return n, true
}

// leafSplitter is boxo's size splitter with its buffers from a leafPool:
// the same chunks, so the same CIDs as kubo's.
type leafSplitter struct {
	r    io.Reader
	pool *leafPool
	err  error
}

func (s *leafSplitter) NextBytes() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	buf := s.pool.get()
	n, err := io.ReadFull(s.r, buf)
	switch {
	case err == nil:
		return buf, nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A file's short last chunk, on the heap: it is most of a small
		// file's import, and costs a pooled megabyte nothing.
		s.err = io.EOF
		last := bytes.Clone(buf[:n])
		recycle(buf)
		return last, nil
	default:
		s.err = err
		recycle(buf)
		return nil, err
	}
}

func (s *leafSplitter) Reader() io.Reader { return s.r }
