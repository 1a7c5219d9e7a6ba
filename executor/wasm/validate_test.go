package wasm

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/vft-network/vft/executor"
)

// Validate is what a submitter runs before it offers a job: bytes that are
// not a module a miner could run are refused with the reason, a module a
// miner could run passes.
func TestValidate(t *testing.T) {
	e := sharedExecutor(t)
	wordcount, err := os.ReadFile(buildModule(t, "../../examples/wordcount"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		module  []byte
		wantErr error
		wantMsg string
	}{
		{"text file", []byte("hello, this is a text file\n"), executor.ErrNotWASM,
			`not a WebAssembly module (starts with "hello, this is a"); build with GOOS=wasip1 GOARCH=wasm`},
		{"ELF binary", []byte("\x7fELF\x02\x01\x01\x00"), executor.ErrNotWASM, `starts with "\x7fELF`},
		{"empty file", nil, executor.ErrNotWASM, `starts with ""`},
		{"truncated header", nopWasm[:5], executor.ErrNotWASM, "truncated: 5 bytes"},
		{"truncated module", unreachableWasm[:12], executor.ErrNotWASM, "larger than the module"},
		{"version 2", append([]byte("\x00asm\x02\x00\x00\x00"), nopWasm[8:]...), executor.ErrNotWASM, "version 02000000"},
		// (func (export "_start") (i32.const 0)): a value left on the stack
		// of a function that returns none; only the compiler sees it.
		{"invalid function body", wasmModule(nil, 0x41, 0x00, 0x0b), executor.ErrNotWASM, "does not compile"},
		{"foreign import", foreignImportWasm, executor.ErrBadTask, "env.f"},
		{"valid hand-written module", nopWasm, nil, ""},
		{"valid Go module", wordcount, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.Validate(context.Background(), tt.module)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Validate = %q, want it to say %q", err, tt.wantMsg)
			}
		})
	}
}

// A module over the node's executor.wasm.max_module_bytes is refused
// before it is compiled, naming the limit.
func TestValidateSizeLimit(t *testing.T) {
	e, err := New(Config{Runtime: testRuntime, Isolate: testIsolate, MaxModuleBytes: 16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	err = e.Validate(context.Background(), nopWasm)
	if !errors.Is(err, executor.ErrBadTask) || !strings.Contains(err.Error(), "max_module_bytes") {
		t.Fatalf("Validate = %v, want the size limit named", err)
	}
}
