package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/executor/wasm/wasmtest"
)

// (func (export "_start") unreachable): a verifier that traps.
var trapWasm = []byte("\x00asm\x01\x00\x00\x00" +
	"\x01\x04\x01\x60\x00\x00" + // type: func() -> ()
	"\x03\x02\x01\x00" + // function 0 has type 0
	"\x07\x0a\x01\x06_start\x00\x00" + // export "_start" func 0
	"\x0a\x05\x01\x03\x00\x00\x0b") // body: unreachable, end

// TestCustomMatcher runs the closeenough verifier in the real wasm sandbox.
func TestCustomMatcher(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and compiles a Go wasm module")
	}
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("testdata/closeenough")
	if err != nil {
		t.Fatal(err)
	}
	limits := executor.Limits{MemoryBytes: 256 << 20, Timeout: 30 * time.Second, MaxOutputBytes: 1 << 20, MaxStdoutBytes: 16 << 10}
	exec, err := wasm.New(wasm.Config{Limits: limits}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Close() })

	files := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f := dirFetcher{
		"verifier": module,
		"trap":     write("trap.wasm", string(trapWasm)),
		"one":      write("one", "1 2 3.5\n"),
		"close":    write("close", "1.0000001 2 3.5000002\n"),
		"far":      write("far", "1 2 3.6\n"),
		"short":    write("short", "1 2\n"),
		"words":    write("words", "one two\n"),
		"dirA":     writeTree(t, map[string][]byte{"loss.txt": []byte("0.25"), "acc.txt": []byte("0.9")}),
		"dirB":     writeTree(t, map[string][]byte{"loss.txt": []byte("0.2500000001"), "acc.txt": []byte("0.9")}),
	}
	tests := []struct {
		name     string
		verifier string
		a, b     string
		want     bool
		wantErr  []string
	}{
		{"within 1e-6", "verifier", "one", "close", true, nil},
		{"outside 1e-6", "verifier", "one", "far", false, nil},
		{"different counts", "verifier", "one", "short", false, nil},
		{"directories", "verifier", "dirA", "dirB", true, nil},
		{"directory against file", "verifier", "dirA", "one", false, nil},
		{"verifier cannot compare", "verifier", "one", "words", false, []string{"verifier verifier", "exit code 2", `"one" is not a number`}},
		{"verifier traps", "trap", "one", "close", false, []string{"verifier trap", "trapped"}},
		{"verifier missing", "nothing", "one", "close", false, []string{"fetch nothing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scratch := t.TempDir()
			m := NewCustomMatcher(f, exec, tt.verifier, scratch, 0, executor.Limits{})
			got, err := m.Match(context.Background(), tt.a, tt.b)
			if tt.wantErr == nil && (err != nil || got != tt.want) {
				t.Fatalf("Match = %v, %v; want %v", got, err, tt.want)
			}
			for _, s := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Fatalf("Match = %v, %v; want an error containing %q", got, err, s)
				}
			}
			if left, _ := os.ReadDir(scratch); len(left) != 0 {
				t.Fatalf("scratch dir not cleaned up: %v", left)
			}
		})
	}
}
