package storage

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/routing"
)

const benchSize = 64 << 20

// benchFile writes benchSize pseudo-random bytes to a temp file.
func benchFile(b *testing.B) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "input.bin")
	if err := os.WriteFile(p, randomBytes(benchSize, 99), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkImport measures `vft add` of a 64 MiB file (MB/s is the
// figure to compare with `ipfs add` on the same settings). Between
// iterations the content is unpinned and collected, so every iteration
// writes all blocks into a repo that has been used before, as a node's is.
//
//	go test ./storage/ -run '^$' -bench Import -benchtime 10x
func BenchmarkImport(b *testing.B) {
	profiles := []struct {
		name string
		cfg  Config
	}{
		{"unixfs-v1-2025", DefaultConfig()},
		{"unixfs-v0-2015", LegacyConfig()},
	}
	in := benchFile(b)
	ctx := context.Background()
	for _, p := range profiles {
		b.Run(p.name, func(b *testing.B) {
			s, err := New(p.cfg, b.TempDir(), nil, nil, nil, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(benchSize)
			for b.Loop() {
				c, err := s.Add(ctx, in, AddOptions{})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Unpin(ctx, c); err != nil {
					b.Fatal(err)
				}
				if _, err := s.GC(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkExport measures writing a 64 MiB local file back to disk.
func BenchmarkExport(b *testing.B) {
	in := benchFile(b)
	s, err := New(DefaultConfig(), b.TempDir(), nil, nil, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, err := s.Add(context.Background(), in, AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	b.SetBytes(benchSize)
	for b.Loop() {
		p := filepath.Join(out, "out")
		if err := s.Export(context.Background(), c, p, ExportLimits{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(p)
		b.StartTimer()
	}
}

// BenchmarkFetch measures a 64 MiB transfer between two nodes on
// loopback, into a fresh repo each time, with no holder named (as `vft
// get`): connected to the holder, as one /vft/car/1 stream and over
// bitswap only; and connected only to a DHT server that holds the
// holder's provider record (dht-*), finding the holder by it.
func BenchmarkFetch(b *testing.B) {
	in := benchFile(b)
	ctx := context.Background()
	nodes := newNodes(b, 2, DefaultConfig()) // node 1 holds the file; node 0 is a DHT server
	src := nodes[1]
	c, err := src.s.Add(ctx, in, AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	waitProvided(b, nodes[0].d, c, src.h.ID())
	for _, mode := range []struct {
		name     string
		viaDHT   bool // connected to node 0 only, finding the holder by its provider record
		noStream bool
	}{{"stream", false, false}, {"bitswap", false, true}, {"dht-stream", true, false}, {"dht-bitswap", true, true}} {
		b.Run(mode.name, func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				b.StopTimer()
				h := newHost(b)
				var rt routing.ContentRouting
				peer := src.h
				if mode.viaDHT {
					rt, peer = nodes[0].d, nodes[0].h
				}
				s, err := New(DefaultConfig(), b.TempDir(), h, rt, nil, Options{})
				if err != nil {
					b.Fatal(err)
				}
				connect(b, h, peer)
				b.StartTimer()
				if _, err := s.Fetch(ctx, c, FetchOptions{NoStream: mode.noStream}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
				h.Close()
				b.StartTimer()
			}
		})
	}
}
