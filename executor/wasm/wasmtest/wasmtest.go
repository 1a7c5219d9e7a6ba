// Package wasmtest builds Go packages into WASI modules for tests.
package wasmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Builder builds `GOOS=wasip1 GOARCH=wasm` modules into one directory and
// builds each package once, so that a test binary shares modules (and their
// compiled code) across its tests. It is safe for concurrent use.
type Builder struct {
	dir   string
	mu    sync.Mutex
	built map[string]string
}

// NewBuilder returns a Builder writing modules into dir.
func NewBuilder(dir string) *Builder {
	return &Builder{dir: dir, built: make(map[string]string)}
}

// Build compiles the package at pkgDir (a directory, relative to the working
// directory or absolute) and returns the path of the .wasm file.
func (b *Builder) Build(pkgDir string) (string, error) {
	abs, err := filepath.Abs(pkgDir)
	if err != nil {
		return "", err
	}
	// Reading the sources from this process lets `go test` see them, so its
	// result cache is invalidated when a module's source changes.
	srcs, _ := filepath.Glob(filepath.Join(abs, "*.go"))
	for _, src := range srcs {
		if _, err := os.ReadFile(src); err != nil {
			return "", err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.built[abs]; ok {
		return p, nil
	}
	out := filepath.Join(b.dir, fmt.Sprintf("%d-%s.wasm", len(b.built), filepath.Base(abs)))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("GOOS=wasip1 go build %s: %v\n%s", pkgDir, err, strings.TrimSpace(string(msg)))
	}
	b.built[abs] = out
	return out, nil
}
