//go:build cgo

package wasm

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vft-network/vft/executor"
)

// TestWasmtimeDiskCache: a second executor on the same CacheDir loads the
// compiled code from disk, and code that no longer loads (here truncated,
// as by a crash mid-write or a full disk) is compiled again, not an error.
// Before cache files carried a checksum, Wasmtime mapped the truncated file
// and the whole process died of SIGBUS.
func TestWasmtimeDiskCache(t *testing.T) {
	dir := t.TempDir()
	run := func() {
		t.Helper()
		e, err := New(Config{Runtime: RuntimeWasmtime, Isolate: testIsolate, CacheDir: dir, Limits: testLimits}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if _, err := e.Run(context.Background(), executor.Task{Module: nopWasm, OutputDir: t.TempDir()}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	files, err := filepath.Glob(filepath.Join(dir, wasmtimeVersion, "*.cwasm"))
	if err != nil || len(files) != 1 {
		t.Fatalf("cache holds %v (%v), want one compiled module", files, err)
	}
	first, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	run() // loads it
	if err := os.Truncate(files[0], first.Size()/2); err != nil {
		t.Fatal(err)
	}
	run() // compiles again and rewrites it
	again, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if again.Size() != first.Size() {
		t.Errorf("the truncated cache file was not rewritten: %d bytes, was %d", again.Size(), first.Size())
	}
}
