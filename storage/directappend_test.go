//go:build linux

package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-datastore"
	ipld "github.com/ipfs/go-ipld-format"
)

// Direct appends stage records and write them in aligned blocks, with
// each batch's tail through the cache and again in the next batch's first
// block. The packs they write must be byte for byte those plain appends
// write: records of every length around the alignment and the stage's
// size, in batches that end anywhere in a block.
func TestDirectAppendsWriteWhatPlainAppendsDo(t *testing.T) {
	ctx := context.Background()
	sizes := []int{1, 100, directAlign - 1, directAlign, directAlign + 1, 70_000, 1 << 20,
		directStageSize - 80, directStageSize, 3*directStageSize + 5, 17, 1<<20 + 3}
	var batches [][]packPut
	for i := 0; i < len(sizes); {
		n := 1 + i%3 // batches of 1, 2 and 3 records
		var batch []packPut
		for ; n > 0 && i < len(sizes); n, i = n-1, i+1 {
			value := randomBytes(sizes[i], uint64(100+i))
			batch = append(batch, newPackPut(datastore.NewKey(fmt.Sprintf("block-%02d", i)), value))
		}
		batches = append(batches, batch)
	}
	// direct says whether batch i asks for direct writes.
	write := func(direct func(i int) bool) string {
		dir := t.TempDir()
		p := openTestPackStore(t, dir)
		if !p.direct {
			t.Fatalf("the test directory %s takes no O_DIRECT (%v): run the tests with TMPDIR on a disk file system", dir, probeDirect(dir))
		}
		for i, b := range batches {
			if err := p.commit(b, nil, direct(i)); err != nil {
				t.Fatal(err)
			}
			// Every batch is readable as soon as it is committed.
			for _, put := range b {
				if got, err := p.Get(ctx, put.key); err != nil || !bytes.Equal(got, put.value) {
					t.Fatalf("batch %d (direct: %v): Get(%s) right after it: %d bytes, %v; want %d bytes", i, direct(i), put.key, len(got), err, len(put.value))
				}
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	pack := func(dir string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "00000000"+packSuffix))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain := pack(write(func(int) bool { return false }))
	directDir := write(func(int) bool { return true })
	// A lane takes an import's direct batches and a fetch's plain ones
	// in turn.
	mixedDir := write(func(i int) bool { return i%2 == 1 })
	for name, got := range map[string][]byte{"direct": pack(directDir), "mixed": pack(mixedDir)} {
		if !bytes.Equal(got, plain) {
			at := 0
			for at < min(len(got), len(plain)) && got[at] == plain[at] {
				at++
			}
			t.Errorf("the %s pack (%d bytes) differs from the plain one (%d bytes) from byte %d on", name, len(got), len(plain), at)
		}
	}
	p := openTestPackStore(t, directDir)
	defer p.Close()
	for _, b := range batches {
		for _, put := range b {
			if got, err := p.Get(ctx, put.key); err != nil || !bytes.Equal(got, put.value) {
				t.Errorf("Get(%s) after reopening: %d bytes, %v; want %d bytes", put.key, len(got), err, len(put.value))
			}
		}
	}
}

// What a direct batch writes is not left in the page cache, which is the
// point of it; a plain batch's is.
func TestDirectBatchesBypassThePageCache(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			dir := t.TempDir()
			p := openTestPackStore(t, dir)
			defer p.Close()
			var batch []packPut
			for i := range 8 {
				batch = append(batch, newPackPut(datastore.NewKey(fmt.Sprint(i)), randomBytes(1<<20, uint64(200+i))))
			}
			if err := p.commit(batch, nil, direct); err != nil {
				t.Fatal(err)
			}
			resident, pages := cachedPages(t, filepath.Join(dir, "00000000"+packSuffix))
			if direct && resident > 2 { // the partial first and last pages
				t.Errorf("%d of the pack's %d pages are in the page cache after a direct batch, want at most 2", resident, pages)
			}
			if !direct && resident < pages/2 {
				t.Errorf("%d of the pack's %d pages are in the page cache after a plain batch: the test cannot tell", resident, pages)
			}
		})
	}
}

// The node's blockstore passes the request on: boxo's blockstore, the
// quota guard and the pack store's batches carry the context an import
// marks, for one block and for many.
func TestBlockstoreWritesDirectWhenAsked(t *testing.T) {
	for _, n := range []int{1, 8} {
		t.Run(fmt.Sprintf("%d blocks", n), func(t *testing.T) {
			repo := t.TempDir()
			s, err := New(testConfig(), repo, nil, nil, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var blks []blocks.Block
			for i := range n {
				blks = append(blks, merkledag.NewRawNode(randomBytes(1<<20, uint64(400+i))))
			}
			if err := s.Blockstore().PutMany(withDirectWrites(context.Background()), blks); err != nil {
				t.Fatal(err)
			}
			packs, _ := packFiles(t, repo)
			if len(packs) != 1 {
				t.Fatalf("packs %v, want one", packs)
			}
			if resident, pages := cachedPages(t, packs[0]); resident > 2 {
				t.Errorf("%d of the pack's %d pages are in the page cache after a direct write, want at most 2", resident, pages)
			}
		})
	}
}

// cachedPages counts the pages of the file at path in the page cache.
func cachedPages(t *testing.T, path string) (resident, pages int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	// x/sys has no Mincore wrapper on Linux.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for _, v := range vec {
		resident += int(v & 1)
	}
	return resident, len(vec)
}

// An import writes its first directAfter bytes through the page cache and
// the rest past it.
func TestImportWritesDirectAfterItsStart(t *testing.T) {
	ctx := context.Background()
	rec := &directRecorder{}
	b := newBatchDAG(ctx, rec, nil)
	b.directAfter = 3 << 20
	for i := range 6 { // 1 MiB leaves: a batch each
		if err := b.Add(ctx, merkledag.NewRawNode(randomBytes(1<<20, uint64(300+i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var direct, plain int
	for _, d := range rec.direct {
		if d {
			direct++
		} else {
			plain++
		}
	}
	if plain != 3 || direct != 3 {
		t.Fatalf("batches written through the cache: %d, past it: %d; want 3 and 3", plain, direct)
	}
}

// A file known to be larger than directAfter is written past the page
// cache from its first byte; a smaller one goes through the cache.
func TestLargeFileWrittenPastTheCacheFromItsStart(t *testing.T) {
	data := randomBytes(8<<20, 65)
	for _, c := range []struct {
		name   string
		claims int64 // the size the file reports
		direct bool
	}{
		{"small file", int64(len(data)), false},
		{"file over directAfter", directAfter + 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Chunker = "size-1048576"
			repo := t.TempDir()
			s, err := New(cfg, repo, nil, nil, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			f := &sizedFile{File: files.NewBytesFile(data), size: c.claims}
			if _, err := s.AddNode(context.Background(), f, AddOptions{}, -1); err != nil {
				t.Fatal(err)
			}
			packs, _ := packFiles(t, repo)
			var resident, pages int
			for _, p := range packs {
				r, n := cachedPages(t, p)
				resident, pages = resident+r, pages+n
			}
			// Each direct batch leaves at most its two partial pages cached.
			if c.direct && resident > 2*9 {
				t.Errorf("%d of %d pages in the page cache; want the blocks written past it", resident, pages)
			}
			if !c.direct && resident < pages/2 {
				t.Errorf("%d of %d pages in the page cache; want the blocks written through it", resident, pages)
			}
		})
	}
}

// sizedFile reports the size given, not its content's.
type sizedFile struct {
	files.File
	size int64
}

func (f *sizedFile) Size() (int64, error) { return f.size, nil }

// directRecorder is a DAGService that records whether each AddMany asked
// for direct writes.
type directRecorder struct {
	ipld.DAGService
	mu     sync.Mutex
	direct []bool
}

func (r *directRecorder) AddMany(ctx context.Context, nodes []ipld.Node) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.direct = append(r.direct, wantsDirect(ctx))
	return nil
}

// A direct write that fails fails its batch: none of the batch is
// indexed, the blocks committed before it are still read back, and the
// lane goes on in a new pack.
func TestFailedDirectWriteFailsOnlyItsBatch(t *testing.T) {
	ctx := context.Background()
	p := openTestPackStore(t, t.TempDir())
	defer p.Close()
	if !p.direct {
		t.Fatal("the test directory takes no O_DIRECT: run the tests with TMPDIR on a disk file system")
	}
	batch := func(name string, n int) []packPut {
		var puts []packPut
		for i := range n {
			puts = append(puts, newPackPut(datastore.NewKey(fmt.Sprintf("%s-%d", name, i)), randomBytes(1<<20, uint64(len(name)*100+i))))
		}
		return puts
	}
	before, failing, after := batch("before", 2), batch("failing", 3), batch("after", 2)
	if err := p.commit(before, nil, true); err != nil {
		t.Fatal(err)
	}
	// Every lane's direct descriptor fails from now on.
	for _, l := range p.lanes {
		if l.direct != nil {
			l.direct.direct.Close()
		}
	}
	if err := p.commit(failing, nil, true); err == nil {
		t.Fatal("a batch whose direct writes failed was committed")
	}
	if err := p.commit(after, nil, true); err != nil {
		t.Fatalf("the batch after a failed one: %v", err)
	}
	for _, put := range append(before, after...) {
		if got, err := p.Get(ctx, put.key); err != nil || !bytes.Equal(got, put.value) {
			t.Errorf("Get(%s): %d bytes, %v; want the %d bytes committed", put.key, len(got), err, len(put.value))
		}
	}
	for _, put := range failing {
		if has, _ := p.Has(ctx, put.key); has {
			t.Errorf("%s of the failed batch is indexed", put.key)
		}
	}
}
