package examples_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vft-network/vft/examples/internal/matmul"
	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/executor/wasm/wasmtest"
	"github.com/vft-network/vft/job"
)

var update = flag.Bool("update", false, "rewrite examples/*/expected from this run")

// The seed every example job runs with (as in the job.toml files).
const jobSeed = 42

// Go wasip1 programs need their runtime's heap on top of their data: 256 MiB
// is ample for these inputs.
var limits = executor.Limits{MemoryBytes: 256 << 20, Timeout: time.Minute, MaxOutputBytes: 64 << 20, MaxStdoutBytes: 64 << 10}

var (
	workDir string
	builder *wasmtest.Builder
	shared  struct {
		once sync.Once
		exec *wasm.Executor
		err  error
	}
)

func TestMain(m *testing.M) {
	wasm.ServeChild() // isolated tasks re-run this binary
	flag.Parse()
	dir, err := os.MkdirTemp("", "examples-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	builder = wasmtest.NewBuilder(dir)
	code := m.Run()
	if shared.exec != nil {
		shared.exec.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func executorFor(t testing.TB) *wasm.Executor {
	t.Helper()
	shared.once.Do(func() {
		shared.exec, shared.err = wasm.New(wasm.Config{CacheDir: filepath.Join(workDir, "cache"), Limits: limits}, nil)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.exec
}

func module(t testing.TB, name string) string {
	t.Helper()
	p, err := builder.Build(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type exampleCase struct {
	example string   // directory under examples/
	name    string   // expected/<name>
	input   string   // directory mounted at /input, relative to the example; "" for none
	args    []string // as in job.toml
}

var cases = []exampleCase{
	{example: "matmul", name: "files", input: "testdata"},
	{example: "matmul", name: "generated", args: []string{"-n", "48", "-seed", "1"}},
	{example: "nninfer", name: "blobs", input: "testdata"},
	{example: "wordcount", name: "texts", input: "testdata"},
	{example: "qsim", name: "bell", input: "testdata/bell"},
	{example: "qsim", name: "ghz", input: "testdata/ghz"},
}

func (c exampleCase) task(t testing.TB) executor.Task {
	task := executor.Task{JobID: c.example + "/" + c.name, Seed: jobSeed, ModulePath: module(t, c.example),
		Args: c.args, OutputDir: filepath.Join(t.TempDir(), "out")}
	if c.input != "" {
		task.Inputs = []executor.Mount{{Host: filepath.Join(c.example, c.input)}}
	}
	return task
}

// TestExamples runs every example twice through the wasm executor and
// compares /output with expected/<case>/ byte for byte.
func TestExamples(t *testing.T) {
	e := executorFor(t)
	for _, c := range cases {
		t.Run(c.example+"/"+c.name, func(t *testing.T) {
			var first map[string][]byte
			for run := range 2 {
				task := c.task(t)
				res, err := e.Run(context.Background(), task)
				if err != nil {
					t.Fatalf("run %d: %v\nstderr: %s", run, err, res.Stderr)
				}
				got := readTree(t, task.OutputDir)
				if run == 0 {
					first = got
					continue
				}
				if !sameTree(first, got) {
					t.Fatalf("two runs of the same task wrote different outputs")
				}
			}
			expected := filepath.Join(c.example, "expected", c.name)
			if *update {
				writeTree(t, expected, first)
				return
			}
			want := readTree(t, expected)
			if !sameTree(want, first) {
				for name := range first {
					if !bytes.Equal(first[name], want[name]) {
						t.Errorf("%s differs from %s/%s:\n%s", name, expected, name, first[name])
					}
				}
				t.Fatalf("output differs from %s (files: got %d, want %d); run with -update if the change is intended", expected, len(first), len(want))
			}
		})
	}
}

// TestMatmulNativeMatchesWASM checks that the native build of the same
// kernel writes the same bytes: floating point is deterministic across
// architectures here because Mul forbids fused multiply-add.
func TestMatmulNativeMatchesWASM(t *testing.T) {
	out := t.TempDir()
	if err := matmul.Job(filepath.Join("matmul", "testdata"), out, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got, want := readTree(t, out), readTree(t, filepath.Join("matmul", "expected", "files")); !sameTree(got, want) {
		t.Fatal("native matmul output differs from the WASM expected output")
	}
}

func readTree(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func writeTree(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sameTree(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			return false
		}
	}
	return true
}

// jobSpec is the part of a sample job.toml these tests rely on; the real
// format belongs to the job package.
// TestJobSpecs keeps each sample job.toml, read as the job package reads
// it, in step with the case the tests run.
func TestJobSpecs(t *testing.T) {
	for _, example := range []string{"matmul", "nninfer", "wordcount", "qsim"} {
		t.Run(example, func(t *testing.T) {
			spec, err := job.LoadFile(filepath.Join(example, "job.toml"))
			if err != nil {
				t.Fatal(err)
			}
			if spec.Executor != "wasm" || spec.Module != "../../bin/examples/"+example+".wasm" || spec.Seed != jobSeed ||
				spec.Redundancy != 3 || spec.Verify != "exact" || spec.Timeout.Std() <= 0 {
				t.Fatalf("unexpected spec %+v", spec)
			}
			var c *exampleCase
			for i := range cases {
				if cases[i].example == example {
					c = &cases[i]
					break
				}
			}
			if len(spec.Inputs) != 1 || filepath.Clean(spec.Inputs[0]) != c.input || len(spec.Args) != len(c.args) {
				t.Fatalf("job.toml inputs %v args %v, but the test runs %q %v", spec.Inputs, spec.Args, c.input, c.args)
			}
		})
	}
}
