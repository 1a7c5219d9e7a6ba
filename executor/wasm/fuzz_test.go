package wasm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vft-network/vft/executor"
)

// fuzzExec is an executor without a disk cache, shared by the fuzzers.
var fuzzExec = sync.OnceValues(func() (*Executor, error) {
	return New(Config{Runtime: testRuntime, Isolate: testIsolate, Limits: executor.Limits{MemoryBytes: 64 << 20, Timeout: 2 * time.Second,
		MaxOutputBytes: 1 << 20, MaxStdoutBytes: 4 << 10}}, nil)
})

func handModules() [][]byte {
	return [][]byte{nopWasm, unreachableWasm, loopWasm, hugeMemoryWasm, foreignImportWasm}
}

// FuzzMemoryMinimums feeds the module readers (memoryMinimums,
// sanitizeModule) arbitrary bytes: they must never panic or loop, whatever
// the section sizes and LEB128 numbers say.
func FuzzMemoryMinimums(f *testing.F) {
	for _, m := range handModules() {
		f.Add(m)
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x05\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, bin []byte) {
		mins, err := memoryMinimums(bin)
		if err != nil && !errors.Is(err, errBadBinary) {
			t.Fatalf("memoryMinimums: %v", err)
		}
		if len(mins) > len(bin) {
			t.Fatalf("%d memories in %d bytes", len(mins), len(bin))
		}
		// sanitizeModule only drops custom sections and gives tables a
		// maximum: what it returns passes it unchanged.
		clean, err := sanitizeModule(bin)
		if err == nil {
			again, err := sanitizeModule(clean)
			if err != nil || string(again) != string(clean) {
				t.Fatalf("sanitizeModule is not idempotent: %q -> %q -> %q, %v", bin, clean, again, err)
			}
		}
	})
}

// FuzzCompile hands the compiler and the pre-run checks a stranger's module
// bytes, as a job does: a bad module is an error, never a panic.
func FuzzCompile(f *testing.F) {
	for _, m := range handModules() {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, bin []byte) {
		e, err := fuzzExec()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		mod, release, err := e.compile(ctx, bin)
		if err != nil {
			if !errors.Is(err, executor.ErrNotWASM) && !errors.Is(err, executor.ErrBadTask) {
				t.Fatalf("compile: %v is neither ErrNotWASM nor ErrBadTask", err)
			}
			return
		}
		defer release()
		_ = checkModule(mod, bin, 64<<20)
	})
}

// FuzzRunArgsEnv runs a module with a job's arguments and environment as a
// stranger writes them: any of them is either passed on or refused with
// ErrBadTask.
func FuzzRunArgsEnv(f *testing.F) {
	f.Add("spam", "16", "GOGC", "off")
	f.Add("a\x00b", "", "A=B", "c")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, a1, a2, k, v string) {
		e, err := fuzzExec()
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Run(context.Background(), executor.Task{Module: nopWasm, Args: []string{a1, a2},
			Env: map[string]string{k: v}, OutputDir: t.TempDir()})
		if err != nil && !errors.Is(err, executor.ErrBadTask) {
			t.Fatalf("Run(%q, %q, %q=%q) = %v", a1, a2, k, v, err)
		}
	})
}
