package node

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/storage"
)

// content adapts the store to what the API serves.
type content struct{ s *storage.Store }

func parseCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%q is not a CID (%v): it looks like bafy... or Qm...", s, err)
	}
	return c, nil
}

func (c content) Add(ctx context.Context, req api.AddRequest, progress func(done, total int64)) (api.AddResult, error) {
	opts := storage.AddOptions{NoPin: req.NoPin, Progress: progress, IncludeHidden: req.Hidden}
	id, err := c.s.Add(ctx, req.Path, opts)
	if err != nil {
		return api.AddResult{}, err
	}
	if req.Image {
		if err := c.recordImage(ctx, id); err != nil {
			return api.AddResult{}, err
		}
	}
	res := api.AddResult{CID: id.String()}
	if !c.s.IncludesHidden(opts) {
		// Said to the user, who otherwise never learns that .env or
		// .config were left out of what they shared.
		res.HiddenSkipped, err = storage.CountHidden(req.Path)
		if err != nil {
			return api.AddResult{}, err
		}
	}
	return res, nil
}

func (c content) Get(ctx context.Context, req api.GetRequest, progress func(done, total int64)) (api.GetResult, error) {
	id, err := parseCID(req.CID)
	if err != nil {
		return api.GetResult{}, err
	}
	res, err := c.s.Get(ctx, id, req.Output, storage.FetchOptions{Progress: progress,
		Limits: storage.ExportLimits{MaxBytes: req.MaxBytes, MaxEntries: req.MaxEntries}})
	if err != nil {
		return api.GetResult{}, err
	}
	return api.GetResult{CID: res.Root.String(), Output: req.Output, Blocks: res.Blocks, Bytes: res.Bytes, Fetched: res.Fetched}, nil
}

func (c content) Pin(ctx context.Context, s string, progress func(done, total int64)) error {
	id, err := parseCID(s)
	if err != nil {
		return err
	}
	_, err = c.s.Fetch(ctx, id, storage.FetchOptions{Pin: true, Progress: progress})
	return err
}

func (c content) Unpin(ctx context.Context, s string) error {
	id, err := parseCID(s)
	if err != nil {
		return err
	}
	return c.s.Unpin(ctx, id)
}

func (c content) Pins(ctx context.Context) ([]string, error) {
	pins, err := c.s.Pins(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(pins))
	for i, p := range pins {
		out[i] = p.String()
	}
	return out, nil
}

func (c content) GC(ctx context.Context) (api.GCResult, error) {
	r, err := c.s.GC(ctx)
	return api.GCResult{Blocks: r.Blocks, Bytes: r.Bytes}, err
}

func (c content) Stat(ctx context.Context) (api.RepoStat, error) {
	st, err := c.s.Stat(ctx)
	return api.RepoStat{Blocks: st.Blocks, Bytes: st.Bytes, Pins: st.Pins, MaxBytes: st.MaxBytes, CorruptBlocks: st.CorruptBlocks}, err
}

// jobContent adapts the store to what a worker and a verifier need.
type jobContent struct {
	s *storage.Store
	// noSymlinks refuses any symlink: a job's module and inputs must be
	// regular files and directories (a module linking /dev/zero crashed
	// WASM miners). Results compared by a verifier keep links that stay
	// inside them, as `vft get` does.
	noSymlinks bool
}

// Get writes id to path, refusing content that declares or holds more
// than maxBytes of files (0: the free space there, less a reserve).
func (c jobContent) Get(ctx context.Context, id, path string, maxBytes int64) error {
	return c.get(ctx, nil, id, path, maxBytes)
}

// GetFrom is Get asking holder first (a job's submitter, for its inputs).
func (c jobContent) GetFrom(ctx context.Context, holder peer.ID, id, path string, maxBytes int64) error {
	return c.get(ctx, []peer.ID{holder}, id, path, maxBytes)
}

func (c jobContent) get(ctx context.Context, holders []peer.ID, id, path string, maxBytes int64) error {
	parsed, err := parseCID(id)
	if err != nil {
		return err
	}
	if maxBytes < 0 { // a job cap past MaxInt64, converted from uint64
		maxBytes = 0
	}
	_, err = c.s.Get(ctx, parsed, path, storage.FetchOptions{From: holders,
		Limits: storage.ExportLimits{MaxBytes: maxBytes, NoSymlinks: c.noSymlinks}})
	return err
}

func (c jobContent) AddDir(ctx context.Context, path string) (string, error) {
	id, err := c.s.Add(ctx, path, storage.AddOptions{})
	if err != nil {
		return "", err
	}
	return id.String(), nil
}
