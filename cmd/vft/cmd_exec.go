package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/hwdetect"
	"github.com/vft-network/vft/storage"
)

// runExec runs a WASM module locally in the executor's sandbox, with the
// limits a job gets by default, and prints its time and output CID: a
// submitter can test a module before paying for it, and a benchmark can
// time the executor without a network. No daemon is needed.
func (c *cli) execCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec MODULE.wasm [--input PATH]... [--arg A]... [-o DIR]",
		Short: "run a WASM module locally in the sandbox, print its time and output CID",
		Long: `Run a WASM module locally in the executor's sandbox, with the limits a job
gets by default, and print its time and the CID of its output: what a miner
would publish. Test a module before paying for it; no daemon or repo is
needed.`,
		Example: `  vft exec bin/examples/matmul.wasm --arg -n --arg 256 -o ./out
  vft exec bin/examples/wordcount.wasm --input examples/wordcount/testdata --runtime wazero --json
  vft exec examples/cmatmul/cmatmul.wasm --isolate --floats native --timeout 30s`,
	}
	fs := cmd.Flags()
	asJSON := jsonFlag(cmd)
	var f execFlags
	fs.Var(&f.inputs, "input", "file or directory `PATH` mounted read-only under /input (repeatable; a directory alone becomes /input)")
	fs.Var(&f.args, "arg", "`ARG` passed to the module (repeatable, in order)")
	out := outputFlag(cmd, "output directory, the task's /output (default: a temporary directory, removed after)")
	// The help says the same in every build (docs/CLI.md is generated from
	// it); the default itself is the build's.
	runtimeName := fs.String("runtime", wasm.DefaultRuntime(),
		"WASM runtime: wasmtime or wazero (default: wasmtime in a build with cgo; a build without cgo has only wazero)")
	fs.Lookup("runtime").DefValue = ""
	seed := fs.Uint64("seed", 0, "the task's seed (its random numbers)")
	timeout := fs.Duration("timeout", wasm.DefaultLimits().Timeout, "the task's time limit (the compile has its own)")
	memory := fs.Uint64("memory-mib", wasm.DefaultLimits().MemoryBytes>>20, "the task's memory limit in MiB")
	isolate := fs.Bool("isolate", false, "run the task in a child process killed at its deadline (wasmtime only; no epoch checks in its code)")
	cacheDir := fs.String("cache", "", "compiled-module cache directory (default: none, every run compiles)")
	floats := fs.String("floats", wasm.FloatsPortable, "float mode, as a job's floats: portable (NaNs the same bits on every CPU) or native (faster float code; wazero always runs native)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f.asJSON, f.out, f.runtime, f.seed, f.timeout, f.memoryMiB, f.isolate, f.cacheDir, f.floats =
			*asJSON, *out, *runtimeName, *seed, *timeout, *memory, *isolate, *cacheDir, *floats
		return c.exec(args, f)
	}
	return cmd
}

// execFlags are the flags of `vft exec`.
type execFlags struct {
	asJSON       bool
	inputs, args stringList
	out, runtime string
	seed         uint64
	timeout      time.Duration
	memoryMiB    uint64
	isolate      bool
	cacheDir     string
	floats       string
}

func (c *cli) exec(args []string, f execFlags) error {
	if len(args) > 1 {
		return fmt.Errorf("%w: unexpected %q after the module; pass module arguments with --arg", errUsage, args[1])
	}
	if len(args) == 0 {
		return fmt.Errorf("%w: name the module: vft exec MODULE.wasm", errUsage)
	}
	module := args[0]
	if err := wasm.CheckFloats(f.floats); err != nil {
		return fmt.Errorf("%w: --floats: %v", errUsage, err)
	}

	outDir, cleanup := f.out, func() {}
	if outDir == "" {
		tmp, err := os.MkdirTemp("", "vft-exec-")
		if err != nil {
			return err
		}
		outDir, cleanup = filepath.Join(tmp, "output"), func() { _ = os.RemoveAll(tmp) }
	}
	defer cleanup()
	var mounts []executor.Mount
	for _, in := range f.inputs {
		m := executor.Mount{Host: in}
		if len(f.inputs) > 1 {
			m.Guest = filepath.Base(in)
		}
		mounts = append(mounts, m)
	}

	e, err := wasm.New(wasm.Config{Runtime: f.runtime, CacheDir: f.cacheDir, Isolate: f.isolate}, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer e.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	task := executor.Task{JobID: "exec", ModulePath: module, Args: f.args, Inputs: mounts, OutputDir: outDir, Seed: f.seed, Floats: f.floats,
		Limits: executor.Limits{Timeout: f.timeout, MemoryBytes: f.memoryMiB << 20}}
	start := time.Now()
	res, runErr := e.Run(ctx, task)
	wall := time.Since(start)
	// With --json, stdout is the report alone; the module's stdout goes to stderr.
	if f.asJSON {
		c.stderr.Write(res.Stdout)
	} else {
		c.stdout.Write(res.Stdout)
	}
	if len(res.Stderr) > 0 {
		c.stderr.Write(res.Stderr)
	}
	var id string
	if runErr == nil {
		if id, err = outputCID(ctx, outDir); err != nil {
			return fmt.Errorf("compute the output CID: %w", err)
		}
	}
	report := execReport{Runtime: e.Runtime(), ExitCode: res.ExitCode, RunMS: ms(res.Duration), WallMS: ms(wall),
		OutputBytes: res.OutputBytes, OutputCID: id}
	if f.out != "" {
		report.OutputDir = outDir
	}
	if runErr != nil {
		report.Error = runErr.Error()
	}
	if f.asJSON {
		if err := c.printJSON(report); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.stderr, "runtime %s: ran %.1f ms (%.1f ms with compile or cache load), exit %d, %d output bytes\n",
			report.Runtime, report.RunMS, report.WallMS, report.ExitCode, report.OutputBytes)
		if id != "" {
			fmt.Fprintf(c.stdout, "output %s\n", id)
		}
	}
	return runErr
}

type execReport struct {
	Runtime     string  `json:"runtime"`
	ExitCode    int     `json:"exit_code"`
	RunMS       float64 `json:"run_ms"`
	WallMS      float64 `json:"wall_ms"`
	OutputBytes int64   `json:"output_bytes"`
	OutputCID   string  `json:"output_cid,omitempty"`
	OutputDir   string  `json:"output_dir,omitempty"`
	Error       string  `json:"error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// outputCID is the CID a worker publishes for dir: the same import
// (storage.Store.Add with the default settings), into a throwaway offline
// store.
func outputCID(ctx context.Context, dir string) (string, error) {
	tmp, err := os.MkdirTemp("", "vft-exec-cid-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	s, err := storage.New(storage.DefaultConfig(), tmp, nil, nil, nil, storage.Options{})
	if err != nil {
		return "", err
	}
	id, err := s.Add(ctx, dir, storage.AddOptions{NoPin: true})
	return id.String(), errors.Join(err, s.Close())
}

// wasmRuntimeCheck is `vft doctor`'s line saying which runtime runs WASM
// tasks. A build without cgo has only wazero, whose timeout checks make
// tight loops several times slower (docs/BENCHMARKS.md): a warning, not a
// failure, since its results are the same.
func wasmRuntimeCheck(configured string) hwdetect.Check {
	const name = "wasm runtime"
	rt := wasm.DefaultRuntime()
	if configured != "" && !slices.Contains(wasm.Runtimes(), configured) {
		return hwdetect.Check{Name: name, Severity: hwdetect.SeverityFail,
			Detail: fmt.Sprintf("executor.wasm.runtime is %q, which this build does not have (it has %s)", configured, strings.Join(wasm.Runtimes(), ", ")),
			Fix:    "vft config set executor.wasm.runtime \"\" (the build's default), or use a vft built with cgo"}
	}
	if configured == wasm.RuntimeWazero {
		return hwdetect.Check{Name: name, OK: true, Severity: hwdetect.SeverityOK,
			Detail: "wazero (executor.wasm.runtime); wasmtime is built in and several times faster on tight loops"}
	}
	if rt == wasm.RuntimeWasmtime {
		return hwdetect.Check{Name: name, OK: true, Severity: hwdetect.SeverityOK,
			Detail: "wasmtime (Cranelift, epoch interruption, NaN canonicalisation unless a job sets floats = \"native\"); wazero also built in (vft exec --runtime wazero)"}
	}
	return hwdetect.Check{Name: name, OK: true, Severity: hwdetect.SeverityWarn,
		Detail: "wazero: this vft was built without cgo, so WASM tasks run several times slower than with Wasmtime",
		Fix:    "build with cgo (CGO_ENABLED=1, the default where gcc is installed) to run them with Wasmtime"}
}
