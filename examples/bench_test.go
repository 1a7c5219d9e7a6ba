package examples_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/vft-network/vft/examples/internal/matmul"
	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/wasm"
)

// BenchmarkMatmul runs the whole matmul job (generate two n×n matrices,
// multiply, write c.bin and checksum.txt) on the same input four ways:
//
//   - native: the same Go code compiled for the host;
//   - wasmtime, wazero: the module under the executor on each runtime (its
//     limits, fake clock, seeded randomness and the termination checks that
//     enforce the timeout), compiled module warm in memory; instantiation
//     and the Go runtime's start are included (wasmtime only in cgo builds);
//   - bare-checks: the module in a bare wazero runtime with the termination
//     checks (WithCloseOnContextDone) but none of the executor's sandboxing;
//   - bare-nochecks: the same without the termination checks, which is
//     what WASM costs when nothing has to stop the module in-process.
//
// Compare ns/op within one n.
func BenchmarkMatmul(b *testing.B) {
	bin := mustRead(b, module(b, "matmul"))
	for _, n := range []int{128, 256, 512} {
		args := []string{"-n", fmt.Sprint(n), "-seed", "1"}
		b.Run(fmt.Sprintf("n=%d/native", n), func(b *testing.B) {
			in := b.TempDir()
			for b.Loop() {
				if err := matmul.Job(in, b.TempDir(), n, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, rt := range wasm.Runtimes() {
			b.Run(fmt.Sprintf("n=%d/%s", n, rt), func(b *testing.B) {
				runExecutor(b, rt, bin, args)
			})
		}
		for _, checks := range []bool{true, false} {
			name := map[bool]string{true: "bare-checks", false: "bare-nochecks"}[checks]
			b.Run(fmt.Sprintf("n=%d/%s", n, name), func(b *testing.B) {
				runBare(b, bin, checks, args)
			})
		}
	}
}

// BenchmarkMatmulKernel is BenchmarkMatmul without the job around the
// kernel: two generated 256×256 matrices multiplied 8 times (matmul.Repeat),
// natively and as the mulkernel module, so that the module's start, file
// output and checksum do not blur the ratio. ns/mul is the time per Mul.
func BenchmarkMatmulKernel(b *testing.B) {
	const n, reps = 256, 8
	bin := mustRead(b, module(b, "internal/mulkernel"))
	args := []string{"-n", fmt.Sprint(n), "-reps", fmt.Sprint(reps)}
	perMul := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*reps), "ns/mul")
	}
	b.Run(fmt.Sprintf("n=%d/native", n), func(b *testing.B) {
		for b.Loop() {
			matmul.Repeat(n, reps)
		}
		perMul(b)
	})
	for _, rt := range wasm.Runtimes() {
		b.Run(fmt.Sprintf("n=%d/%s", n, rt), func(b *testing.B) {
			runExecutor(b, rt, bin, args)
			perMul(b)
		})
	}
	for _, checks := range []bool{true, false} {
		name := map[bool]string{true: "bare-checks", false: "bare-nochecks"}[checks]
		b.Run(fmt.Sprintf("n=%d/%s", n, name), func(b *testing.B) {
			runBare(b, bin, checks, args)
			perMul(b)
		})
	}
}

// runExecutor runs the module b.N times under an executor on runtime rt,
// one per runtime for the whole test binary.
func runExecutor(b *testing.B, rt string, bin []byte, args []string) {
	e := benchExecutor(b, rt)
	task := executor.Task{Module: bin, Args: args}
	if err := e.Compile(context.Background(), bin); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		task.OutputDir = filepath.Join(b.TempDir(), "out")
		if res, err := e.Run(context.Background(), task); err != nil {
			b.Fatalf("%v\n%s", err, res.Stderr)
		}
	}
}

// runBare runs the module b.N times in a bare wazero runtime (the default
// compiler, no limits, /output mounted), with or without the termination
// checks that WithCloseOnContextDone compiles in at every loop header.
func runBare(b *testing.B, bin []byte, checks bool, args []string) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(checks).
		WithCompilationCache(bareCache(checks)))
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	cm, err := r.CompileModule(ctx, bin)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		cfg := wazero.NewModuleConfig().WithName("").WithArgs(append([]string{"task"}, args...)...).
			WithFSConfig(wazero.NewFSConfig().WithDirMount(b.TempDir(), "/output"))
		if _, err := r.InstantiateModule(ctx, cm, cfg); err != nil {
			b.Fatal(err)
		}
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
	for _, rt := range wasm.Runtimes() {
		b.Run(rt, func(b *testing.B) { benchModuleStart(b, rt, false, run) })
		if rt == wasm.RuntimeWasmtime {
			b.Run(rt+"-isolated", func(b *testing.B) { benchModuleStart(b, rt, true, run) })
		}
	}
}

func benchModuleStart(b *testing.B, rt string, isolate bool, run func(*testing.B, *wasm.Executor)) {
	newExec := func(b *testing.B, cacheDir string) *wasm.Executor {
		e, err := wasm.New(wasm.Config{Runtime: rt, Isolate: isolate, CacheDir: cacheDir, Limits: limits}, nil)
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

// benchExecutors are the executors runExecutor uses, one per runtime, closed
// by the process's exit.
var benchExecutors sync.Map // runtime → *wasm.Executor

func benchExecutor(b *testing.B, rt string) *wasm.Executor {
	if e, ok := benchExecutors.Load(rt); ok {
		return e.(*wasm.Executor)
	}
	e, err := wasm.New(wasm.Config{Runtime: rt, CacheDir: filepath.Join(workDir, "bench-cache-"+rt), Limits: limits}, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchExecutors.Store(rt, e)
	return e
}

// BenchmarkCMatmul runs the C example (examples/cmatmul, n = 512, 4 passes,
// as in issue 20) under the executor on each runtime, SIMD and scalar
// builds. Native figures come from bin/cmatmul-native* (build.sh); see
// docs/BENCHMARKS.md.
func BenchmarkCMatmul(b *testing.B) {
	args := []string{"-n", "512", "-passes", "4"}
	for _, build := range []string{"simd", "scalar"} {
		bin := mustRead(b, filepath.Join("cmatmul", map[string]string{"simd": "cmatmul.wasm", "scalar": "cmatmul-scalar.wasm"}[build]))
		for _, rt := range wasm.Runtimes() {
			b.Run(build+"/"+rt, func(b *testing.B) {
				runExecutor(b, rt, bin, args)
			})
		}
	}
}

// bareCaches keep runBare from compiling a module again for every
// sub-benchmark and -count (seconds each); one per setting of the checks.
var bareCaches sync.Map // bool → wazero.CompilationCache

func bareCache(checks bool) wazero.CompilationCache {
	c, _ := bareCaches.LoadOrStore(checks, wazero.NewCompilationCache())
	return c.(wazero.CompilationCache)
}

func mustRead(b *testing.B, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
