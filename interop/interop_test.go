package interop

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/vft-network/vft/storage"
)

// TestKuboConfigIsLoopbackOnly checks the settings that keep every kubo
// node in these tests off the public network, as the running daemon sees
// them, and that it listens on loopback only.
func TestKuboConfigIsLoopbackOnly(t *testing.T) {
	d, id := startKubo(t)
	want := map[string]string{
		"Routing.Type":                          "none",
		"Bootstrap":                             "[]",
		"Discovery.MDNS.Enabled":                "false",
		"Swarm.DisableNatPortMap":               "true",
		"Swarm.RelayClient.Enabled":             "false",
		"Swarm.RelayService.Enabled":            "false",
		"Swarm.EnableHolePunching":              "false",
		"AutoNAT.ServiceMode":                   "disabled",
		"AutoConf.Enabled":                      "false",
		"AutoTLS.Enabled":                       "false",
		"HTTPRetrieval.Enabled":                 "false",
		"Provide.Enabled":                       "false",
		"Plugins.Plugins.telemetry.Config.Mode": "off",
		"Addresses.Swarm":                       "[/ip4/127.0.0.1/tcp/0]",
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		// Ask the daemon, so a key it ignored or rewrote shows up here.
		got := ipfs(t, d.Repo, "config", key)
		got = strings.Join(strings.Fields(strings.NewReplacer("\"", "", ",", " ", "\n", "").Replace(got)), " ")
		got = strings.ReplaceAll(strings.ReplaceAll(got, "[ ", "["), " ]", "]")
		if got != want[key] {
			t.Errorf("%s = %s, want %s", key, got, want[key])
		}
	}
	if len(id.Addresses) == 0 {
		t.Fatal("kubo reports no listen addresses")
	}
	if peers := ipfs(t, d.Repo, "swarm", "peers"); peers != "" {
		t.Fatalf("kubo is connected to peers nobody asked it to dial: %s", peers)
	}
}

// TestKuboFetchesFromVFT: a multi-chunk file imported by a VFT node is
// fetched by kubo over bitswap (`ipfs cat`) byte for byte, for both
// import profiles.
func TestKuboFetchesFromVFT(t *testing.T) {
	data := randomBytes(5<<20+12345, 1) // 6 leaves of 1 MiB, 21 of 256 KiB
	for _, tc := range []struct {
		name string
		cfg  storage.Config
	}{
		{"unixfs-v1-2025", storage.DefaultConfig()},
		{"legacy", storage.LegacyConfig()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newVFT(t, tc.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := n.s.Add(ctx, writeFile(t, t.TempDir(), "data.bin", data), storage.AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			d, _ := startKubo(t)
			ipfs(t, d.Repo, "swarm", "connect", n.addr(t))

			var got strings.Builder
			got.Grow(len(data))
			if _, err := d.Repo.Run(ctx, &got, "cat", c.String()); err != nil {
				t.Fatal(err)
			}
			sameBytes(t, "ipfs cat "+c.String(), []byte(got.String()), data)
			// kubo now holds every block: its own view of the DAG agrees.
			if stat := ipfs(t, d.Repo, "files", "stat", "--hash", "/ipfs/"+c.String()); stat != c.String() {
				t.Fatalf("ipfs files stat --hash = %s, want %s", stat, c)
			}
		})
	}
}

// TestVFTFetchesFromKubo: a file and a directory tree added with `ipfs add`
// are fetched by a VFT node with Store.Get: same bytes, same tree.
func TestVFTFetchesFromKubo(t *testing.T) {
	file := randomBytes(3<<20+777, 2)
	tree := map[string][]byte{
		"a.txt":                []byte("hello from kubo\n"),
		"empty.txt":            {},
		"big.bin":              randomBytes(2<<20+99, 3),
		"sub/b.txt":            []byte("nested\n"),
		"sub/deeper/c.bin":     randomBytes(300_000, 4),
		"sub/empty-dir":        nil,
		"with space/ü-name.md": []byte("# unicode name\n"),
	}
	for _, tc := range []struct {
		name    string
		profile []string
		addArgs []string
		// noEmpty leaves the empty file out: with raw leaves it is the
		// 0-byte raw block, which bitswap does not deliver (kubo to kubo
		// neither); see README.md.
		noEmpty bool
	}{
		{"kubo defaults (CIDv0)", nil, nil, false},
		{"unixfs-v1-2025", []string{"unixfs-v1-2025"}, nil, true},
		{"trickle, 64KiB chunks", nil, []string{"--trickle", "--chunker=size-65536", "--cid-version=1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := maps.Clone(tree)
			if tc.noEmpty {
				delete(tree, "empty.txt")
			}
			root := writeTree(t, tree)
			if err := os.Symlink("sub/b.txt", filepath.Join(root, "link")); err != nil {
				t.Fatal(err)
			}
			d, id := startKubo(t, tc.profile...)
			fileCID := ipfs(t, d.Repo, append([]string{"add", "-Q"}, append(tc.addArgs, writeFile(t, t.TempDir(), "f.bin", file))...)...)
			dirCID := ipfs(t, d.Repo, append([]string{"add", "-Q", "-r"}, append(tc.addArgs, root)...)...)

			n := newVFT(t, storage.DefaultConfig())
			kaddr, err := id.LoopbackAddr()
			if err != nil {
				t.Fatal(err)
			}
			n.connect(t, kaddr)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			out := t.TempDir()
			res, err := n.s.Get(ctx, cid.MustParse(fileCID), filepath.Join(out, "f.bin"), storage.FetchOptions{})
			if err != nil {
				t.Fatalf("Get %s from kubo: %v", fileCID, err)
			}
			if res.Fetched == 0 {
				t.Fatalf("Get %s fetched no blocks from kubo: %+v", fileCID, res)
			}
			got, err := os.ReadFile(filepath.Join(out, "f.bin"))
			if err != nil {
				t.Fatal(err)
			}
			sameBytes(t, "file "+fileCID, got, file)

			if _, err := n.s.Get(ctx, cid.MustParse(dirCID), filepath.Join(out, "root"), storage.FetchOptions{}); err != nil {
				t.Fatalf("Get %s from kubo: %v", dirCID, err)
			}
			want, gotTree := treeDigest(t, root), treeDigest(t, filepath.Join(out, "root"))
			if !maps.Equal(gotTree, want) {
				t.Fatalf("tree %s differs:\n got  %v\n want %v", dirCID, slices.Sorted(maps.Keys(gotTree)), slices.Sorted(maps.Keys(want)))
			}
			// And VFT, importing what it fetched with kubo's settings,
			// gets the root kubo printed.
			if tc.addArgs == nil {
				cfg := storage.LegacyConfig()
				if tc.profile != nil {
					cfg = storage.DefaultConfig()
				}
				s := newOfflineVFT(t, cfg)
				c, err := s.Add(ctx, filepath.Join(out, "root"), storage.AddOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if c.String() != dirCID {
					t.Fatalf("re-import of the fetched tree = %s, kubo printed %s", c, dirCID)
				}
			}
		})
	}
}
