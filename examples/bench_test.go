package examples_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vft-network/vft/examples/internal/matmul"
	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/wasm"
)

// BenchmarkMatmul runs the whole matmul job (generate two n×n matrices,
// multiply, write c.bin and checksum.txt) natively and as a module under
// wazero (compiled module warm in memory; instantiation and the Go runtime's
// start are included). Compare ns/op of wasm to native at the same n.
func BenchmarkMatmul(b *testing.B) {
	for _, n := range []int{128, 256, 384} {
		b.Run(fmt.Sprintf("native/n=%d", n), func(b *testing.B) {
			in := b.TempDir()
			for b.Loop() {
				out := b.TempDir()
				if err := matmul.Job(in, out, n, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("wasm/n=%d", n), func(b *testing.B) {
			e := executorFor(b)
			task := executor.Task{ModulePath: module(b, "matmul"), Args: []string{"-n", fmt.Sprint(n), "-seed", "1"}}
			if err := e.Compile(context.Background(), mustRead(b, task.ModulePath)); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				task.OutputDir = filepath.Join(b.TempDir(), "out")
				if res, err := e.Run(context.Background(), task); err != nil {
					b.Fatalf("%v\n%s", err, res.Stderr)
				}
			}
		})
	}
}

// BenchmarkModuleStart measures how long a tiny task takes to start:
// cold (new executor, empty compilation cache: full compile), cached (new
// executor, compilation cache on disk from an earlier run) and warm (same
// executor, compiled module in memory).
func BenchmarkModuleStart(b *testing.B) {
	mod := module(b, "matmul")
	task := executor.Task{ModulePath: mod, Args: []string{"-n", "2"}}
	run := func(b *testing.B, e *wasm.Executor) {
		task.OutputDir = filepath.Join(b.TempDir(), "out")
		if res, err := e.Run(context.Background(), task); err != nil {
			b.Fatalf("%v\n%s", err, res.Stderr)
		}
	}
	newExec := func(b *testing.B, cacheDir string) *wasm.Executor {
		e, err := wasm.New(wasm.Config{CacheDir: cacheDir, Limits: limits}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			e := newExec(b, b.TempDir())
			run(b, e)
			e.Close()
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		e := newExec(b, dir)
		run(b, e)
		e.Close()
		for b.Loop() {
			e := newExec(b, dir)
			run(b, e)
			e.Close()
		}
	})
	b.Run("warm", func(b *testing.B) {
		e := newExec(b, b.TempDir())
		defer e.Close()
		run(b, e)
		for b.Loop() {
			run(b, e)
		}
	})
}

func mustRead(b *testing.B, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
