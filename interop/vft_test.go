package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/vft-network/vft/storage"
)

// vftNode is an in-process VFT storage node: a real libp2p host listening
// on 127.0.0.1 only and a Store with bitswap on it. It has no routing
// (no DHT): like the kubo nodes it only talks to peers it is connected to.
type vftNode struct {
	h host.Host
	s *storage.Store
}

func newVFT(t testing.TB, cfg storage.Config) *vftNode {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	for _, a := range h.Addrs() {
		if !isLoopback(a) {
			t.Fatalf("vft host listens on non-loopback %s", a)
		}
	}
	s, err := storage.New(cfg, t.TempDir(), h, nil, nil, storage.Options{})
	if err != nil {
		t.Fatalf("storage.New: %v", err)
	}
	t.Cleanup(func() {
		// This process holds the vft nodes' sockets.
		requireLoopbackSockets(t, "test process (vft nodes)", os.Getpid())
		_ = s.Close()
	})
	return &vftNode{h: h, s: s}
}

// newOfflineVFT is a Store with no host: import only.
func newOfflineVFT(t testing.TB, cfg storage.Config) *storage.Store {
	t.Helper()
	s, err := storage.New(cfg, t.TempDir(), nil, nil, nil, storage.Options{})
	if err != nil {
		t.Fatalf("storage.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// addr is the node's 127.0.0.1 TCP address with /p2p/<id>, for `ipfs swarm connect`.
func (n *vftNode) addr(t testing.TB) string {
	t.Helper()
	for _, a := range n.h.Addrs() {
		if isLoopback(a) {
			return a.Encapsulate(ma.StringCast("/p2p/" + n.h.ID().String())).String()
		}
	}
	t.Fatalf("vft host has no loopback address: %v", n.h.Addrs())
	return ""
}

// connect dials a kubo node at its loopback address.
func (n *vftNode) connect(t testing.TB, kuboAddr string) {
	t.Helper()
	ai, err := peer.AddrInfoFromString(kuboAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.h.Connect(ctx, *ai); err != nil {
		t.Fatalf("connect to kubo %s: %v", kuboAddr, err)
	}
}

func isLoopback(a ma.Multiaddr) bool {
	if v, err := a.ValueForProtocol(ma.P_IP4); err == nil {
		return v == "127.0.0.1"
	}
	if v, err := a.ValueForProtocol(ma.P_IP6); err == nil {
		return v == "::1"
	}
	return false
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'v', 'f', 't'}))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeTree creates files (relative path → content; nil content makes an
// empty directory) under a new directory named root in a temp dir.
func writeTree(t testing.TB, tree map[string][]byte) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, data := range tree {
		if data == nil {
			if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		writeFile(t, root, p, data)
	}
	return root
}

// treeDigest maps every path under root to "dir" or the SHA-256 of its
// content, so two trees compare with one equality check.
func treeDigest(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.IsDir():
			out[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "symlink:" + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			out[rel] = string(sum[:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: got %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
	}
}
