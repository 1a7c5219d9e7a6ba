package storage

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Pin fetches whatever of c is missing and pins it recursively.
func (s *Store) Pin(ctx context.Context, c cid.Cid) error {
	_, err := s.Fetch(ctx, c, FetchOptions{Pin: true})
	return err
}

// Unpin removes the recursive pin on c; its blocks go at the next GC
// unless another pin reaches them.
func (s *Store) Unpin(ctx context.Context, c cid.Cid) error {
	if err := s.live(); err != nil {
		return err
	}
	if err := s.pinner.Unpin(ctx, c, true); err != nil {
		return fmt.Errorf("unpin %s: %w", c, err)
	}
	return s.pinner.Flush(ctx)
}

// Pins lists the recursively pinned roots.
func (s *Store) Pins(ctx context.Context) ([]cid.Cid, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	var out []cid.Cid
	for p := range s.pinner.RecursiveKeys(ctx, false) {
		if p.Err != nil {
			return nil, fmt.Errorf("list pins: %w", p.Err)
		}
		out = append(out, p.Pin.Key)
	}
	return out, nil
}

// GCResult says what a garbage collection removed.
type GCResult struct {
	Blocks int
	Bytes  int64
}

// GC deletes every block not reachable from a pin. Imports and fetches
// in progress hold it off until they have pinned (or failed), so it never
// removes a DAG that is being written. If a pinned DAG is missing a block,
// GC deletes nothing and says which.
func (s *Store) GC(ctx context.Context) (GCResult, error) {
	if err := s.live(); err != nil {
		return GCResult{}, err
	}
	unlock := s.gcl.GCLock(ctx)
	defer unlock.Unlock(ctx)

	keep, err := s.reachable(ctx)
	if err != nil {
		return GCResult{}, fmt.Errorf("gc: %w", err)
	}
	keys, err := s.guard.Blockstore.AllKeysChan(ctx)
	if err != nil {
		return GCResult{}, fmt.Errorf("gc: %w", err)
	}
	var res GCResult
	for k := range keys {
		if _, ok := keep[string(k.Hash())]; ok {
			continue
		}
		size, err := s.guard.Blockstore.GetSize(ctx, k)
		if err != nil {
			continue // gone already
		}
		if err := s.guard.Blockstore.DeleteBlock(ctx, k); err != nil {
			return res, fmt.Errorf("gc: delete %s: %w", k, err)
		}
		res.Blocks++
		res.Bytes += int64(size)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	if ps, ok := s.blocks.(*packStore); ok {
		// Deleting only drops index entries; give the space back.
		if _, err := ps.Compact(ctx); err != nil {
			return res, fmt.Errorf("gc: compact block packs: %w", err)
		}
	}
	s.log.Info("garbage collected", "blocks", res.Blocks, "bytes", res.Bytes)
	return res, nil
}

// reachable returns the multihashes of every block reachable from a pin
// (keyed by multihash: the flatfs keys carry no codec).
func (s *Store) reachable(ctx context.Context) (map[string]struct{}, error) {
	keep := make(map[string]struct{})
	add := func(c cid.Cid) { keep[string(c.Hash())] = struct{}{} }
	for p := range s.pinner.RecursiveKeys(ctx, false) {
		if p.Err != nil {
			return nil, p.Err
		}
		root := p.Pin.Key
		if _, err := s.fetchDAG(ctx, s.offline, root, nil, add); err != nil {
			return nil, fmt.Errorf("pinned %s is incomplete, nothing was deleted (fetch it again with `vft pin add %s`): %w", root, root, err)
		}
	}
	for p := range s.pinner.DirectKeys(ctx, false) {
		if p.Err != nil {
			return nil, p.Err
		}
		keep[string(p.Pin.Key.Hash())] = struct{}{}
	}
	for p := range s.pinner.InternalPins(ctx, false) {
		if p.Err != nil {
			return nil, p.Err
		}
		keep[string(p.Pin.Key.Hash())] = struct{}{}
	}
	return keep, nil
}

// RepoStat describes the local store.
type RepoStat struct {
	Blocks   int64 // blocks on disk
	Bytes    int64 // disk usage of the blocks (pack files, or flatfs files)
	Pins     int   // recursive pins
	MaxBytes int64 // storage.max_bytes, 0 when there is no quota
	// CorruptBlocks counts blocks found corrupt (and deleted) since start.
	CorruptBlocks int64
}

// Stat counts blocks and pins; it reads every key, so it takes time on
// a large repo.
func (s *Store) Stat(ctx context.Context) (RepoStat, error) {
	if err := s.live(); err != nil {
		return RepoStat{}, err
	}
	st := RepoStat{MaxBytes: s.cfg.MaxBytes, CorruptBlocks: s.guard.nCorrupt.Load()}
	used, err := s.blocks.DiskUsage(ctx)
	if err != nil {
		return st, fmt.Errorf("stat: %w", err)
	}
	st.Bytes = int64(used)
	keys, err := s.guard.Blockstore.AllKeysChan(ctx)
	if err != nil {
		return st, fmt.Errorf("stat: %w", err)
	}
	for range keys {
		st.Blocks++
	}
	pins, err := s.Pins(ctx)
	if err != nil {
		return st, err
	}
	st.Pins = len(pins)
	return st, ctx.Err()
}
