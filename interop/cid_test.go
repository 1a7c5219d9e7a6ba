package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	"github.com/vft-network/vft/interop/internal/kubo"
	"github.com/vft-network/vft/storage"
)

// TestCIDsMatchKubo: for the same bytes, `ipfs add --only-hash` and
// Store.Add give the same root CID, with kubo's unixfs-v1-2025 profile
// (storage.DefaultConfig) and with kubo's classic defaults
// (storage.LegacyConfig), set either as a repo profile or as `ipfs add`
// flags.
func TestCIDsMatchKubo(t *testing.T) {
	requireKubo(t)
	inputs := t.TempDir()
	hamt := map[string][]byte{}
	for i := range 3000 {
		hamt[fmt.Sprintf("a-file-name-long-enough-to-push-the-directory-over-256KiB-%05d.txt", i)] = []byte(fmt.Sprint(i))
	}
	type input struct {
		name  string
		path  string
		dir   bool
		chunk string // chunker for both sides; "" keeps the profile's
		hamt  bool   // the root must be a HAMT shard
	}
	in := []input{
		{name: "small file", path: writeFile(t, inputs, "small.txt", []byte("hello world\n"))},
		{name: "empty file", path: writeFile(t, inputs, "empty", nil)},
		{name: "multi-chunk file", path: writeFile(t, inputs, "multi.bin", randomBytes(4<<20+1, 10))},
		// More leaves than one node may link (174 / 1024): a deeper tree.
		{name: "wide file", path: writeFile(t, inputs, "wide.bin", randomBytes(1100<<10, 11)), chunk: "size-1024"},
		{name: "rabin file", path: writeFile(t, inputs, "rabin.bin", randomBytes(3<<20, 12)), chunk: "rabin"},
		{name: "rabin-min-avg-max file", path: writeFile(t, inputs, "rabin2.bin", randomBytes(2<<20, 13)), chunk: "rabin-16384-65536-131072"},
		{name: "buzhash file", path: writeFile(t, inputs, "buz.bin", randomBytes(3<<20, 14)), chunk: "buzhash"},
		{name: "directory", dir: true, path: writeTree(t, map[string][]byte{
			"a.txt":            []byte("a\n"),
			"empty":            {},
			"big.bin":          randomBytes(1<<20+5, 15),
			"sub/b.txt":        []byte("b\n"),
			"sub/empty-dir":    nil,
			".hidden":          []byte("skipped by both without --hidden\n"),
			"sub/deeper/c.bin": randomBytes(70_000, 16),
		})},
		{name: "HAMT directory", dir: true, hamt: true, path: writeTree(t, hamt)},
	}

	repos := map[string]*kubo.Repo{
		"default": newKuboRepo(t),
		"v1-2025": newKuboRepo(t, "unixfs-v1-2025"),
	}
	before := map[string]string{}
	for name, r := range repos {
		before[name] = refsLocal(t, r)
	}
	for _, mode := range []struct {
		name  string
		cfg   storage.Config
		repo  string
		flags []string
		files bool // flags cannot set HAMT estimation: files only
	}{
		{name: "unixfs-v1-2025 profile", cfg: storage.DefaultConfig(), repo: "v1-2025"},
		{name: "unixfs-v1-2025 flags", cfg: storage.DefaultConfig(), repo: "default", files: true,
			flags: []string{"--cid-version=1", "--raw-leaves=true", "--chunker=size-1048576", "--max-file-links=1024"}},
		{name: "kubo defaults", cfg: storage.LegacyConfig(), repo: "default"},
		{name: "legacy flags", cfg: storage.LegacyConfig(), repo: "v1-2025", files: true,
			flags: []string{"--cid-version=0", "--raw-leaves=false", "--chunker=size-262144", "--max-file-links=174"}},
	} {
		for _, tc := range in {
			if mode.files && tc.dir {
				continue
			}
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				args := []string{"add", "--only-hash", "-Q"}
				cfg := mode.cfg
				for _, f := range mode.flags {
					if tc.chunk == "" || !strings.HasPrefix(f, "--chunker=") {
						args = append(args, f)
					}
				}
				if tc.chunk != "" {
					args = append(args, "--chunker="+tc.chunk)
					cfg.Chunker = tc.chunk
				}
				if tc.dir {
					args = append(args, "-r")
				}
				out, err := repos[mode.repo].Run(ctx, nil, append(args, tc.path)...)
				if err != nil {
					t.Fatal(err)
				}
				want := string(trimSpace(out))

				s := newOfflineVFT(t, cfg)
				got, err := s.Add(ctx, tc.path, storage.AddOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got.String() != want {
					t.Fatalf("vft Add = %s, ipfs %v printed %s", got, args, want)
				}
				if tc.hamt {
					requireHAMT(t, s, got)
				}
			})
		}
	}
	// --only-hash must not have stored anything in kubo (a fresh repo
	// already holds its empty MFS root).
	for name, r := range repos {
		if after := refsLocal(t, r); after != before[name] {
			t.Errorf("%s repo: ipfs refs local changed after --only-hash adds:\nbefore %q\nafter  %q", name, before[name], after)
		}
	}
}

// requireHAMT fails unless the root is a UnixFS HAMT shard, so the HAMT
// case cannot silently turn into a plain directory.
func requireHAMT(t testing.TB, s *storage.Store, c cid.Cid) {
	t.Helper()
	nd, err := s.DAG().Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	pn, ok := nd.(*merkledag.ProtoNode)
	if !ok {
		t.Fatalf("%s is not a dag-pb node", c)
	}
	fsn, err := unixfs.FSNodeFromBytes(pn.Data())
	if err != nil {
		t.Fatal(err)
	}
	if fsn.Type() != unixfs.THAMTShard {
		t.Fatalf("%s is UnixFS type %v, want a HAMT shard", c, fsn.Type())
	}
}

func refsLocal(t testing.TB, r *kubo.Repo) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.Run(ctx, nil, "refs", "local")
	if err != nil {
		t.Fatal(err)
	}
	return string(trimSpace(out))
}
