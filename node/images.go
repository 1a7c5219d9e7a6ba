package node

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	ufs "github.com/ipfs/boxo/ipld/unixfs"
	ufsio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/executor/oci"
)

// imagePrefix keys the import time of each image `vft image import` added.
var imagePrefix = datastore.NewKey("/vft/images/imported")

// recordImage notes that id was imported as an image now.
func (c content) recordImage(ctx context.Context, id cid.Cid) error {
	at, err := time.Now().UTC().MarshalText()
	if err != nil {
		return err
	}
	if err := c.s.Datastore().Put(ctx, imagePrefix.ChildString(id.String()), at); err != nil {
		return fmt.Errorf("record image %s: %w", id, err)
	}
	return nil
}

// Images lists the pinned roots that are OCI image layouts: a UnixFS
// directory with both an oci-layout and an index.json file. It reads only
// local blocks (a pin's blocks are all here) and, of an image, only its
// small JSON blobs, so listing costs a few block reads per pin.
func (c content) Images(ctx context.Context) ([]api.Image, error) {
	pins, err := c.s.Pins(ctx)
	if err != nil {
		return nil, err
	}
	dag := merkledag.NewDAGService(blockservice.New(c.s.Blockstore(), nil))
	var out []api.Image
	for _, p := range pins {
		dir, ok := layoutDir(ctx, dag, p)
		if !ok {
			continue
		}
		img := api.Image{CID: p.String(), Manifests: []api.ImageManifest{}}
		sum, err := oci.Describe(ctx, unixfsReader(dag, dir))
		if err != nil {
			img.Error = err.Error()
		}
		img.Size = sum.Size
		for _, m := range sum.Manifests {
			img.Manifests = append(img.Manifests, api.ImageManifest{Digest: m.Digest, Platform: m.Platform, Size: m.Size})
		}
		if raw, err := c.s.Datastore().Get(ctx, imagePrefix.ChildString(p.String())); err == nil {
			var at time.Time
			if at.UnmarshalText(raw) == nil {
				img.ImportedAt = &at
			}
		}
		out = append(out, img)
	}
	return out, nil
}

// layoutDir opens root as a UnixFS directory holding oci-layout and
// index.json; anything else (a file, a plain directory) is not an image.
func layoutDir(ctx context.Context, dag ipld.DAGService, root cid.Cid) (ufsio.Directory, bool) {
	nd, err := dag.Get(ctx, root)
	if err != nil {
		return nil, false
	}
	pn, ok := nd.(*merkledag.ProtoNode)
	if !ok {
		return nil, false
	}
	if fsn, err := ufs.FSNodeFromBytes(pn.Data()); err != nil || (fsn.Type() != ufs.TDirectory && fsn.Type() != ufs.THAMTShard) {
		return nil, false
	}
	dir, err := ufsio.NewDirectoryFromNode(dag, nd)
	if err != nil {
		return nil, false
	}
	for _, name := range []string{"oci-layout", "index.json"} {
		if _, err := dir.Find(ctx, name); err != nil {
			return nil, false
		}
	}
	return dir, true
}

// unixfsReader reads files of a layout stored as UnixFS, from local
// blocks only.
func unixfsReader(dag ipld.DAGService, root ufsio.Directory) oci.ReadFunc {
	return func(ctx context.Context, p string, max int64) ([]byte, error) {
		dir := root
		parts := strings.Split(path.Clean(p), "/")
		var nd ipld.Node
		for i, name := range parts {
			var err error
			nd, err = dir.Find(ctx, name)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if i < len(parts)-1 {
				if dir, err = ufsio.NewDirectoryFromNode(dag, nd); err != nil {
					return nil, fmt.Errorf("%s: %s is not a directory", p, path.Join(parts[:i+1]...))
				}
			}
		}
		r, err := ufsio.NewDagReader(ctx, nd, dag)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if r.Size() > uint64(max) {
			return nil, fmt.Errorf("%s is %d bytes, more than the %d expected", p, r.Size(), max)
		}
		data, err := io.ReadAll(io.LimitReader(r, max))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return data, nil
	}
}
