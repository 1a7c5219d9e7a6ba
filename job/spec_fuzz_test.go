package job

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fuzzCID is what the fuzzer's content store answers for every file.
const fuzzCID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"

// A job spec file (`vft job submit job.toml`), whatever it holds: loading
// and resolving it never panics; a spec that resolves is valid, survives
// the JSON trip to the daemon unchanged, and its numbers mean what the
// file said (no wrapped or negative-turned-huge values).
func FuzzSpecFile(f *testing.F) {
	examples, _ := filepath.Glob("../examples/*/job.toml")
	if len(examples) == 0 {
		f.Fatal("no examples/*/job.toml to seed from")
	}
	for _, path := range examples {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		// The same with paths that exist in the fuzzer's directory, so the
		// seed resolves all the way.
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "module") {
				lines[i] = `module = "module.wasm"`
			}
			if strings.HasPrefix(l, "inputs") {
				lines[i] = `inputs = ["testdata/", "in.txt:data/in.txt"]`
			}
		}
		f.Add([]byte(strings.Join(lines, "\n")))
	}
	f.Add([]byte("module = \"module.wasm\"\nverify = \"tolerance\"\nredundancy = 3\nrel_tol = 0.001\n"))
	f.Add([]byte("module = \"module.wasm\"\nverify = \"spot\"\nspot_chance = 0.1\n"))
	f.Add([]byte("module = \"module.wasm\"\nverify = \"custom\"\nverifier = \"module.wasm\"\nredundancy = 3\n"))
	f.Add([]byte("executor = \"native\"\ncommand = [\"/bin/sh\", \"-c\", \"echo\"]\nmemory = \"1GiB\"\ntimeout = \"1h\"\ndeadline = \"2h\"\n"))
	f.Add([]byte("module = \"module.wasm\"\nescrow = true\nmint = \"So11111111111111111111111111111111111111112\"\nreward = 1\n"))

	dir := f.TempDir()
	for _, p := range []string{"module.wasm", "in.txt", "testdata/a.txt", "testdata/bell/b.txt"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o700); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	add := func(string) (string, error) { return fuzzCID, nil }
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "job.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fs, err := LoadFile(path)
		if err != nil {
			return
		}
		spec, err := fs.Resolve(dir, add, now)
		if err != nil {
			return
		}
		if err := spec.Validate(now); err != nil {
			t.Fatalf("Resolve returned an invalid spec: %v\n%s", err, data)
		}
		enc, err := json.Marshal(spec)
		if err != nil {
			t.Fatalf("a resolved spec does not encode: %v", err)
		}
		var back Spec
		if err := json.Unmarshal(enc, &back); err != nil || !reflect.DeepEqual(back, spec) {
			t.Fatalf("the spec changed on its way to the daemon (%v):\n%+v\n%+v", err, spec, back)
		}
		checkFraction(t, "rel_tol", fs.RelTol, spec.Verify.RelTolPPB, 1e9, data)
		checkFraction(t, "abs_tol", fs.AbsTol, spec.Verify.AbsTolPPB, 1e9, data)
		if fs.Verify == VerifySpot {
			checkFraction(t, "spot_chance", fs.SpotChance, uint64(spec.Verify.SpotPermille), 1e3, data)
		}
	})
}

// checkFraction fails when a resolved integer is not the file's float times
// scale: a negative, NaN or huge float converted to an unsigned integer
// wraps (a tolerance of -1 would accept any result).
func checkFraction(t *testing.T, name string, v float64, got uint64, scale float64, data []byte) {
	t.Helper()
	want := v * scale
	if math.IsNaN(v) || v < 0 || want >= math.MaxUint64 || math.Abs(float64(got)-want) > 1 {
		t.Fatalf("%s = %v resolved to %d: the file's value should have been refused\n%s", name, v, got, data)
	}
}
