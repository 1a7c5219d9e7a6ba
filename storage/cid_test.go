package storage

import (
	"context"
	"crypto/sha256"
	"fmt"
	gopath "path"
	"testing"

	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/mfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

// kuboCIDs are what `ipfs add` (kubo) prints for small fixed inputs.
// The interop module cross-checks these against a running kubo.
func TestKnownKuboCIDs(t *testing.T) {
	hello := []byte("hello world\n")
	tests := []struct {
		name string
		cfg  Config
		node func() files.Node
		want string
	}{
		{"legacy hello", LegacyConfig(), func() files.Node { return files.NewBytesFile(hello) }, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"},
		{"legacy empty file", LegacyConfig(), func() files.Node { return files.NewBytesFile(nil) }, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"},
		{"legacy empty dir", LegacyConfig(), func() files.Node { return files.NewMapDirectory(nil) }, "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"},
		{"v1 empty dir", DefaultConfig(), func() files.Node { return files.NewMapDirectory(nil) }, "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"},
		{"v1 empty file", DefaultConfig(), func() files.Node { return files.NewBytesFile(nil) }, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		// One chunk with raw leaves is a raw block: its CID is sha2-256 of the bytes.
		{"v1 hello", DefaultConfig(), func() files.Node { return files.NewBytesFile(hello) }, rawCID(hello)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, tt.cfg, nil, nil)
			c, err := s.AddNode(context.Background(), tt.node(), AddOptions{}, -1)
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != tt.want {
				t.Fatalf("CID = %s, want %s", c, tt.want)
			}
		})
	}
}

// rawCID computes a CIDv1 raw sha2-256 by hand, independently of boxo.
func rawCID(b []byte) string {
	sum := sha256.Sum256(b)
	h, _ := mh.Encode(sum[:], mh.SHA2_256)
	return cid.NewCidV1(cid.Raw, h).String()
}

// TestDirectoriesMatchKuboAdder builds each directory the way kubo's
// coreunix.Adder does (an MFS root, mfs.Mkdir for directories and
// mfs.PutNode for files, options from kubo's import config) and checks the
// store's bottom-up import gives the same root CID, including when the
// directory is big enough to become a HAMT shard.
func TestDirectoriesMatchKuboAdder(t *testing.T) {
	many := func(n int) files.Node {
		m := map[string]files.Node{}
		for i := range n {
			m[fmt.Sprintf("some-file-with-a-longish-name-%05d.txt", i)] = files.NewBytesFile([]byte(fmt.Sprint(i)))
		}
		m["sub"] = files.NewMapDirectory(map[string]files.Node{
			"a":     files.NewBytesFile(randomBytes(200_000, 20)),
			"empty": files.NewMapDirectory(nil),
			"link":  files.NewLinkFile("../sub/a", nil),
		})
		return files.NewMapDirectory(m)
	}
	small := func(c Config) Config { c.Chunker = "size-65536"; c.HAMTThreshold = 4096; return c }
	tests := []struct {
		name    string
		cfg     Config
		entries int
		sharded bool
	}{
		{"v1 basic", DefaultConfig(), 20, false},
		{"legacy basic", LegacyConfig(), 20, false},
		{"v1 sharded", small(DefaultConfig()), 120, true},
		{"legacy sharded", small(LegacyConfig()), 120, true},
		{"v1 below threshold", small(DefaultConfig()), 30, false},
		{"legacy below threshold", small(LegacyConfig()), 30, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t, tt.cfg, nil, nil)
			got, err := s.AddNode(ctx, many(tt.entries), AddOptions{NoPin: true}, -1)
			if err != nil {
				t.Fatal(err)
			}
			want := kuboAdderRoot(t, s, many(tt.entries))
			if got != want {
				t.Fatalf("root %s, kubo's adder gives %s", got, want)
			}
			nd, err := s.localDAG.Get(ctx, got)
			if err != nil {
				t.Fatal(err)
			}
			fsn, err := unixfs.ExtractFSNode(nd)
			if err != nil {
				t.Fatal(err)
			}
			if sharded := fsn.Type() == unixfs.THAMTShard; sharded != tt.sharded {
				t.Fatalf("root sharded = %v, want %v", sharded, tt.sharded)
			}
		})
	}
}

// kuboAdderRoot mirrors kubo v0.43.1 core/coreunix/add.go for a directory.
func kuboAdderRoot(t *testing.T, s *Store, dir files.Node) cid.Cid {
	t.Helper()
	ctx := context.Background()
	cfg := s.cfg
	mode, _ := cfg.sizeEstimation()
	opts := []mfs.Option{
		mfs.WithCidBuilder(cfg.cidBuilder()),
		mfs.WithMaxLinks(0),
		mfs.WithMaxHAMTFanout(cfg.HAMTFanout),
		mfs.WithSizeEstimationMode(mode),
		// kubo sets uio.HAMTShardingSize globally from its config.
		mfs.WithHAMTShardingSize(cfg.HAMTThreshold),
	}
	root, err := mfs.NewEmptyRoot(ctx, s.dag, nil, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var add func(path string, n files.Node)
	add = func(path string, n files.Node) {
		switch n := n.(type) {
		case files.Directory:
			if path != "" {
				if err := mfs.Mkdir(root, path, mfs.MkdirOpts{Mkparents: true}, opts...); err != nil {
					t.Fatal(err)
				}
			}
			it := n.Entries()
			for it.Next() {
				add(gopath.Join(path, it.Name()), it.Node())
			}
		default:
			var nd ipld.Node
			if l, ok := n.(*files.Symlink); ok {
				data, _ := unixfs.SymlinkData(l.Target)
				pn := merkledag.NodeWithData(data)
				_ = pn.SetCidBuilder(cfg.cidBuilder())
				nd = pn
				if err := s.dag.Add(ctx, nd); err != nil {
					t.Fatal(err)
				}
			} else {
				im := &importer{s: s, ctx: ctx, total: -1}
				var err error
				if nd, err = im.addFile(n.(files.File)); err != nil {
					t.Fatal(err)
				}
			}
			if dir := gopath.Dir(path); dir != "." {
				if err := mfs.Mkdir(root, dir, mfs.MkdirOpts{Mkparents: true}, opts...); err != nil {
					t.Fatal(err)
				}
			}
			if err := mfs.PutNode(root, path, nd); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("", dir)
	d := root.GetDirectory()
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := root.Close(); err != nil {
		t.Fatal(err)
	}
	nd, err := d.GetNode()
	if err != nil {
		t.Fatal(err)
	}
	return nd.Cid()
}
