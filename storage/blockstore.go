package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	ipld "github.com/ipfs/go-ipld-format"
)

// diskUsager reports the bytes the block files take (flatfs tracks this).
type diskUsager interface {
	DiskUsage(ctx context.Context) (uint64, error)
}

// recordSizer is a block store whose DiskUsage grows by more than a
// block's bytes when it stores one: the pack store also writes a header
// and the key. The quota must count that too, or the last batch it admits
// takes the usage past storage.max_bytes.
type recordSizer interface {
	recordSize(key datastore.Key, blockLen int) int64
}

// guardedBlockstore adds to boxo's blockstore what the node needs on every
// path, bitswap included: the quota, hash checks on read with repair, and
// counters that tell a fetch how many blocks it really had to write.
type guardedBlockstore struct {
	blockstore.Blockstore
	usage    diskUsager
	maxBytes int64
	// free reports the free and total bytes of the blocks' file system;
	// without a quota, writes stop short of a reserve there instead.
	free       func() (free, total int64, err error)
	hashOnRead bool
	log        *slog.Logger

	putMu   sync.Mutex // makes quota check + write atomic when there is a quota
	written atomic.Int64

	corruptMu sync.Mutex
	corrupt   map[string]cid.Cid // by multihash: deleted for corruption, until rewritten
	nCorrupt  atomic.Int64

	// hashedRecently are blocks this process hashed as they arrived and
	// then wrote (nil where the store keeps no checksum of its own:
	// flatfs).
	hashedRecently *recentSet
}

// recentlyHashedBlocks is how many of the last blocks a fetch hashed and
// wrote are read back without hash_on_read's second SHA-256: 32,768
// blocks (32 GiB of 1 MiB leaves) in about 3 MiB of memory.
const recentlyHashedBlocks = 32 << 10

type hashedOnArrivalKey struct{}

// withHashedOnArrival marks a context whose PutMany carries blocks already
// hashed against their CIDs as they arrived (carReader.next): the blocks
// it writes are read back without hashing them again (Get).
func withHashedOnArrival(ctx context.Context) context.Context {
	return context.WithValue(ctx, hashedOnArrivalKey{}, true)
}

func newGuardedBlockstore(bs blockstore.Blockstore, usage diskUsager, maxBytes int64, free func() (int64, int64, error), hashOnRead bool, log *slog.Logger) *guardedBlockstore {
	return &guardedBlockstore{
		Blockstore: bs,
		usage:      usage,
		maxBytes:   maxBytes,
		free:       free,
		hashOnRead: hashOnRead,
		log:        log,
		corrupt:    make(map[string]cid.Cid),
	}
}

// diskCost is what storing blk adds to the store's DiskUsage.
func (b *guardedBlockstore) diskCost(blk blocks.Block) int64 {
	rs, ok := b.usage.(recordSizer)
	if !ok {
		return int64(len(blk.RawData()))
	}
	// The key boxo's blockstore (NoPrefix) stores the block under.
	return rs.recordSize(dshelp.MultihashToDsKey(blk.Cid().Hash()), len(blk.RawData()))
}

// Get verifies the block when hash_on_read is set. A corrupt block is
// deleted and reported as not found, so the blockservice asks bitswap for
// a good copy; wasCorrupt lets callers explain a later failure.
//
// A block a fetch hashed on arrival and wrote moments ago
// (withHashedOnArrival) is not hashed again: what is read back at once (vft get, a job's inputs)
// would otherwise cost a second SHA-256 of every byte, a quarter of a
// loopback transfer's CPU. The pack record's CRC-32C, checked on every
// read, covers the disk between that write and this read.
func (b *guardedBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	blk, err := b.Blockstore.Get(ctx, c)
	if errors.Is(err, ErrCorruptBlock) {
		// The pack store's checksum caught it, hash_on_read or not.
		return nil, b.dropCorrupt(ctx, c)
	}
	if err != nil || !b.hashOnRead || b.hashedRecently.has(c) {
		return blk, err
	}
	sum, err := c.Prefix().Sum(blk.RawData())
	if err != nil {
		return nil, fmt.Errorf("verify block %s: %w", c, err)
	}
	if sum.Equals(c) {
		return blk, nil
	}
	return nil, b.dropCorrupt(ctx, c)
}

// dropCorrupt deletes a block found corrupt and remembers it, so the
// blockservice fetches a good copy and a later failure can say why.
func (b *guardedBlockstore) dropCorrupt(ctx context.Context, c cid.Cid) error {
	b.log.Warn("corrupt block on disk, deleting it so it can be fetched again", "cid", c)
	b.nCorrupt.Add(1)
	b.corruptMu.Lock()
	b.corrupt[string(c.Hash())] = c
	b.corruptMu.Unlock()
	if err := b.DeleteBlock(ctx, c); err != nil { // forgets it was hashed recently
		return fmt.Errorf("block %s: %w, and deleting it failed: %v", c, ErrCorruptBlock, err)
	}
	return ipld.ErrNotFound{Cid: c}
}

func (b *guardedBlockstore) wasCorrupt(c cid.Cid) bool {
	b.corruptMu.Lock()
	defer b.corruptMu.Unlock()
	_, ok := b.corrupt[string(c.Hash())]
	return ok
}

// corruptCIDs lists the blocks deleted as corrupt and not yet replaced.
func (b *guardedBlockstore) corruptCIDs() []cid.Cid {
	b.corruptMu.Lock()
	defer b.corruptMu.Unlock()
	out := make([]cid.Cid, 0, len(b.corrupt))
	for _, c := range b.corrupt {
		out = append(out, c)
	}
	return out
}

// recentSet holds the last size CIDs added, by multihash; a nil set holds
// none. It grows as CIDs are added: a node that fetches little never
// holds the full set's 2 MiB, which 50 nodes in one test process did
// (a third of their live heap, marked in every collection).
type recentSet struct {
	mu   sync.Mutex
	size int
	set  map[string]struct{}
	ring []string // in the order added; reused from next once size long
	next int
}

func newRecentSet(size int) *recentSet {
	return &recentSet{size: size, set: map[string]struct{}{}}
}

func (r *recentSet) add(c cid.Cid) {
	if r == nil {
		return
	}
	k := string(c.Hash())
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[k]; ok {
		return
	}
	r.set[k] = struct{}{}
	if len(r.ring) < r.size {
		r.ring = append(r.ring, k)
		return
	}
	delete(r.set, r.ring[r.next])
	r.ring[r.next] = k
	r.next = (r.next + 1) % len(r.ring)
}

func (r *recentSet) has(c cid.Cid) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[string(c.Hash())]
	return ok
}

// forget drops c: a block deleted (as corrupt, or by GC) and written again
// must be hashed again on its next read.
func (r *recentSet) forget(c cid.Cid) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, string(c.Hash())) // its ring slot is reused in turn
}

// DeleteBlock also forgets that the block was hashed recently.
func (b *guardedBlockstore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	b.hashedRecently.forget(c)
	return b.Blockstore.DeleteBlock(ctx, c)
}

func (b *guardedBlockstore) Put(ctx context.Context, blk blocks.Block) error {
	return b.PutMany(ctx, []blocks.Block{blk})
}

// PutMany writes only blocks not yet present, after checking the quota for
// all of them, so a refused batch leaves nothing half-written.
func (b *guardedBlockstore) PutMany(ctx context.Context, blks []blocks.Block) error {
	if b.maxBytes > 0 {
		// Only a quota needs check-and-write to be atomic.
		b.putMu.Lock()
		defer b.putMu.Unlock()
	}
	var fresh []blocks.Block
	var need int64
	for _, blk := range blks {
		has, err := b.Blockstore.Has(ctx, blk.Cid())
		if err != nil {
			return err
		}
		if !has {
			fresh = append(fresh, blk)
			need += b.diskCost(blk)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if b.maxBytes > 0 {
		used, err := b.usage.DiskUsage(ctx)
		if err != nil {
			return fmt.Errorf("read disk usage: %w", err)
		}
		if int64(used)+need > b.maxBytes {
			return fmt.Errorf("%w: writing %d more bytes would take the blocks to %d bytes, over storage.max_bytes = %d; raise the quota or free space with `vft repo gc`",
				ErrQuotaExceeded, need, int64(used)+need, b.maxBytes)
		}
	} else if b.free != nil {
		// No quota (storage.max_bytes = 0) still must not fill the disk:
		// the node, its datastore and running jobs share it.
		free, total, err := b.free()
		if err != nil {
			return fmt.Errorf("read free disk space: %w", err)
		}
		if reserve := diskReserve(total); free-need < reserve {
			return fmt.Errorf("%w: writing %d more bytes would leave %d bytes free on the disk holding the blocks, under the %d kept free when storage.max_bytes = 0; free space with `vft repo gc` or set a quota",
				ErrQuotaExceeded, need, free-need, reserve)
		}
	}
	// Not cancellable: boxo's PutMany abandons a flatfs batch whose Put
	// sees a cancelled context without Commit or Discard, leaving its
	// writers running into a temp dir. A batch is at most a few MiB.
	if err := b.Blockstore.PutMany(context.WithoutCancel(ctx), fresh); err != nil {
		return err
	}
	b.written.Add(int64(len(fresh)))
	b.corruptMu.Lock()
	for _, blk := range fresh {
		delete(b.corrupt, string(blk.Cid().Hash()))
	}
	b.corruptMu.Unlock()
	if ctx.Value(hashedOnArrivalKey{}) != nil {
		for _, blk := range fresh { // only those written now
			b.hashedRecently.add(blk.Cid())
		}
	}
	return nil
}
