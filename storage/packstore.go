package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// packStore is the block datastore of new repos: blocks are appended to
// a few large pack files (<dir>/NNNNNNNN.pack) and a pebble index
// (<dir>/index) maps each key to its place. flatfs costs a file create,
// write, rename and a directory entry per block; on this project's
// 2-core test VM writing 512 one-MiB files took 1.6 s where appending the
// same bytes to one file took 0.2 s, so most of an import went there.
//
// Crash safety without an fsync per block: a block's bytes are written
// (write(2), or past the page cache by directAppender, whose batch ends
// with every byte written) before its index entry is committed, so after
// a kill -9 every indexed block is complete (the kernel keeps what was
// written). Bytes
// written but never indexed are dead space that compaction reclaims.
// After a power loss the index may be newer than the pack data; every
// entry carries a CRC-32C of its block, checked on every read, and a block
// that fails it is dropped from the index and reported missing, so it is
// fetched again. Sync fsyncs the packs and the index, for callers that
// need more.
//
// Deleting a block only drops its index entry; a pack whose blocks are all
// deleted is removed, and Compact moves the live blocks out of packs that
// are mostly dead.
type packStore struct {
	dir string
	idx *pebble.DB
	log *slog.Logger

	// life keeps Close from closing the index under a reader: pebble
	// panics on a closed DB, and bitswap still answers peers for a moment
	// after the node stops. Every exported method holds it shared (open).
	life    sync.RWMutex
	closed  bool
	iters   map[*packIter]struct{} // open Query iterators, closed by Close (under life and itersMu)
	itersMu sync.Mutex

	// lanes are the packs being appended to, each under its own lock:
	// concurrent writers (an import's batches) append to different files
	// at once. Appends to one file are serialized by the kernel, and on
	// the project's test VM, where a page first written costs a fault in
	// the host, one file took a 10 GiB import's writes to the speed of a
	// single `dd` (docs/BENCHMARKS.md).
	lanes    []*packLane
	nextLane atomic.Uint32
	// direct: the file system takes direct appends (directAppender), which
	// a commit whose context asks for them (withDirectWrites) makes.
	direct bool

	// wmu orders the index: one commit at a time looks up what it
	// replaces, indexes its appends and deletes, and removes packs left
	// empty. Compaction holds every lane and wmu.
	wmu sync.Mutex

	mu      sync.RWMutex // guards everything below
	packs   map[uint32]*os.File
	size    map[uint32]int64    // bytes in each pack file
	live    map[uint32]int64    // bytes of indexed blocks in each pack
	total   int64               // sum of size
	dirty   map[uint32]*os.File // packs written since the last Sync
	current map[uint32]bool     // packs a lane appends to
	// pending counts, per pack, the commits whose appends are in it but
	// not indexed yet: such a pack is not removed even when its indexed
	// blocks are all gone.
	pending map[uint32]int
	nextID  uint32 // the next new pack's number

	// indexedTo is, per pack, the end of the last record an index commit
	// accounted for, as the index holds it (packEndKey). Under wmu.
	indexedTo map[uint32]int64
}

// The index's keys are the blocks' datastore keys, which begin with "/",
// and, before them, one key per pack with the end of the last record
// indexed in it (packEndKey). Opening the store indexes again what a
// pack holds past that end: the records of batches whose index commit a
// kill -9 lost. The end of the last live block is not that place: a
// deleted block at the end of a pack would be indexed again.
var (
	blockKeys     = &pebble.IterOptions{LowerBound: []byte("/")}
	packEndPrefix = []byte("\x00pack-end/")
	packEndKeys   = &pebble.IterOptions{LowerBound: packEndPrefix, UpperBound: []byte("\x00pack-end0")}
)

func packEndKey(id uint32) []byte {
	return binary.BigEndian.AppendUint32(slices.Clone(packEndPrefix), id)
}

// packLane is one pack being appended to.
type packLane struct {
	mu   sync.Mutex
	open bool     // id is this lane's pack (cur is nil after a failed write)
	cur  *os.File // nil: the next append starts a new pack
	id   uint32
	size int64
	// direct writes cur's records past the page cache for the batches
	// that ask (nil until one does; cur writes the others). Between
	// batches it holds nothing.
	direct *directAppender
}

const (
	packSuffix = ".pack"
	// packMaxSize is where a new pack is started. Large enough that a
	// 10 GiB repo has 40 files, small enough that compacting one after a
	// GC copies little.
	packMaxSize = 256 << 20
	// packLanes is how many packs are appended to at once (packStore.lanes):
	// an import writes max(2, cores) batches at once.
	packLanes = 2
	// packMarker marks a directory as a pack store (flatfs has SHARDING).
	packMarker = "PACKSTORE"
	// A record in a pack: header, key, block. The header repeats what the
	// index holds, so a pack can be read without its index.
	packHeaderLen = 12 // key length u32, block length u32, CRC-32C u32
	// An index value: pack id u32, offset of the block u64, length u32, CRC-32C u32.
	packEntryLen = 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type packEntry struct {
	pack   uint32
	offset int64
	length uint32
	crc    uint32
}

func (e packEntry) encode() []byte {
	b := make([]byte, packEntryLen)
	binary.LittleEndian.PutUint32(b[0:], e.pack)
	binary.LittleEndian.PutUint64(b[4:], uint64(e.offset))
	binary.LittleEndian.PutUint32(b[12:], e.length)
	binary.LittleEndian.PutUint32(b[16:], e.crc)
	return b
}

func decodePackEntry(b []byte) (packEntry, error) {
	if len(b) != packEntryLen {
		return packEntry{}, fmt.Errorf("pack index entry of %d bytes, want %d", len(b), packEntryLen)
	}
	return packEntry{
		pack:   binary.LittleEndian.Uint32(b[0:]),
		offset: int64(binary.LittleEndian.Uint64(b[4:])),
		length: binary.LittleEndian.Uint32(b[12:]),
		crc:    binary.LittleEndian.Uint32(b[16:]),
	}, nil
}

// isFlatfsDir says whether dir holds a flatfs block store (repos created
// before the pack store).
func isFlatfsDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "SHARDING"))
	return err == nil
}

// openPackStore opens (creating if needed) the pack store in dir. Packs
// no index entry points into (left by a crash during compaction, or fully
// deleted) are removed; appends go to a new pack, so a torn record at the
// end of an old one is never built on.
func openPackStore(dir string, log *slog.Logger) (*packStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, packMarker), []byte("vft pack store v1\n"), 0o600); err != nil {
		return nil, err
	}
	db, err := pebble.Open(filepath.Join(dir, "index"), &pebble.Options{Logger: pebbleLogger{log}})
	if err != nil {
		return nil, fmt.Errorf("open pack index: %w", err)
	}
	p := &packStore{
		dir: dir, idx: db, log: log,
		dirty:   map[uint32]*os.File{},
		packs:   map[uint32]*os.File{},
		size:    map[uint32]int64{},
		live:    map[uint32]int64{},
		current: map[uint32]bool{},
		pending: map[uint32]int{},
		iters:   map[*packIter]struct{}{},

		indexedTo: map[uint32]int64{},
	}
	for range packLanes {
		p.lanes = append(p.lanes, &packLane{})
	}
	if err := probeDirect(dir); err != nil {
		log.Info("the pack store's file system takes no direct writes; blocks are written through the page cache", "dir", dir, "err", err)
	} else {
		p.direct = true
	}
	if err := p.load(); err != nil {
		db.Close()
		p.closeFiles()
		return nil, err
	}
	return p, nil
}

func (p *packStore) load() error {
	ents, err := os.ReadDir(p.dir)
	if err != nil {
		return err
	}
	var ids []uint32
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), packSuffix)
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 32)
		if err != nil {
			continue
		}
		ids = append(ids, uint32(id))
	}
	storedEnds, err := p.readPackEnds()
	if err != nil {
		return err
	}
	indexedEnd := maps.Clone(storedEnds)
	it, err := p.idx.NewIter(blockKeys)
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		e, err := decodePackEntry(it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("pack index, key %q: %w", it.Key(), err)
		}
		p.live[e.pack] += int64(e.length)
		indexedEnd[e.pack] = max(indexedEnd[e.pack], e.offset+int64(e.length))
	}
	if err := it.Close(); err != nil {
		return err
	}
	// Index commits are not synced, and pebble keeps unsynced commits in
	// memory for a while: after a kill -9 the packs can hold blocks the
	// index lost, even of an import that returned. Records carry their key
	// and CRC, so index them again.
	for _, id := range ids {
		if err := p.recoverTail(id, indexedEnd[id]); err != nil {
			return err
		}
	}
	var next uint32
	for _, id := range ids {
		next = max(next, id+1)
		path := p.packPath(id)
		if p.live[id] == 0 {
			if err := os.Remove(path); err != nil {
				return err
			}
			p.log.Debug("removed a pack with no live blocks", "pack", path)
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		p.packs[id], p.size[id] = f, st.Size()
		p.total += st.Size()
	}
	for id := range p.live {
		if _, ok := p.packs[id]; !ok {
			return fmt.Errorf("the pack index points into %s, which is missing; the block store in %s is damaged (move it away and fetch the content again)", p.packPath(id), p.dir)
		}
	}
	p.nextID = next
	if err := p.dropTornTails(); err != nil {
		return err
	}
	return p.writePackEnds(storedEnds)
}

// readPackEnds reads where each pack's indexed records end (packEndKey).
func (p *packStore) readPackEnds() (map[uint32]int64, error) {
	ends := map[uint32]int64{}
	it, err := p.idx.NewIter(packEndKeys)
	if err != nil {
		return nil, err
	}
	for it.First(); it.Valid(); it.Next() {
		id, ok := bytes.CutPrefix(it.Key(), packEndPrefix)
		if len(id) != 4 || !ok || len(it.Value()) != 8 {
			it.Close()
			return nil, fmt.Errorf("pack index, key %q: not a pack's end; the block store in %s is damaged (move it away and fetch the content again)", it.Key(), p.dir)
		}
		ends[binary.BigEndian.Uint32(id)] = int64(binary.BigEndian.Uint64(it.Value()))
	}
	return ends, it.Close()
}

// writePackEnds records, once load has indexed what the packs hold, that
// everything in them is accounted for (each pack's end is its size), and
// forgets the stored ends of packs that are gone (a pack's number can be
// used again after a restart). Repos from before the pack ends were kept
// get them here.
func (p *packStore) writePackEnds(stored map[uint32]int64) error {
	b := p.idx.NewBatch()
	defer b.Close()
	for id := range stored {
		if _, ok := p.size[id]; !ok {
			if err := b.Delete(packEndKey(id), nil); err != nil {
				return err
			}
		}
	}
	for id, size := range p.size {
		if stored[id] != size {
			if err := b.Set(packEndKey(id), binary.BigEndian.AppendUint64(nil, uint64(size)), nil); err != nil {
				return err
			}
		}
		p.indexedTo[id] = size
	}
	if b.Empty() {
		return nil
	}
	return b.Commit(pebble.Sync)
}

// dropTornTails forgets blocks indexed past the end of their pack: after
// a power loss the index can be on disk while the end of a pack is not.
// Those blocks are missing and get fetched again like any other.
func (p *packStore) dropTornTails() error {
	it, err := p.idx.NewIter(blockKeys)
	if err != nil {
		return err
	}
	b := p.idx.NewBatch()
	defer b.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		e, err := decodePackEntry(it.Value())
		if err != nil {
			it.Close()
			return err
		}
		if e.offset+int64(e.length) > p.size[e.pack] {
			if err := b.Delete(slices.Clone(it.Key()), nil); err != nil {
				it.Close()
				return err
			}
			p.live[e.pack] -= int64(e.length)
			n++
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	p.log.Warn("blocks were indexed past the end of their pack (the disk lost writes, e.g. in a power cut); forgetting them so they are fetched again", "blocks", n, "dir", p.dir)
	return b.Commit(pebble.Sync)
}

// Bounds on a record header read back from a pack: larger values mean
// the bytes are not a record (a torn write), and the scan stops there.
const (
	packMaxKeyLen   = 1 << 10
	packMaxBlockLen = 64 << 20
)

// recoverTail indexes the complete records of pack id from offset from
// on, stopping at the first torn or garbled one, and syncs the index.
func (p *packStore) recoverTail(id uint32, from int64) error {
	f, err := os.Open(p.packPath(id))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	b := p.idx.NewBatch()
	defer b.Close()
	n := 0
	err = scanPackRecords(f, st.Size(), from, func(key []byte, e packEntry) error {
		e.pack = id
		if _, ok, err := p.lookup(key); err != nil || ok {
			return err
		}
		if err := b.Set(key, e.encode(), nil); err != nil {
			return err
		}
		p.live[id] += int64(e.length)
		n++
		return nil
	})
	if err != nil || n == 0 {
		return err
	}
	p.log.Info("indexed blocks the pack index had lost (the node stopped without closing the store)", "pack", p.packPath(id), "blocks", n)
	return b.Commit(pebble.Sync)
}

// scanPackRecords calls fn with each whole record of a pack of size bytes
// from offset from on (its key, and where its block is), and stops at the
// first record that is torn, garbled or fails its CRC: what follows a torn
// write cannot be trusted to be aligned.
func scanPackRecords(f io.ReaderAt, size, from int64, fn func(key []byte, e packEntry) error) error {
	off := from
	hdr := make([]byte, packHeaderLen)
	for off >= 0 && off+packHeaderLen <= size {
		if _, err := f.ReadAt(hdr, off); err != nil {
			return nil
		}
		keyLen := binary.LittleEndian.Uint32(hdr[0:])
		e := packEntry{length: binary.LittleEndian.Uint32(hdr[4:]), crc: binary.LittleEndian.Uint32(hdr[8:])}
		if keyLen == 0 || keyLen > packMaxKeyLen || e.length > packMaxBlockLen {
			return nil
		}
		e.offset = off + packHeaderLen + int64(keyLen)
		if e.offset+int64(e.length) > size {
			return nil
		}
		buf := make([]byte, int(keyLen)+int(e.length))
		if _, err := f.ReadAt(buf, off+packHeaderLen); err != nil {
			return nil
		}
		key, data := buf[:keyLen], buf[keyLen:]
		if key[0] != '/' || crc32.Checksum(data, castagnoli) != e.crc {
			return nil
		}
		if err := fn(key, e); err != nil {
			return err
		}
		off = e.offset + int64(e.length)
	}
	return nil
}

func (p *packStore) packPath(id uint32) string {
	return filepath.Join(p.dir, fmt.Sprintf("%08d%s", id, packSuffix))
}

// lane takes a lane for a commit's appends: the first free one, so that
// one writer at a time keeps appending to one pack and a file's blocks
// stay together, else the next in turn. The caller unlocks it.
func (p *packStore) lane() *packLane {
	for _, l := range p.lanes {
		if l.mu.TryLock() {
			return l
		}
	}
	l := p.lanes[int(p.nextLane.Add(1))%len(p.lanes)]
	l.mu.Lock()
	return l
}

// appendBatch appends puts to lane l's pack (l.mu held) and returns where
// each went, and the packs it wrote to, which stay pending until the
// caller has indexed them (indexLocked) or given up (unpend).
//
// direct asks for the batch to be written past the page cache
// (directAppender), where the store's file system takes it.
func (p *packStore) appendBatch(l *packLane, puts []packPut, direct bool) (entries []packEntry, touched []uint32, err error) {
	direct = direct && p.direct
	entries = make([]packEntry, 0, len(puts))
	for _, put := range puts {
		e, err := p.appendLocked(l, put.key.String(), put.value, put.crc, direct)
		if err != nil {
			return nil, touched, err
		}
		// Counted after the write: the pack is the lane's until the lane
		// moves on, which only this commit, holding it, can make it do.
		if !slices.Contains(touched, e.pack) {
			touched = append(touched, e.pack)
			p.mu.Lock()
			p.pending[e.pack]++
			p.mu.Unlock()
		}
		entries = append(entries, e)
	}
	if direct && l.direct != nil {
		if err := l.direct.flush(); err != nil {
			return nil, touched, p.abandonLocked(l, err)
		}
	}
	return entries, touched, nil
}

// unpend ends a commit's claim on the packs it appended to.
func (p *packStore) unpend(touched []uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unpendLocked(touched)
}

func (p *packStore) unpendLocked(touched []uint32) {
	for _, id := range touched {
		if p.pending[id]--; p.pending[id] <= 0 {
			delete(p.pending, id)
		}
	}
}

// appendLocked writes one record to lane l's pack (starting a new pack
// when it is full), past the page cache if direct, and returns where the
// block went. Caller holds l.mu.
func (p *packStore) appendLocked(l *packLane, key string, value []byte, crc uint32, direct bool) (packEntry, error) {
	if l.cur == nil || l.size >= packMaxSize {
		if direct && l.direct != nil {
			// This batch's records in the full pack are written before
			// the next pack starts.
			if err := l.direct.flush(); err != nil {
				return packEntry{}, p.abandonLocked(l, err)
			}
		}
		if err := p.rotateLocked(l); err != nil {
			return packEntry{}, err
		}
	}
	if direct && l.direct == nil {
		d, err := openDirectAppender(l.cur.Name())
		if err != nil {
			return packEntry{}, fmt.Errorf("open %s for direct writes: %w", l.cur.Name(), err)
		}
		l.direct = d
	}
	e := packEntry{pack: l.id, length: uint32(len(value)), crc: crc}
	hdr := make([]byte, packHeaderLen, packHeaderLen+len(key))
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(key)))
	binary.LittleEndian.PutUint32(hdr[4:], e.length)
	binary.LittleEndian.PutUint32(hdr[8:], e.crc)
	hdr = append(hdr, key...)
	e.offset = l.size + int64(len(hdr))
	var n int
	var err error
	if direct {
		if err = l.direct.append(hdr, l.size); err == nil {
			err = l.direct.append(value, e.offset)
		}
		if err != nil {
			return packEntry{}, p.abandonLocked(l, err)
		}
		n = len(hdr) + len(value)
	} else {
		// Two writes rather than one: joining them would copy the block.
		n, err = l.cur.Write(hdr)
		if err == nil {
			var m int
			m, err = l.cur.Write(value)
			n += m
		}
	}
	l.size += int64(n)
	p.mu.Lock()
	p.size[l.id] += int64(n)
	p.total += int64(n)
	p.mu.Unlock()
	if err != nil {
		// The partial record is dead space. Start the next record in a new
		// pack, so a scan of this one stops only at its end.
		name := l.cur.Name()
		l.cur = nil
		return packEntry{}, fmt.Errorf("write block to %s: %w", name, err)
	}
	return e, nil
}

// abandonLocked ends lane l's pack after a failed direct write: what the
// batch staged is lost and not indexed, and the next append starts a new
// pack, so a scan of this one stops only at its end. Caller holds l.mu.
func (p *packStore) abandonLocked(l *packLane, err error) error {
	name := l.cur.Name()
	// The batch's records were counted as they were staged, not as they
	// were written: the file says what the pack takes.
	if st, statErr := l.cur.Stat(); statErr == nil {
		p.mu.Lock()
		p.total += st.Size() - p.size[l.id]
		p.size[l.id] = st.Size()
		p.mu.Unlock()
	}
	l.direct.close()
	l.direct, l.cur = nil, nil
	return fmt.Errorf("write block to %s: %w", name, err)
}

// rotateLocked starts a new pack for lane l. Caller holds l.mu.
func (p *packStore) rotateLocked(l *packLane) error {
	p.mu.Lock()
	id := p.nextID
	p.nextID++
	p.mu.Unlock()
	path := p.packPath(id)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create pack: %w", err)
	}
	p.mu.Lock()
	if l.open {
		delete(p.current, l.id)
	}
	p.packs[id], p.size[id] = f, 0
	p.dirty[id] = f
	p.current[id] = true
	p.mu.Unlock()
	if l.direct != nil {
		l.direct.close() // between batches: nothing is staged
	}
	l.open, l.cur, l.id, l.size, l.direct = true, f, id, 0, nil
	return nil
}

// open holds Close off until release is called, or says ErrClosed.
func (p *packStore) open() (release func(), err error) {
	p.life.RLock()
	if p.closed {
		p.life.RUnlock()
		return nil, ErrClosed
	}
	return p.life.RUnlock, nil
}

// lookup reads key's index entry; ok is false when there is none.
func (p *packStore) lookup(key []byte) (e packEntry, ok bool, err error) {
	v, closer, err := p.idx.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return packEntry{}, false, nil
	}
	if err != nil {
		return packEntry{}, false, err
	}
	e, err = decodePackEntry(v)
	closer.Close()
	return e, err == nil, err
}

// commit appends puts to a lane's pack, then indexes them and dels in
// one pebble batch: the order that makes a kill -9 harmless.
func (p *packStore) commit(puts []packPut, dels []datastore.Key, direct bool) error {
	var entries []packEntry
	var touched []uint32
	if len(puts) > 0 {
		l := p.lane()
		var err error
		entries, touched, err = p.appendBatch(l, puts, direct)
		l.mu.Unlock()
		if err != nil {
			p.unpend(touched)
			return err
		}
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.indexLocked(puts, entries, touched, dels)
}

// indexLocked indexes puts, appended at entries (to the packs touched,
// which it unpends), and deletes dels, in one pebble batch, and removes
// the packs that leaves with no live block. Caller holds wmu.
func (p *packStore) indexLocked(puts []packPut, entries []packEntry, touched []uint32, dels []datastore.Key) error {
	unpended := false
	defer func() {
		if !unpended {
			p.unpend(touched)
		}
	}()
	b := p.idx.NewBatch()
	defer b.Close()
	gained := map[uint32]int64{}
	lost := map[uint32]int64{}
	seen := map[string]packEntry{}
	for i, put := range puts {
		key := put.key.String()
		if old, ok, err := p.lookup([]byte(key)); err != nil {
			return err
		} else if ok {
			lost[old.pack] += int64(old.length)
		}
		e := entries[i]
		if old, ok := seen[key]; ok { // the same key twice in one batch
			gained[old.pack] -= int64(old.length)
		}
		seen[key] = e
		gained[e.pack] += int64(e.length)
		if err := b.Set([]byte(key), e.encode(), nil); err != nil {
			return err
		}
	}
	ends := map[uint32]int64{}
	for _, e := range entries {
		if end := e.offset + int64(e.length); end > max(ends[e.pack], p.indexedTo[e.pack]) {
			ends[e.pack] = end
		}
	}
	for id, end := range ends {
		if err := b.Set(packEndKey(id), binary.BigEndian.AppendUint64(nil, uint64(end)), nil); err != nil {
			return err
		}
	}
	for _, k := range dels {
		key := k.String()
		if e, ok := seen[key]; ok {
			gained[e.pack] -= int64(e.length)
			delete(seen, key)
		}
		if old, ok, err := p.lookup([]byte(key)); err != nil {
			return err
		} else if ok {
			lost[old.pack] += int64(old.length)
		}
		if err := b.Delete([]byte(key), nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("index blocks: %w", err)
	}
	maps.Copy(p.indexedTo, ends)
	p.mu.Lock()
	p.unpendLocked(touched)
	unpended = true
	for id, n := range gained {
		p.live[id] += n
	}
	var empty []uint32
	for id, n := range lost {
		p.live[id] -= n
		if p.live[id] <= 0 && !p.current[id] && p.pending[id] == 0 {
			empty = append(empty, id)
		}
	}
	p.mu.Unlock()
	if len(empty) > 0 {
		if err := p.idx.LogData(nil, pebble.Sync); err != nil {
			return err
		}
	}
	for _, id := range empty {
		p.removePackLocked(id)
	}
	return nil
}

// removePackLocked deletes a pack no entry points into. Caller holds wmu
// and has synced the index: an index that lost the deletes must not
// outlive the pack.
func (p *packStore) removePackLocked(id uint32) {
	p.mu.Lock()
	f := p.packs[id]
	p.total -= p.size[id]
	delete(p.packs, id)
	delete(p.size, id)
	delete(p.live, id)
	delete(p.dirty, id)
	p.mu.Unlock()
	if f != nil {
		f.Close()
	}
	if err := os.Remove(p.packPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.log.Warn("remove empty pack", "pack", p.packPath(id), "err", err)
	}
	// Not synced: an end kept for a pack that is gone is dropped by the
	// next open (writePackEnds).
	delete(p.indexedTo, id)
	if err := p.idx.Delete(packEndKey(id), pebble.NoSync); err != nil {
		p.log.Warn("forget a removed pack's end", "pack", p.packPath(id), "err", err)
	}
}

type packPut struct {
	key   datastore.Key
	value []byte
	crc   uint32 // CRC-32C of value
}

// newPackPut computes the block's checksum before the write lock is taken:
// concurrent writers then share the checksumming, and the lock covers only
// the appends.
func newPackPut(key datastore.Key, value []byte) packPut {
	return packPut{key: key, value: value, crc: crc32.Checksum(value, castagnoli)}
}

func (p *packStore) Put(ctx context.Context, key datastore.Key, value []byte) error {
	release, err := p.open()
	if err != nil {
		return err
	}
	defer release()
	return p.commit([]packPut{newPackPut(key, value)}, nil, wantsDirect(ctx))
}

func (p *packStore) Delete(ctx context.Context, key datastore.Key) error {
	release, err := p.open()
	if err != nil {
		return err
	}
	defer release()
	return p.commit(nil, []datastore.Key{key}, false)
}

// errPackCRC marks a block whose bytes fail the checksum in its entry.
var errPackCRC = errors.New("block fails its checksum")

// read returns key's block, datastore.ErrNotFound, or errPackCRC.
func (p *packStore) read(key datastore.Key) ([]byte, error) { return p.readInto(key, nil) }

// readInto is read into buf when the block fits in its capacity, else
// into a new slice. A provider streaming a DAG (carServer.readLeaf) reads
// every leaf into one buffer: a new megabyte per leaf cost a loopback
// transfer about a tenth of its user CPU, clearing memory and collecting
// it.
func (p *packStore) readInto(key datastore.Key, buf []byte) ([]byte, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok, err := p.lookup(key.Bytes())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, datastore.ErrNotFound
	}
	f := p.packs[e.pack]
	if f == nil {
		return nil, fmt.Errorf("block %s: pack %d is missing", key, e.pack)
	}
	if cap(buf) >= int(e.length) {
		buf = buf[:e.length]
	} else {
		buf = make([]byte, e.length)
	}
	if _, err := f.ReadAt(buf, e.offset); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errPackCRC // the pack ends early: torn by a power loss
		}
		return nil, fmt.Errorf("read block %s: %w", key, err)
	}
	if crc32.Checksum(buf, castagnoli) != e.crc {
		return nil, errPackCRC
	}
	return buf, nil
}

// Get returns key's block. A block that fails its checksum (torn by a
// power loss, or bit rot) gives an error matching ErrCorruptBlock; the
// guarded blockstore deletes it and reports it missing, so it is fetched
// again.
func (p *packStore) Get(ctx context.Context, key datastore.Key) ([]byte, error) {
	return p.getInto(key, nil)
}

// getInto is Get into buf (readInto), for a caller done with the bytes
// before it reads the next block.
func (p *packStore) getInto(key datastore.Key, buf []byte) ([]byte, error) {
	release, err := p.open()
	if err != nil {
		return nil, err
	}
	defer release()
	return p.get(key, buf)
}

func (p *packStore) get(key datastore.Key, buf []byte) ([]byte, error) {
	buf, err := p.readInto(key, buf)
	if errors.Is(err, errPackCRC) {
		return nil, fmt.Errorf("block %s: %w: %w", key, ErrCorruptBlock, err)
	}
	return buf, err
}

func (p *packStore) Has(ctx context.Context, key datastore.Key) (bool, error) {
	release, err := p.open()
	if err != nil {
		return false, err
	}
	defer release()
	_, ok, err := p.lookup(key.Bytes())
	return ok, err
}

func (p *packStore) GetSize(ctx context.Context, key datastore.Key) (int, error) {
	release, err := p.open()
	if err != nil {
		return -1, err
	}
	defer release()
	e, ok, err := p.lookup(key.Bytes())
	if err != nil {
		return -1, err
	}
	if !ok {
		return -1, datastore.ErrNotFound
	}
	return int(e.length), nil
}

// Query lists keys (and values, unless KeysOnly) in key order; the
// block stores only ask for all keys.
func (p *packStore) Query(ctx context.Context, q query.Query) (query.Results, error) {
	release, err := p.open()
	if err != nil {
		return nil, err
	}
	defer release()
	pebbleIt, err := p.idx.NewIter(blockKeys)
	if err != nil {
		return nil, err
	}
	pebbleIt.First()
	it := &packIter{it: pebbleIt, done: func(it *packIter) {
		p.itersMu.Lock()
		delete(p.iters, it)
		p.itersMu.Unlock()
	}}
	p.itersMu.Lock()
	p.iters[it] = struct{}{}
	p.itersMu.Unlock()
	inner := query.Query{KeysOnly: q.KeysOnly, ReturnsSizes: q.ReturnsSizes}
	res := query.ResultsFromIterator(inner, query.Iterator{
		Next: func() (query.Result, bool) {
			release, err := p.open()
			if err != nil {
				return query.Result{Error: err}, true
			}
			defer release()
			return it.next(p, q.KeysOnly)
		},
		Close: it.close,
	})
	return query.NaiveQueryApply(q, res), nil
}

// packIter is a Query's walk over the index. Close closes the ones still
// open before the index itself, which refuses to close under an iterator.
type packIter struct {
	it        *pebble.Iterator
	done      func(*packIter)
	closeOnce sync.Once
	closeErr  error
	closed    bool // under the store's life lock
}

// next returns the entry under the iterator and moves on; the caller
// holds the store open.
func (it *packIter) next(p *packStore, keysOnly bool) (query.Result, bool) {
	if it.closed || !it.it.Valid() {
		return query.Result{}, false
	}
	key := string(it.it.Key())
	e, err := decodePackEntry(it.it.Value())
	it.it.Next()
	if err != nil {
		return query.Result{Error: err}, true
	}
	r := query.Result{Entry: query.Entry{Key: key, Size: int(e.length)}}
	if !keysOnly {
		v, err := p.get(datastore.RawKey(key), nil)
		if err != nil {
			return query.Result{Error: err}, true
		}
		r.Value = v
	}
	return r, true
}

func (it *packIter) close() error {
	it.closeOnce.Do(func() {
		it.closed = true
		it.closeErr = it.it.Close()
		it.done(it)
	})
	return it.closeErr
}

// Sync makes every block written so far durable: the packs, then the
// index, in that order.
func (p *packStore) Sync(ctx context.Context, prefix datastore.Key) error {
	release, err := p.open()
	if err != nil {
		return err
	}
	defer release()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.syncLocked()
}

// syncLocked fsyncs the packs written since the last call, the
// directory and the index. Caller holds wmu: a commit that has indexed
// its blocks wrote them before.
func (p *packStore) syncLocked() error {
	p.mu.RLock()
	dirty := maps.Clone(p.dirty)
	p.mu.RUnlock()
	for id, f := range dirty {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", f.Name(), err)
		}
		p.mu.Lock()
		if !p.current[id] {
			delete(p.dirty, id)
		}
		p.mu.Unlock()
	}
	if err := syncDir(p.dir); err != nil {
		return err
	}
	return p.idx.LogData(nil, pebble.Sync)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (p *packStore) Batch(ctx context.Context) (datastore.Batch, error) {
	return &packBatch{p: p}, nil
}

// DiskUsage is the size of the pack files, dead space included: what the
// blocks take on disk, which the quota limits.
func (p *packStore) DiskUsage(ctx context.Context) (uint64, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return uint64(p.total), nil
}

// recordSize is what storing a block of blockLen bytes under key adds to
// DiskUsage: the record's header and key come with the block.
func (p *packStore) recordSize(key datastore.Key, blockLen int) int64 {
	return int64(packHeaderLen + len(key.String()) + blockLen)
}

// Compact moves the live blocks out of packs that are less than half
// live into a lane's pack and removes those packs. It fsyncs the new
// copies before any old pack is removed. GC calls it.
func (p *packStore) Compact(ctx context.Context) (reclaimed int64, err error) {
	release, err := p.open()
	if err != nil {
		return 0, err
	}
	defer release()
	for _, l := range p.lanes {
		l.mu.Lock()
		defer l.mu.Unlock()
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	for _, l := range p.lanes {
		p.mu.RLock()
		mostlyDead := l.cur != nil && p.live[l.id]*2 < p.size[l.id]
		p.mu.RUnlock()
		if mostlyDead {
			// An import refused by the quota leaves its dead blocks in a
			// lane's pack: start a new one so that this one can go.
			if err := p.rotateLocked(l); err != nil {
				return 0, err
			}
		}
	}
	p.mu.RLock()
	var victims []uint32
	for id, sz := range p.size {
		if !p.current[id] && p.pending[id] == 0 && p.live[id]*2 < sz {
			victims = append(victims, id)
		}
	}
	p.mu.RUnlock()
	if len(victims) == 0 {
		return 0, nil
	}
	slices.Sort(victims)
	it, err := p.idx.NewIter(blockKeys)
	if err != nil {
		return 0, err
	}
	var puts []packPut
	var dels []datastore.Key
	for it.First(); it.Valid(); it.Next() {
		e, err := decodePackEntry(it.Value())
		if err != nil {
			it.Close()
			return 0, err
		}
		if !slices.Contains(victims, e.pack) {
			continue
		}
		key := datastore.RawKey(string(it.Key()))
		v, err := p.read(key)
		if errors.Is(err, errPackCRC) {
			p.log.Warn("block in pack fails its checksum, dropping it", "key", key.String())
			dels = append(dels, key)
			continue
		}
		if err != nil {
			it.Close()
			return 0, err
		}
		puts = append(puts, newPackPut(key, v))
		if len(puts) >= 64 {
			if err := p.moveLocked(puts, nil); err != nil {
				it.Close()
				return 0, err
			}
			puts = puts[:0]
		}
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	if err := p.moveLocked(puts, dels); err != nil {
		return 0, err
	}
	// The copies must be on disk before the originals go.
	if err := p.syncLocked(); err != nil {
		return 0, err
	}
	for _, id := range victims {
		p.mu.RLock()
		sz, still := p.size[id]
		p.mu.RUnlock()
		if still {
			reclaimed += sz
			p.removePackLocked(id)
		}
	}
	p.log.Info("compacted block packs", "packs", len(victims), "reclaimed_bytes", reclaimed)
	return reclaimed, nil
}

// moveLocked is commit for Compact, which holds every lane and wmu: the
// copies go to the first lane's pack.
func (p *packStore) moveLocked(puts []packPut, dels []datastore.Key) error {
	entries, touched, err := p.appendBatch(p.lanes[0], puts, false)
	if err != nil {
		p.unpend(touched)
		return err
	}
	return p.indexLocked(puts, entries, touched, dels)
}

func (p *packStore) Close() error {
	p.life.Lock()
	defer p.life.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.itersMu.Lock()
	stillOpen := slices.Collect(maps.Keys(p.iters))
	p.itersMu.Unlock()
	for _, it := range stillOpen {
		it.close()
	}
	err := p.idx.Close()
	for _, l := range p.lanes {
		l.mu.Lock()
		if l.direct != nil {
			l.direct.close()
			l.direct = nil
		}
		l.mu.Unlock()
	}
	p.closeFiles()
	return err
}

func (p *packStore) closeFiles() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.packs {
		f.Close()
	}
	clear(p.packs)
}

// packBatch collects writes and commits them under one lock with one
// index batch.
type packBatch struct {
	p    *packStore
	puts []packPut
	dels []datastore.Key
}

func (b *packBatch) Put(ctx context.Context, key datastore.Key, value []byte) error {
	b.puts = append(b.puts, newPackPut(key, value))
	return nil
}

func (b *packBatch) Delete(ctx context.Context, key datastore.Key) error {
	b.dels = append(b.dels, key)
	return nil
}

func (b *packBatch) Commit(ctx context.Context) error {
	release, err := b.p.open()
	if err != nil {
		return err
	}
	defer release()
	err = b.p.commit(b.puts, b.dels, wantsDirect(ctx))
	b.puts, b.dels = nil, nil
	return err
}

// pebbleLogger sends pebble's messages to the node's log.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "pack-index")
}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "pack-index")
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(strings.TrimSpace(msg), "component", "pack-index")
	panic(msg)
}

var _ datastore.Batching = (*packStore)(nil)
