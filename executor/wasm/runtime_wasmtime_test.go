//go:build cgo

package wasm

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

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

// nanWAT divides zeros it reads from memory (so that the compiler cannot
// fold the division), as f32 and as f64, and writes the two NaNs' bits to
// /output/nan.bin: 4 bytes, then 8, little-endian. With no inputs, /input
// is descriptor 3 and /output 4 on both runtimes.
const nanWAT = `(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "nan.bin")
  (func (export "_start")
    (f32.store (i32.const 16) (f32.div (f32.load (i32.const 0)) (f32.load (i32.const 0))))
    (f64.store (i32.const 20) (f64.div (f64.load (i32.const 0)) (f64.load (i32.const 0))))
    (if (call $path_open (i32.const 4) (i32.const 0) (i32.const 64) (i32.const 7)
          (i32.const 9) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 40))
      (then unreachable))
    (i32.store (i32.const 32) (i32.const 16))
    (i32.store (i32.const 36) (i32.const 12))
    (if (call $fd_write (i32.load (i32.const 40)) (i32.const 32) (i32.const 1) (i32.const 44))
      (then unreachable))))`

// TestFloatModes: with portable floats (the default) Wasmtime writes the
// canonical NaNs, the same bits on every CPU; with native floats the module
// runs and writes whatever NaN the CPU makes (x86 sets the sign bit), and so
// does wazero in either mode, which cannot canonicalise. A bad float mode
// in a task is refused by name.
func TestFloatModes(t *testing.T) {
	bin, err := wasmtime.Wat2Wasm(nanWAT)
	if err != nil {
		t.Fatal(err)
	}
	const canonical = "0000c07f" + "000000000000f87f" // 0x7fc00000, 0x7ff8000000000000
	for _, rt := range Runtimes() {
		e, err := New(Config{Runtime: rt, Isolate: testIsolate, CacheDir: filepath.Join(cacheDir, "floats-"+rt), Limits: testLimits}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		for _, floats := range []string{"", FloatsPortable, FloatsNative} {
			out := t.TempDir()
			if _, err := e.Run(context.Background(), executor.Task{Module: bin, OutputDir: out, Floats: floats}); err != nil {
				t.Fatalf("%s, floats %q: %v", rt, floats, err)
			}
			got, err := os.ReadFile(filepath.Join(out, "nan.bin"))
			if err != nil || len(got) != 12 {
				t.Fatalf("%s, floats %q: nan.bin = %x, %v", rt, floats, got, err)
			}
			f32 := math.Float32frombits(binary.LittleEndian.Uint32(got))
			f64 := math.Float64frombits(binary.LittleEndian.Uint64(got[4:]))
			if !math.IsNaN(float64(f32)) || !math.IsNaN(f64) {
				t.Errorf("%s, floats %q: 0/0 gave %v and %v, not NaNs", rt, floats, f32, f64)
			}
			if rt == RuntimeWasmtime && !nativeFloats(floats) && hex.EncodeToString(got) != canonical {
				t.Errorf("%s, floats %q: NaN bits %x, want the canonical %s", rt, floats, got, canonical)
			}
			t.Logf("%s, floats %q: NaN bits %x", rt, floats, got)
		}
		_, err = e.Run(context.Background(), executor.Task{Module: bin, OutputDir: t.TempDir(), Floats: "fast"})
		if !errors.Is(err, executor.ErrBadTask) || !strings.Contains(err.Error(), `floats "fast"`) {
			t.Errorf("%s, floats \"fast\": %v, want ErrBadTask naming it", rt, err)
		}
	}
}

// TestIsolateNeedsServeChild: a program that never called ServeChild
// cannot run isolated tasks (its child would be the whole program again: a
// test binary would run its tests in every task), and New says what to do.
func TestIsolateNeedsServeChild(t *testing.T) {
	servesChildren.Store(false)
	defer servesChildren.Store(true) // TestMain called it
	e, err := New(Config{Runtime: RuntimeWasmtime, Isolate: true, Limits: testLimits}, nil)
	if err == nil {
		e.Close()
		t.Fatal("New with Isolate in a program without ServeChild succeeded")
	}
	if !strings.Contains(err.Error(), "wasm.ServeChild") {
		t.Fatalf("New = %v, want it to name wasm.ServeChild", err)
	}
	if e, err := New(Config{Runtime: RuntimeWasmtime, Limits: testLimits}, nil); err != nil {
		t.Fatalf("without Isolate: %v", err)
	} else {
		e.Close()
	}
}

// TestEpochTicksOnlyWhileRunning: the engines' epoch advances only while a
// task runs, so an idle miner does not wake 200 times a second; a task that
// never yields is still stopped at its deadline, the first one and one
// started after the ticker had stopped again.
func TestEpochTicksOnlyWhileRunning(t *testing.T) {
	if testIsolate {
		t.Skip("isolated tasks are stopped by killing their process, not by the epoch")
	}
	e, err := New(Config{Runtime: RuntimeWasmtime, Limits: testLimits}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	epochs := e.wt.epochs
	if epochs.active() {
		t.Fatal("the epoch ticks before any task runs")
	}
	for i := range 2 {
		var sawTicking atomic.Bool
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
					if epochs.active() {
						sawTicking.Store(true)
					}
				}
			}
		}()
		_, err := e.Run(context.Background(), executor.Task{Module: loopWasm, OutputDir: t.TempDir(),
			Limits: executor.Limits{Timeout: 300 * time.Millisecond}})
		close(done)
		if !errors.Is(err, executor.ErrTimeout) {
			t.Fatalf("task %d: Run = %v, want ErrTimeout", i, err)
		}
		if !sawTicking.Load() {
			t.Errorf("task %d: the epoch did not tick while the task ran", i)
		}
		if epochs.active() {
			t.Errorf("task %d: the epoch still ticks after the task ended", i)
		}
	}
}

// TestHeldModuleSkipsItsFile: a task whose module an earlier task gave
// under the same content address (Task.ModuleID), still compiled in
// memory, runs without its file being read: here the file is gone. A
// task without that ID, or of a module evicted since, reads its file as
// before, and the IDs remembered are only those of modules in memory.
func TestHeldModuleSkipsItsFile(t *testing.T) {
	e, err := New(Config{Runtime: RuntimeWasmtime, Isolate: testIsolate, Limits: testLimits, MaxCompiled: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	dir := t.TempDir()
	write := func(name string, bin []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bin, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run := func(path, id string) error {
		_, err := e.Run(context.Background(), executor.Task{ModulePath: path, ModuleID: id, OutputDir: t.TempDir()})
		return err
	}
	nop := write("nop.wasm", nopWasm)
	if err := run(nop, "cid-nop"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(nop); err != nil {
		t.Fatal(err)
	}
	if err := run(nop, "cid-nop"); err != nil {
		t.Fatalf("the held module's task, its file gone: %v; want it run from memory", err)
	}
	for _, id := range []string{"", "cid-other"} {
		if err := run(nop, id); !errors.Is(err, executor.ErrBadTask) {
			t.Errorf("task with ModuleID %q and no file: %v; want ErrBadTask (the file read)", id, err)
		}
	}
	// Pinned for a task to come (HoldModule), it is not evicted by
	// another module (MaxCompiled 1), and says its binary's size.
	size, release, ok := e.HoldModule("cid-nop", "")
	if !ok || size != int64(len(nopWasm)) {
		t.Fatalf("HoldModule = %d, %v; want %d bytes held", size, ok, len(nopWasm))
	}
	nop2 := write("nop2.wasm", wasmModule(nil, 0x01, 0x0b))
	if err := run(nop2, "cid-nop2"); err != nil {
		t.Fatal(err)
	}
	if err := run("", "cid-nop"); err != nil {
		t.Fatalf("the pinned module's task, with no file: %v; want it run from memory", err)
	}
	release()
	release() // a second call does nothing
	// Unpinned, it goes at the next eviction, and its ID with it.
	if err := run(nop2, "cid-nop2"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := e.HoldModule("cid-nop", ""); ok {
		t.Error("HoldModule holds an evicted module")
	}
	if err := run(nop, "cid-nop"); !errors.Is(err, executor.ErrBadTask) {
		t.Errorf("evicted module's task, its file gone: %v; want ErrBadTask (the file read)", err)
	}
	e.wt.mu.Lock()
	remembered := len(e.wt.byContent)
	e.wt.mu.Unlock()
	if remembered != 1 {
		t.Errorf("%d content addresses remembered with one module in memory, want 1", remembered)
	}
}
