package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vft-network/vft/executor"
)

// Runner runs a sandboxed task; the node's wasm executor implements it.
type Runner interface {
	Run(ctx context.Context, t executor.Task) (executor.Result, error)
}

// CustomMatcher asks the submitter's own verifier module whether two
// results are the same answer, for outputs no generic rule can compare
// (sampled text, images, anything with its own notion of "close").
//
// The module sees result A at /input/a and B at /input/b and exits 0 for a
// match and 1 for a mismatch. Any other exit, a trap or a timeout is an
// error: a broken verifier must not decide a job either way.
type CustomMatcher struct {
	fetch    Fetcher
	run      Runner
	verifier string
	scratch  string
	maxBytes int64
	limits   executor.Limits
}

// NewCustomMatcher returns a matcher running the module verifierCID under
// limits, with its files in scratchDir; it refuses a verifier or result
// over maxBytes (0: what fits on the scratch disk).
func NewCustomMatcher(f Fetcher, run Runner, verifierCID, scratchDir string, maxBytes int64, limits executor.Limits) *CustomMatcher {
	return &CustomMatcher{fetch: f, run: run, verifier: verifierCID, scratch: scratchDir, maxBytes: maxBytes, limits: limits}
}

// Match fetches the verifier and both results and runs the verifier.
func (m *CustomMatcher) Match(ctx context.Context, a, b string) (bool, error) {
	f, err := newFetched(m.scratch)
	if err != nil {
		return false, err
	}
	defer f.Close()
	module, err := f.get(ctx, m.fetch, m.verifier, "verifier.wasm", m.maxBytes)
	if err != nil {
		return false, fmt.Errorf("verifier: %w", err)
	}
	if info, err := os.Stat(module); err != nil || !info.Mode().IsRegular() {
		return false, fmt.Errorf("verifier %s is not a module file", m.verifier)
	}
	pa, err := f.get(ctx, m.fetch, a, "a", m.maxBytes)
	if err != nil {
		return false, err
	}
	pb, err := f.get(ctx, m.fetch, b, "b", m.maxBytes)
	if err != nil {
		return false, err
	}
	res, err := m.run.Run(ctx, executor.Task{
		JobID:      "verify " + a + " " + b,
		ModulePath: module,
		Inputs:     []executor.Mount{{Host: pa, Guest: "a"}, {Host: pb, Guest: "b"}},
		OutputDir:  filepath.Join(f.dir, "out"),
		Limits:     m.limits,
	})
	switch {
	case err == nil && res.ExitCode == 0:
		return true, nil
	case res.ExitCode == 1 && (err == nil || errors.Is(err, executor.ErrExit)):
		return false, nil
	case err == nil:
		err = fmt.Errorf("exit code %d", res.ExitCode)
	}
	return false, fmt.Errorf("verifier %s (exit code %d%s): %w", m.verifier, res.ExitCode, stderrTail(res.Stderr), err)
}

// stderrTail is the end of a verifier's stderr, where its complaint is.
func stderrTail(stderr []byte) string {
	s := strings.TrimSpace(string(stderr))
	if s == "" {
		return ""
	}
	const max = 512
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	return ", stderr: " + s
}
