package wasm

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vft-network/vft/executor"
)

// The WASM runtimes an Executor can run modules with (Config.Runtime).
const (
	// RuntimeWasmtime is Wasmtime (Cranelift) through wasmtime-go: the
	// default in builds with cgo. Runaway code is stopped by epoch
	// interruption, and NaNs are canonicalised unless the job asks for
	// native floats (FloatsNative), so float results reproduce bit for bit
	// across CPUs.
	RuntimeWasmtime = "wasmtime"
	// RuntimeWazero is wazero, pure Go: the runtime of builds without cgo.
	// Its timeout check is a call into Go at every loop header, which makes
	// tight loops several times slower (docs/BENCHMARKS.md).
	RuntimeWazero = "wazero"
)

// Runtimes lists the runtimes this build can run, the default first.
func Runtimes() []string {
	if wasmtimeAvailable {
		return []string{RuntimeWasmtime, RuntimeWazero}
	}
	return []string{RuntimeWazero}
}

// DefaultRuntime is the runtime New picks when Config.Runtime is empty.
func DefaultRuntime() string { return Runtimes()[0] }

// resolveRuntime checks a configured runtime name.
func resolveRuntime(name string) (string, error) {
	if name == "" {
		return DefaultRuntime(), nil
	}
	if slices.Contains(Runtimes(), name) {
		return name, nil
	}
	if name == RuntimeWasmtime {
		return "", fmt.Errorf("wasm runtime %q: this vft was built without cgo, which Wasmtime needs; use %q or a cgo build", name, RuntimeWazero)
	}
	return "", fmt.Errorf("wasm runtime %q: unknown; use one of %s", name, strings.Join(Runtimes(), ", "))
}

// Runtime returns the runtime this executor runs modules with.
func (e *Executor) Runtime() string {
	if e.wt != nil {
		return RuntimeWasmtime
	}
	return RuntimeWazero
}

// inputTree lays out /input for a runtime that mounts host directories
// (Wasmtime's preopens), the way mountInputs does for wazero: a directory
// mounted at "." is /input itself; otherwise /input is a fresh staging
// directory holding the file mounts and empty mount points for the
// directory mounts. subs are the directory mounts to mount over those
// points, in the tasks's order.
func inputTree(inputs []executor.Mount, outDir string) (root string, subs []executor.Mount, cleanup func(), err error) {
	cleanup = func() {}
	staged := false
	for _, m := range inputs {
		if m.Guest == "." {
			root = m.Host
		}
	}
	if root == "" {
		staging, err := os.MkdirTemp(filepath.Dir(outDir), ".vft-input-")
		if err != nil {
			return "", nil, nil, fmt.Errorf("%w: stage inputs: %v", executor.ErrBadMount, err)
		}
		cleanup = func() { _ = os.RemoveAll(staging) }
		root, staged = staging, true
		for _, m := range inputs {
			if err := stage(m, staging); err != nil {
				cleanup()
				return "", nil, nil, err
			}
		}
	}
	for _, m := range inputs {
		if m.Guest == "." {
			continue
		}
		st, err := os.Stat(m.Host)
		if err != nil {
			cleanup()
			return "", nil, nil, fmt.Errorf("%w: input %q: %v", executor.ErrBadMount, m.Host, err)
		}
		if st.IsDir() {
			subs = append(subs, m)
		} else if !staged {
			cleanup()
			return "", nil, nil, fmt.Errorf("%w: input file %q cannot be mounted inside the directory mounted at /input; put it in that directory", executor.ErrBadMount, m.Host)
		}
	}
	return root, subs, cleanup, nil
}
