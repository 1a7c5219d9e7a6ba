package storage

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
)

// BenchmarkFetchPeers measures a fetch of one random file (VFT_BENCH_FETCH_MB
// MiB, default 64; docs/BENCHMARKS.md uses 1024) into a fresh repo from 1
// or 3 provider nodes that each hold it, in one process on loopback: with
// the default fetch (a /vft/car/1 stream from one provider, split over
// all three with /vft/car/2; bitswap for whatever no stream delivered) and
// with bitswap only (one session, whose
// wants spread over the peers that have the blocks). It logs how many
// bytes each provider sent over bitswap.
//
//	VFT_BENCH_FETCH_MB=1024 go test ./storage -run '^$' -bench FetchPeers -benchtime 1x -count 3 -timeout 60m
func BenchmarkFetchPeers(b *testing.B) {
	mib := 64
	if v := os.Getenv("VFT_BENCH_FETCH_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("VFT_BENCH_FETCH_MB=%q: want a positive number of MiB", v)
		}
		mib = n
	}
	size := int64(mib) << 20
	in := filepath.Join(b.TempDir(), "model.bin")
	writeRandomFile(b, in, size)
	ctx := context.Background()
	var providers []host.Host
	var root cid.Cid
	for range 3 {
		h := newHost(b)
		s, err := New(DefaultConfig(), b.TempDir(), h, nil, nil, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		c, err := s.Add(ctx, in, AddOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if root.Defined() && c != root {
			b.Fatalf("providers hold different roots %s and %s", root, c)
		}
		root = c
		providers = append(providers, h)
	}
	for _, mode := range []struct {
		name     string
		noStream bool
	}{{"stream", false}, {"bitswap", true}} {
		for _, peers := range []int{1, 3} {
			b.Run(mode.name+"/peers="+strconv.Itoa(peers), func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					b.StopTimer()
					dir, err := os.MkdirTemp("", "fetch-peers-")
					if err != nil {
						b.Fatal(err)
					}
					h := newHost(b)
					s, err := New(DefaultConfig(), dir, h, nil, nil, Options{})
					if err != nil {
						b.Fatal(err)
					}
					for _, p := range providers[:peers] {
						connect(b, h, p)
					}
					b.StartTimer()
					res, err := s.Fetch(ctx, root, FetchOptions{NoStream: mode.noStream})
					b.StopTimer()
					if err != nil {
						b.Fatal(err)
					}
					var sent []string
					for _, p := range providers[:peers] {
						sent = append(sent, strconv.FormatFloat(float64(s.bswap.LedgerForPeer(p.ID()).Recv)/(1<<20), 'f', 1, 64)+" MiB")
					}
					b.Logf("%d blocks fetched; over bitswap from each provider: %v (the rest by stream)", res.Fetched, sent)
					s.Close()
					h.Close()
					os.RemoveAll(dir)
					b.StartTimer()
				}
			})
		}
	}
}

// writeRandomFile writes size pseudo-random bytes to path without holding
// them in memory.
func writeRandomFile(b *testing.B, path string, size int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{7})
	if _, err := io.CopyN(f, r, size); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}
