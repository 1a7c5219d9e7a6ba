package examples_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/storage"
)

// TestExamplesSameOnBothRuntimes runs every example on each WASM runtime
// this build has (Wasmtime, in process and isolated, and wazero with cgo),
// and on Wasmtime also with native floats (a job's floats = "native": no
// NaN canonicalisation), and requires the same output bytes and the same
// output CID from each: a verifier on one runtime must agree with a miner
// on the other, and no example's output holds a NaN, so the float mode
// cannot change it. The C example runs too (its .wasm is committed:
// examples/cmatmul/build.sh).
func TestExamplesSameOnBothRuntimes(t *testing.T) {
	runtimes := wasm.Runtimes()
	if len(runtimes) < 2 {
		t.Skipf("this build has only %v (no cgo): nothing to compare", runtimes)
	}
	// "wasmtime-isolated": tasks in child processes, compiled without
	// epoch checks: other code, same bytes.
	execs := make(map[string]*wasm.Executor)
	for _, rt := range runtimes {
		e, err := wasm.New(wasm.Config{Runtime: rt, CacheDir: filepath.Join(workDir, "cache-"+rt), Limits: limits}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		execs[rt] = e
	}
	isolated, err := wasm.New(wasm.Config{Runtime: wasm.RuntimeWasmtime, Isolate: true,
		CacheDir: filepath.Join(workDir, "cache-isolated"), Limits: limits}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer isolated.Close()
	execs["wasmtime-isolated"] = isolated
	runtimes = append(runtimes, "wasmtime-isolated")
	// The same executors, tasks with floats = "native": another engine and
	// other code in each of Wasmtime's; wazero accepts it and runs as ever.
	floats := map[string]string{}
	for _, rt := range []string{wasm.RuntimeWasmtime, "wasmtime-isolated", wasm.RuntimeWazero} {
		name := rt + "/native-floats"
		execs[name], floats[name] = execs[rt], wasm.FloatsNative
		runtimes = append(runtimes, name)
	}
	store, err := storage.New(storage.DefaultConfig(), t.TempDir(), nil, nil, nil, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	type named struct {
		name string
		task func(t testing.TB) executor.Task
	}
	var all []named
	for _, c := range cases {
		all = append(all, named{c.example + "/" + c.name, c.task})
	}
	for _, c := range cCases {
		all = append(all, named{"cmatmul/" + c.name, c.task})
	}
	for _, c := range all {
		t.Run(c.name, func(t *testing.T) {
			var firstRT, firstCID string
			var first map[string][]byte
			for _, rt := range runtimes {
				task := c.task(t)
				task.Floats = floats[rt]
				res, err := execs[rt].Run(context.Background(), task)
				if err != nil {
					t.Fatalf("%s: %v\nstderr: %s", rt, err, res.Stderr)
				}
				id, err := store.Add(context.Background(), task.OutputDir, storage.AddOptions{NoPin: true})
				if err != nil {
					t.Fatal(err)
				}
				tree := readTree(t, task.OutputDir)
				if first == nil {
					firstRT, firstCID, first = rt, id.String(), tree
					continue
				}
				if !sameTree(first, tree) || id.String() != firstCID {
					t.Fatalf("%s wrote %s, %s wrote %s", firstRT, firstCID, rt, id)
				}
				t.Logf("%s and %s: %s", firstRT, rt, id)
			}
		})
	}
}

// cCase is a run of the C example, examples/cmatmul/cmatmul.wasm.
type cCase struct {
	name string
	wasm string // file under examples/cmatmul
	args []string
}

var cCases = []cCase{
	{name: "simd", wasm: "cmatmul.wasm", args: []string{"-n", "64", "-seed", "7"}},
	{name: "scalar", wasm: "cmatmul-scalar.wasm", args: []string{"-n", "64", "-seed", "7"}},
}

func (c cCase) task(t testing.TB) executor.Task {
	path := filepath.Join("cmatmul", c.wasm)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%v (build it with examples/cmatmul/build.sh)", err)
	}
	return executor.Task{JobID: "cmatmul/" + c.name, Seed: jobSeed, ModulePath: path, Args: c.args,
		OutputDir: filepath.Join(t.TempDir(), "out")}
}
