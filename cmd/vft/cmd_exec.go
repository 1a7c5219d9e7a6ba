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

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/hwdetect"
	"github.com/vft-network/vft/storage"
)

// runExec runs a WASM module locally in the executor's sandbox, with the
// limits a job gets by default, and prints its time and output CID: a
// submitter can test a module before paying for it, and a benchmark can
// time the executor without a network. No daemon is needed.
func runExec(c *cli, args []string) error {
	fs, asJSON := c.flags("exec")
	var inputs, taskArgs stringList
	fs.Var(&inputs, "input", "file or directory mounted read-only under /input (repeatable; a directory alone becomes /input)")
	fs.Var(&taskArgs, "arg", "argument passed to the module (repeatable, in order)")
	out := fs.String("o", "", "output directory, the task's /output (default: a temporary directory, removed after)")
	runtimeName := fs.String("runtime", wasm.DefaultRuntime(), "WASM runtime: "+strings.Join(wasm.Runtimes(), " or "))
	seed := fs.Uint64("seed", 0, "the task's seed (its random numbers)")
	timeout := fs.Duration("timeout", wasm.DefaultLimits().Timeout, "the task's time limit, compile included")
	memory := fs.Uint64("memory-mib", wasm.DefaultLimits().MemoryBytes>>20, "the task's memory limit in MiB")
	isolate := fs.Bool("isolate", false, "run the task in a child process killed at its deadline (wasmtime only; no epoch checks in its code)")
	cacheDir := fs.String("cache", "", "compiled-module cache directory (default: none, every run compiles)")
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: vft exec MODULE.wasm [--input PATH]... [--arg A]... [-o DIR] [--runtime %s] [--isolate]\n",
			strings.Join(wasm.Runtimes(), "|"))
		fs.PrintDefaults()
	}
	// The module may come before the flags: vft exec m.wasm --arg x.
	var module string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		module, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if module == "" && fs.NArg() > 0 {
		module = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected %q after the flags; pass module arguments with --arg", errUsage, fs.Arg(0))
	}
	if module == "" {
		return fmt.Errorf("%w: name the module: vft exec MODULE.wasm", errUsage)
	}

	outDir, cleanup := *out, func() {}
	if outDir == "" {
		tmp, err := os.MkdirTemp("", "vft-exec-")
		if err != nil {
			return err
		}
		outDir, cleanup = filepath.Join(tmp, "output"), func() { _ = os.RemoveAll(tmp) }
	}
	defer cleanup()
	var mounts []executor.Mount
	for _, in := range inputs {
		m := executor.Mount{Host: in}
		if len(inputs) > 1 {
			m.Guest = filepath.Base(in)
		}
		mounts = append(mounts, m)
	}

	e, err := wasm.New(wasm.Config{Runtime: *runtimeName, CacheDir: *cacheDir, Isolate: *isolate}, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer e.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	task := executor.Task{JobID: "exec", ModulePath: module, Args: taskArgs, Inputs: mounts, OutputDir: outDir, Seed: *seed,
		Limits: executor.Limits{Timeout: *timeout, MemoryBytes: *memory << 20}}
	start := time.Now()
	res, runErr := e.Run(ctx, task)
	wall := time.Since(start)
	// With --json, stdout is the report alone; the module's stdout goes to stderr.
	if *asJSON {
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
	if *out != "" {
		report.OutputDir = outDir
	}
	if runErr != nil {
		report.Error = runErr.Error()
	}
	if *asJSON {
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
			Detail: "wasmtime (Cranelift, epoch interruption, NaN canonicalisation); wazero also built in (vft exec --runtime wazero)"}
	}
	return hwdetect.Check{Name: name, OK: true, Severity: hwdetect.SeverityWarn,
		Detail: "wazero: this vft was built without cgo, so WASM tasks run several times slower than with Wasmtime",
		Fix:    "build with cgo (CGO_ENABLED=1, the default where gcc is installed) to run them with Wasmtime"}
}
