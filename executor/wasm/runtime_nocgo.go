//go:build !cgo

package wasm

import (
	"context"
	"errors"

	"github.com/vft-network/vft/executor"
)

// wasmtimeAvailable: Wasmtime is a C library, linked only with cgo.
const wasmtimeAvailable = false

// wasmtimeRuntime is never built without cgo; the methods keep the callers
// compiling and are unreachable (Executor.wt stays nil).
type wasmtimeRuntime struct{}

var errNoWasmtime = errors.New("wasmtime runtime: this vft was built without cgo")

func newWasmtimeRuntime(Config, *Executor) (*wasmtimeRuntime, error) { return nil, errNoWasmtime }
func (*wasmtimeRuntime) close()                                      {}
func (*wasmtimeRuntime) validate(context.Context, []byte) error      { return errNoWasmtime }
func (*wasmtimeRuntime) precompile(context.Context, []byte) error    { return errNoWasmtime }
func (*wasmtimeRuntime) run(context.Context, executor.Task) (executor.Result, error) {
	return executor.Result{}, errNoWasmtime
}
func (*wasmtimeRuntime) pin(string, bool) (int64, func(), bool) { return 0, nil, false }

// ServeChild returns at once: without cgo there is no Wasmtime and so no
// isolated child process (Config.Isolate) to serve.
func ServeChild() {}
