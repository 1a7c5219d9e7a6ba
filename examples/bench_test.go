package examples_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

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

// BenchmarkLoopChecks isolates the cost of the loop-header checks that
// wazero's WithCloseOnContextDone compiles in (the executor needs them to
// stop a module at its timeout): the same matmul module in bare wazero, with
// and without them.
func BenchmarkLoopChecks(b *testing.B) {
	const n = 256
	bin := mustRead(b, module(b, "matmul"))
	for _, checks := range []bool{false, true} {
		b.Run(fmt.Sprintf("checks=%v/n=%d", checks, n), func(b *testing.B) {
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(checks))
			defer r.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, r)
			cm, err := r.CompileModule(ctx, bin)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				out := b.TempDir()
				cfg := wazero.NewModuleConfig().WithName("").WithArgs("matmul", "-n", fmt.Sprint(n), "-seed", "1").
					WithFSConfig(wazero.NewFSConfig().WithDirMount(out, "/output"))
				if _, err := r.InstantiateModule(ctx, cm, cfg); err != nil {
					b.Fatal(err)
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
