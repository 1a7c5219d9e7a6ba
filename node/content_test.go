package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"

	"github.com/vft-network/vft/storage"
)

// Issue #13 item 1: a job whose module is a UnixFS symlink to /dev/zero
// made the worker write the link, and the WASM loader then read
// /dev/zero forever. The worker's content adapter refuses any symlink;
// the verifier's keeps the confinement `vft get` has.
func TestJobContentRefusesSymlinkModule(t *testing.T) {
	ctx := context.Background()
	st, err := storage.New(storage.DefaultConfig(), t.TempDir(), nil, nil, nil, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	data, err := ft.SymlinkData("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	link := merkledag.NodeWithData(data)
	link.SetCidBuilder(merkledag.V1CidPrefix())
	if err := st.DAG().Add(ctx, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []jobContent{{s: st, noSymlinks: true}, {s: st}} {
		dir := t.TempDir()
		err := c.Get(ctx, link.Cid().String(), filepath.Join(dir, "module.wasm"), 64<<20)
		if !errors.Is(err, storage.ErrSymlink) {
			t.Fatalf("jobContent%+v.Get of a symlink to /dev/zero = %v, want storage.ErrSymlink", c, err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("left %v behind", left)
		}
	}
}
