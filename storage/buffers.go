package storage

import (
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	pool "github.com/libp2p/go-buffer-pool"
)

// Block buffers are reused once their blocks are on disk. A new megabyte
// per block cost an import or a transfer more than the copy itself: the
// runtime clears it, the collector runs every few dozen megabytes, and on
// a VM each page touched for the first time faults to the host. Imports
// of 512 MiB took a quarter less time, a CAR stream's client about a
// twentieth less CPU (docs/BENCHMARKS.md).
//
// An import's raw leaves come from a leafPool, mapped outside the heap
// (leafpool.go): a leaf given back is the buffer the import's next chunk
// is read into. Other blocks' buffers, a fetch's, go back to
// go-buffer-pool's, as do the chunks of other chunkers. A buffer goes
// back only when nothing else holds its block: once a batch's write has
// returned without error, the pack store (and flatfs, whose Commit waits
// for its writers) holds none of its bytes, and the callers say when they
// have dropped the blocks. A batch whose write failed keeps its buffers
// where flatfs may still be writing them (Store.syncWrites).

// minPooledBlock is the smallest buffer worth pooling: a leaf's (256 KiB
// or 1 MiB chunks, usually), not a directory node's.
const minPooledBlock = 64 << 10

// blockBuf returns a buffer of n bytes, from the pool when n is a leaf's
// size.
func blockBuf(n int) []byte {
	if n >= minPooledBlock {
		return pool.Get(n)
	}
	return make([]byte, n)
}

// recycleBlocks gives the bytes of blocks a carReader read back to the
// pool, once their batch is written and dropped.
func recycleBlocks(batch []blocks.Block) {
	for _, blk := range batch {
		recycle(blk.RawData())
	}
}

// recycleLeaves gives the bytes of an import's raw leaves back to the
// pool, once their batch is written and the DAG builder is done with
// them.
func recycleLeaves(nodes []ipld.Node) {
	for _, nd := range nodes {
		if nd.Cid().Type() == cid.Raw {
			recycle(nd.RawData())
		}
	}
}

// recycle gives b back to the pool it came from: its leafPool, else
// go-buffer-pool's.
func recycle(b []byte) {
	if cap(b) >= minPooledBlock && !putLeaf(b) {
		pool.Put(b)
	}
}
