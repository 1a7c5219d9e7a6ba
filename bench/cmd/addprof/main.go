// Command addprof imports one file into a fresh repo with Store.Add and
// writes a CPU profile, printing the time of each phase (open, add,
// close), to see where import time goes:
//
//	go run ./bench/cmd/addprof -cpuprofile cpu.prof REPO FILE
//	go run ./bench/cmd/addprof -memprofile allocs.prof REPO FILE   # what an import allocates, by call site
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/vft-network/vft/storage"
)

func main() {
	prof := flag.String("cpuprofile", "", "write a CPU profile here")
	traceOut := flag.String("trace", "", "write an execution trace here")
	memOut := flag.String("memprofile", "", "write an allocation profile here (every allocation, at the end)")
	flag.Parse()
	if *traceOut != "" {
		f, err := os.Create(*traceOut)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := trace.Start(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer trace.Stop()
	}
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: addprof [-cpuprofile FILE] REPO FILE")
		os.Exit(2)
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *memOut != "" {
		runtime.MemProfileRate = 1
	}
	if err := run(flag.Arg(0), flag.Arg(1)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	if *memOut != "" {
		if err := writeHeapProfile(*memOut); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC() // the profile holds what the last finished collection saw
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

func run(repo, path string) error {
	t0 := time.Now()
	s, err := storage.New(storage.DefaultConfig(), repo, nil, nil, nil, storage.Options{})
	if err != nil {
		return err
	}
	t1 := time.Now()
	c, err := s.Add(context.Background(), path, storage.AddOptions{})
	if err != nil {
		s.Close()
		return err
	}
	t2 := time.Now()
	if err := s.Close(); err != nil {
		return err
	}
	t3 := time.Now()
	fmt.Printf("%s open %.3fs add %.3fs close %.3fs\n", c, t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), t3.Sub(t2).Seconds())
	return nil
}
