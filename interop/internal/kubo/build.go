// Package kubo builds kubo's `ipfs` command from this module's go.mod and
// runs kubo nodes that talk only to loopback addresses, for the interop
// tests and benchmarks.
package kubo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Version is the kubo release that go.mod requires; Build checks that the
// binary it returns reports it.
const Version = "0.43.1"

// BinEnv names an environment variable that points at a prebuilt `ipfs`
// binary to use instead of building one.
const BinEnv = "VFT_IPFS_BIN"

// Build returns the path of an `ipfs` binary built from
// github.com/ipfs/kubo/cmd/ipfs with the versions the interop module's
// go.mod selects. The binary is cached under
// <parent of GOCACHE>/vft-interop-ipfs/<key>/ipfs, where key hashes go.mod,
// go.sum and the Go version, so it is rebuilt only when one of them
// changes. moduleDir is a directory inside the interop module.
func Build(ctx context.Context, moduleDir string) (string, error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		if err := checkVersion(ctx, bin); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinEnv, bin, err)
		}
		return bin, nil
	}
	gomod, err := goEnv(ctx, moduleDir, "GOMOD")
	if err != nil {
		return "", err
	}
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("build ipfs: %s is not inside a Go module", moduleDir)
	}
	gocache, err := goEnv(ctx, moduleDir, "GOCACHE")
	if err != nil {
		return "", err
	}
	goversion, err := goEnv(ctx, moduleDir, "GOVERSION")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(gomod), name))
		if err != nil {
			return "", fmt.Errorf("build ipfs: %w", err)
		}
		h.Write(b)
	}
	h.Write([]byte(goversion))
	key := hex.EncodeToString(h.Sum(nil))[:16]
	dir := filepath.Join(filepath.Dir(gocache), "vft-interop-ipfs", key)
	bin := filepath.Join(dir, "ipfs")
	if _, err := os.Stat(bin); err == nil {
		if err := checkVersion(ctx, bin); err == nil {
			return bin, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build ipfs: %w", err)
	}
	// Build next to the final name and rename, so a concurrent or
	// interrupted build never leaves a half-written binary behind.
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "github.com/ipfs/kubo/cmd/ipfs")
	cmd.Dir = filepath.Dir(gomod)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build github.com/ipfs/kubo/cmd/ipfs (in %s) failed: %w\n%s", cmd.Dir, err, out.String())
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("build ipfs: %w", err)
	}
	if err := checkVersion(ctx, bin); err != nil {
		return "", err
	}
	return bin, nil
}

func checkVersion(ctx context.Context, bin string) error {
	out, err := exec.CommandContext(ctx, bin, "version", "--number").Output()
	if err != nil {
		return fmt.Errorf("%s version: %w", bin, err)
	}
	got := strings.TrimSpace(string(out))
	if got != Version {
		return fmt.Errorf("%s is kubo %s, want %s", bin, got, Version)
	}
	return nil
}

func goEnv(ctx context.Context, dir, name string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", name)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go env %s: %w: %s", name, err, ee.Stderr)
		}
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
