package storage

import (
	"bytes"
	"fmt"
	"time"

	chunker "github.com/ipfs/boxo/chunker"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Config is the [storage] section of the node configuration.
//
// The import defaults are kubo's `unixfs-v1-2025` profile (IPIP-499), so
// `vft add` and `ipfs add --profile unixfs-v1-2025` give the same CID for
// the same input. LegacyConfig gives kubo's historic CIDv0 defaults.
type Config struct {
	// Chunker splits files into leaves: "size-N", "rabin", "rabin-MIN-AVG-MAX"
	// or "buzhash", exactly as `ipfs add --chunker`.
	Chunker string `toml:"chunker"`
	// CIDVersion is 0 (Qm..., dag-pb only) or 1 (bafy...).
	CIDVersion int `toml:"cid_version"`
	// RawLeaves stores file leaves as raw blocks instead of UnixFS dag-pb nodes.
	RawLeaves bool `toml:"raw_leaves"`
	// MaxLinks is the widest a file DAG node may be (kubo: UnixFSFileMaxLinks).
	MaxLinks int `toml:"max_links"`
	// HAMTThreshold is the estimated directory block size in bytes above
	// which a directory becomes a HAMT shard (kubo: UnixFSHAMTDirectorySizeThreshold).
	HAMTThreshold int `toml:"hamt_threshold"`
	// HAMTEstimation is how that size is estimated: "block" (unixfs-v1-2025),
	// "links" (kubo's legacy default) or "disabled" (never shard).
	HAMTEstimation string `toml:"hamt_estimation"`
	// HAMTFanout is the width of HAMT shard nodes (power of 2, multiple of 8).
	HAMTFanout int `toml:"hamt_fanout"`
	// IncludeHidden imports dot files when adding a directory (`ipfs add --hidden`).
	IncludeHidden bool `toml:"include_hidden"`

	// MaxBytes is the storage quota for blocks in bytes. 0 means no fixed
	// quota, but a write that would leave less than 1 GiB (or 5% of a disk
	// under 20 GiB) free on the blocks' file system is refused.
	MaxBytes int64 `toml:"max_bytes"`
	// HashOnRead re-hashes every block read from disk and treats a
	// mismatch as a missing (and deleted) block; in a pack store, not the
	// last blocks this process hashed as they arrived and wrote, whose
	// record's CRC-32C is still checked (guardedBlockstore.Get).
	HashOnRead bool `toml:"hash_on_read"`
	// FetchTimeout fails a fetch when no block has arrived for that long.
	FetchTimeout time.Duration `toml:"fetch_timeout"`
	// FetchConcurrency is how many blocks one fetch requests at a time.
	FetchConcurrency int `toml:"fetch_concurrency"`
	// Provide announces imported and pinned root CIDs on the DHT.
	Provide bool `toml:"provide"`
	// ReprovideInterval is how often pinned roots are announced again,
	// since DHT provider records expire; 0 turns it off.
	ReprovideInterval time.Duration `toml:"reprovide_interval"`
}

// DefaultConfig returns kubo's unixfs-v1-2025 import profile and the
// storage defaults of a node.
func DefaultConfig() Config {
	return Config{
		Chunker:          "size-1048576",
		CIDVersion:       1,
		RawLeaves:        true,
		MaxLinks:         1024,
		HAMTThreshold:    256 << 10,
		HAMTEstimation:   "block",
		HAMTFanout:       256,
		MaxBytes:         0,
		HashOnRead:       true,
		FetchTimeout:     2 * time.Minute,
		FetchConcurrency: 32,
		Provide:          true,
		// kubo's Provide.DHT.Interval; records live 48h on the DHT.
		ReprovideInterval: 22 * time.Hour,
	}
}

// LegacyConfig returns DefaultConfig with kubo's unixfs-v0-2015 import
// settings (what `ipfs add` did with no profile): CIDv0, 256 KiB chunks,
// dag-pb leaves, 174 links, link-based HAMT size estimation.
func LegacyConfig() Config {
	c := DefaultConfig()
	c.Chunker = "size-262144"
	c.CIDVersion = 0
	c.RawLeaves = false
	c.MaxLinks = 174
	c.HAMTEstimation = "links"
	return c
}

// Validate reports the first invalid value, naming its key.
func (c Config) Validate() error {
	if _, err := chunker.FromString(bytes.NewReader(nil), c.Chunker); err != nil {
		return fmt.Errorf("storage.chunker = %q is invalid (want size-N, rabin, rabin-MIN-AVG-MAX or buzhash): %w", c.Chunker, err)
	}
	if c.CIDVersion != 0 && c.CIDVersion != 1 {
		return fmt.Errorf("storage.cid_version = %d is invalid: want 0 or 1", c.CIDVersion)
	}
	if c.MaxLinks < 2 {
		return fmt.Errorf("storage.max_links = %d is invalid: want at least 2", c.MaxLinks)
	}
	if c.HAMTThreshold <= 0 {
		return fmt.Errorf("storage.hamt_threshold = %d is invalid: want a positive number of bytes", c.HAMTThreshold)
	}
	if _, err := c.sizeEstimation(); err != nil {
		return err
	}
	if f := c.HAMTFanout; f <= 0 || f%8 != 0 || f&(f-1) != 0 {
		return fmt.Errorf("storage.hamt_fanout = %d is invalid: want a power of 2 that is a multiple of 8", f)
	}
	if c.MaxBytes < 0 {
		return fmt.Errorf("storage.max_bytes = %d is invalid: want 0 (no quota) or a positive number of bytes", c.MaxBytes)
	}
	if c.FetchTimeout <= 0 {
		return fmt.Errorf("storage.fetch_timeout = %s is invalid: want a positive duration such as \"2m\"", c.FetchTimeout)
	}
	if c.ReprovideInterval < 0 {
		return fmt.Errorf("storage.reprovide_interval = %s is invalid: want \"0s\" (off) or a positive duration such as \"22h\"", c.ReprovideInterval)
	}
	if c.FetchConcurrency < 1 {
		return fmt.Errorf("storage.fetch_concurrency = %d is invalid: want at least 1", c.FetchConcurrency)
	}
	return nil
}

func (c Config) sizeEstimation() (uio.SizeEstimationMode, error) {
	switch c.HAMTEstimation {
	case "block":
		return uio.SizeEstimationBlock, nil
	case "links":
		return uio.SizeEstimationLinks, nil
	case "disabled":
		return uio.SizeEstimationDisabled, nil
	}
	return 0, fmt.Errorf("storage.hamt_estimation = %q is invalid: want \"block\", \"links\" or \"disabled\"", c.HAMTEstimation)
}

// cidBuilder mirrors kubo's Import.UnixFSCidBuilder for sha2-256.
func (c Config) cidBuilder() cid.Builder {
	codec := uint64(cid.DagProtobuf)
	return cid.Prefix{Version: uint64(c.CIDVersion), Codec: codec, MhType: mh.SHA2_256, MhLength: -1}
}
