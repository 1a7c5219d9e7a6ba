// Command transferprof moves one file between two stores on loopback, as
// interop-bench's vft transfer does (a provider node that imported it, a
// fresh node that fetches it with Store.Fetch and reads it back with
// Store.Cat), and writes a CPU profile of the fetch and the read-back, to
// see where a transfer's time goes when both ends share the CPUs:
//
//	go run ./bench/cmd/transferprof -cpuprofile cpu.prof DIR FILE
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/storage"
)

func main() {
	prof := flag.String("cpuprofile", "", "write a CPU profile of the fetch and read-back here")
	runs := flag.Int("runs", 1, "fetches, each into a fresh node")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: transferprof [-cpuprofile FILE] [-runs N] DIR FILE")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *prof, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "transferprof:", err)
		os.Exit(1)
	}
}

func newNode(dir string) (host.Host, *storage.Store, error) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		return nil, nil, err
	}
	s, err := storage.New(storage.DefaultConfig(), dir, h, nil, nil, storage.Options{})
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	return h, s, nil
}

func run(dir, file, prof string, runs int) error {
	ctx := context.Background()
	src, srcStore, err := newNode(filepath.Join(dir, "src"))
	if err != nil {
		return err
	}
	defer src.Close()
	defer srcStore.Close()
	root, err := srcStore.Add(ctx, file, storage.AddOptions{})
	if err != nil {
		return err
	}
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for i := range runs {
		dst, dstStore, err := newNode(filepath.Join(dir, fmt.Sprintf("dst%d", i)))
		if err != nil {
			return err
		}
		if err := dst.Connect(ctx, peer.AddrInfo{ID: src.ID(), Addrs: src.Addrs()}); err != nil {
			return err
		}
		start := time.Now()
		if _, err := dstStore.Fetch(ctx, root, storage.FetchOptions{From: []peer.ID{src.ID()}}); err != nil {
			return err
		}
		fetched := time.Since(start)
		rc, err := dstStore.Cat(ctx, root, 0, -1)
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
		total := time.Since(start)
		fmt.Printf("run %d: %d bytes, fetch %.3f s, read-back %.3f s, total %.3f s\n", i+1, n, fetched.Seconds(), (total - fetched).Seconds(), total.Seconds())
		dstStore.Close()
		dst.Close()
		os.RemoveAll(filepath.Join(dir, fmt.Sprintf("dst%d", i)))
	}
	return nil
}
