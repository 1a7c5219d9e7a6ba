package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vft-network/vft/executor/wasm"
)

// TestExec runs the C example through `vft exec` on each runtime: the same
// output CID from both, the output directory written with -o, and one clear
// error for each bad flag.
func TestExec(t *testing.T) {
	module := filepath.Join("..", "..", "examples", "cmatmul", "cmatmul.wasm")
	env := testEnv()
	var cids []string
	runtimes := wasm.Runtimes() // wazero alone in a build without cgo
	if slices.Contains(runtimes, wasm.RuntimeWasmtime) {
		runtimes = append(runtimes, "wasmtime --isolate", "wasmtime --floats native", "wasmtime --isolate --floats native")
	}
	for _, rt := range runtimes {
		out := filepath.Join(t.TempDir(), "out")
		args := append([]string{"exec", module, "--runtime"}, strings.Fields(rt)...)
		stdout, stderr, code := vft(t, env, append(args, "--arg", "-n", "--arg", "32", "-o", out)...)
		if code != 0 {
			t.Fatalf("vft exec --runtime %s: exit %d\n%s%s", rt, code, stdout, stderr)
		}
		if !strings.Contains(stderr, "runtime "+strings.Fields(rt)[0]+": ran ") {
			t.Errorf("vft exec --runtime %s does not say its runtime and time: %q", rt, stderr)
		}
		if !strings.Contains(stdout, "n=32 passes=4") {
			t.Errorf("vft exec --runtime %s: the module's stdout is missing: %q", rt, stdout)
		}
		last := lastLine(stdout)
		if !strings.HasPrefix(last, "output bafy") {
			t.Fatalf("vft exec --runtime %s: last line %q, want the output CID", rt, last)
		}
		cids = append(cids, strings.TrimPrefix(last, "output "))
		if _, err := os.Stat(filepath.Join(out, "c.bin")); err != nil {
			t.Errorf("-o %s: %v", out, err)
		}
	}
	for i := range cids {
		if cids[i] != cids[0] {
			t.Errorf("%s wrote %s, %s %s", runtimes[0], cids[0], runtimes[i], cids[i])
		}
	}

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"exec"}, 2, "name the module"},
		{[]string{"exec", module, "--runtime", "v8"}, 2, `wasm runtime "v8": unknown; use one of `},
		{[]string{"exec", filepath.Join("..", "..", "README.md")}, 1, "not a WebAssembly module"},
		{[]string{"exec", module, "--arg", "-n", "--arg", "-1"}, 1, "exit code 2: cmatmul: -n must be in 1..8192"},
		{[]string{"exec", module, "--floats", "fast"}, 2, `--floats: floats "fast": use portable`},
	} {
		_, stderr, code := vft(t, env, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("vft %v: exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}
