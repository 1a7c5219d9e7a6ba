// Command fetchbench is the storage side of the multi-provider fetch
// measurement (bench/fetch-bench.sh, docs/BENCHMARKS.md): small programs
// run inside the network namespaces of internal/netns by
// fetchbench_test.go, each a libp2p host with a real Store on disk.
//
//	fetchbench provide -ip 198.18.0.2 -repo DIR -file PATH    (imports PATH, serves it)
//	fetchbench fetch   -ip 198.18.0.5 -repo DIR -root CID -providers <addr>,... [-bitswap]
//
// Each prints JSON lines on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/vft-network/vft/storage"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: fetchbench provide|fetch [flags]")
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	ip := fs.String("ip", "", "the address to listen on")
	repo := fs.String("repo", "", "the store's directory")
	file := fs.String("file", "", "provide: the file to import")
	root := fs.String("root", "", "fetch: the CID to fetch")
	providers := fs.String("providers", "", "fetch: the providers' addresses")
	bitswapOnly := fs.Bool("bitswap", false, "fetch: over bitswap only")
	debug := fs.Bool("debug", false, "log the store's debug lines on stderr")
	cpuprofile := fs.String("cpuprofile", "", "fetch: write a CPU profile of the fetch to this file")
	fs.Parse(os.Args[2:])
	// The test network's addresses (198.18.0.0/15) count as public.
	manet.Unroutable4 = slices.DeleteFunc(slices.Clone(manet.Unroutable4), func(n *net.IPNet) bool { return n.String() == "198.18.0.0/15" })
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	var err error
	switch mode {
	case "provide":
		err = runProvide(*ip, *repo, *file, logger)
	case "fetch":
		err = runFetch(*ip, *repo, *root, *providers, *bitswapOnly, *cpuprofile, logger)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		log.Fatalf("fetchbench %s: %v", mode, err)
	}
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func open(ip, repo string, logger *slog.Logger) (*storage.Store, host.Host, func(), error) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/"+ip+"/tcp/4201"), libp2p.ResourceManager(&network.NullResourceManager{}))
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := storage.New(storage.DefaultConfig(), repo, h, nil, logger, storage.Options{})
	if err != nil {
		h.Close()
		return nil, nil, nil, err
	}
	return s, h, func() { s.Close(); h.Close() }, nil
}

func runProvide(ip, repo, file string, logger *slog.Logger) error {
	s, h, closeAll, err := open(ip, repo, logger)
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("/ip4/%s/tcp/4201/p2p/%s", ip, h.ID())
	defer closeAll()
	start := time.Now()
	c, err := s.Add(context.Background(), file, storage.AddOptions{})
	if err != nil {
		return err
	}
	emit(map[string]any{"addr": addr, "root": c.String(), "import_s": time.Since(start).Seconds()})
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	<-ch
	return nil
}

func runFetch(ip, repo, root, providers string, bitswapOnly bool, cpuprofile string, logger *slog.Logger) error {
	c, err := cid.Decode(root)
	if err != nil {
		return fmt.Errorf("-root %q: %w", root, err)
	}
	s, h, closeAll, err := open(ip, repo, logger)
	if err != nil {
		return err
	}
	defer closeAll()
	ctx := context.Background()
	var from []peer.ID
	for _, a := range strings.Split(providers, ",") {
		info, err := peer.AddrInfoFromString(a)
		if err != nil {
			return fmt.Errorf("-providers: %q: %w", a, err)
		}
		if err := h.Connect(ctx, *info); err != nil {
			return fmt.Errorf("connect %s: %w", a, err)
		}
		from = append(from, info.ID)
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	start := time.Now()
	res, err := s.Fetch(ctx, c, storage.FetchOptions{From: from, NoStream: bitswapOnly})
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	sec := time.Since(start).Seconds()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	emit(map[string]any{"s": sec, "cpu_s": cpu, "bytes": res.Bytes, "blocks": res.Blocks, "fetched": res.Fetched, "mib_s": float64(res.Bytes) / (1 << 20) / sec})
	return nil
}
