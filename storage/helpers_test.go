package storage

import (
	"bytes"
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	flatfs "github.com/ipfs/go-ds-flatfs"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testConfig is DefaultConfig with small chunks so multi-chunk DAGs stay small.
func testConfig() Config {
	c := DefaultConfig()
	c.Chunker = "size-65536"
	c.FetchTimeout = 20 * time.Second
	return c
}

func newStore(t testing.TB, cfg Config, h host.Host, r routing.ContentRouting) *Store {
	t.Helper()
	s, err := New(cfg, t.TempDir(), h, r, nil, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func newDHT(t testing.TB, h host.Host) *dht.IpfsDHT {
	t.Helper()
	d, err := dht.New(h, dht.ProtocolPrefix("/vft"), dht.Mode(dht.ModeServer))
	if err != nil {
		t.Fatalf("dht.New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

// node is a host with a DHT server and a Store on it.
type node struct {
	h host.Host
	d *dht.IpfsDHT
	s *Store
}

func newNodes(t testing.TB, n int, cfg Config) []node {
	t.Helper()
	nodes := make([]node, n)
	for i := range nodes {
		h := newHost(t)
		d := newDHT(t, h)
		nodes[i] = node{h: h, d: d, s: newStore(t, cfg, h, d)}
	}
	for i := 1; i < n; i++ {
		connect(t, nodes[i].h, nodes[0].h)
	}
	return nodes
}

// writeTree creates files (path → content; a nil content makes an empty
// directory) under a new temp dir and returns it.
func writeTree(t testing.TB, tree map[string][]byte) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, data := range tree {
		full := filepath.Join(root, p)
		if data == nil {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// readTree returns path → content (nil for directories) for everything under root.
func readTree(t testing.TB, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		switch {
		case d.IsDir():
			out[rel] = nil
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = []byte("symlink:" + target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t testing.TB, want, got map[string][]byte) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("tree has %d entries, want %d: %v", len(got), len(want), keys(got))
	}
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("missing %s", p)
			continue
		}
		if (w == nil) != (g == nil) || !bytes.Equal(w, g) {
			t.Errorf("%s differs (%d bytes, want %d)", p, len(g), len(w))
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// corruptBlock damages c on disk the way bit rot would, in either kind of
// block store: a flatfs file gets other bytes, a block in a pack gets one
// byte flipped.
func corruptBlock(t testing.TB, s *Store, c cid.Cid) {
	t.Helper()
	ps, ok := s.blocks.(*packStore)
	if !ok {
		if err := os.WriteFile(blockFile(t, s.repo, c), []byte("bit rot"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	e, found, err := ps.lookup([]byte(dsKeyFor(c)))
	if err != nil || !found {
		t.Fatalf("block %s not in the pack index: %v", c, err)
	}
	f, err := os.OpenFile(ps.packPath(e.pack), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, e.offset+int64(e.length)/2); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, e.offset+int64(e.length)/2); err != nil {
		t.Fatal(err)
	}
}

// dsKeyFor is c's key in the block datastore.
func dsKeyFor(c cid.Cid) string { return "/" + dsKey(c) }

// makeFlatfsRepo lays out repo's block store as flatfs, as repos created
// before the pack store have it.
func makeFlatfsRepo(t testing.TB, repo string) {
	t.Helper()
	fds, err := flatfs.CreateOrOpen(filepath.Join(repo, "blocks"), flatfs.NextToLast(2), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := fds.Close(); err != nil {
		t.Fatal(err)
	}
}

// blockFile returns the flatfs file that holds c in the store at repo.
func blockFile(t testing.TB, repo string, c cid.Cid) string {
	t.Helper()
	var found string
	name := dsKey(c) + ".data"
	_ = filepath.WalkDir(filepath.Join(repo, "blocks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("block %s not found on disk", c)
	}
	return found
}
