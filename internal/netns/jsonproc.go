package netns

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"testing"
)

// Benchmarks run a helper binary in each host that prints one JSON object
// per line (what it measured, or that it is ready); these start it and
// hand those objects back. Lines that are not JSON objects are skipped;
// the helper's stderr goes to the test's.

// StartJSON runs bin in h in the background; its JSON lines arrive on the
// channel. The test's cleanup kills it.
func (h *Host) StartJSON(t testing.TB, bin string, args ...string) <-chan map[string]any {
	t.Helper()
	cmd, stdout := h.spawn(t, bin, args...)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return jsonLines(stdout)
}

// RunJSON runs bin in h to the end; its JSON lines arrive on the channel,
// which closes when it exits (an exit status other than 0 fails the test).
func (h *Host) RunJSON(t testing.TB, bin string, args ...string) <-chan map[string]any {
	t.Helper()
	cmd, stdout := h.spawn(t, bin, args...)
	out := make(chan map[string]any)
	go func() {
		defer close(out)
		for line := range jsonLines(stdout) {
			out <- line
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s %v in %s: %v", bin, args, h.Name, err)
		}
	}()
	return out
}

func (h *Host) spawn(t testing.TB, bin string, args ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := h.Command(bin, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout
}

func jsonLines(r io.Reader) <-chan map[string]any {
	out := make(chan map[string]any, 64)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				out <- m
			}
		}
	}()
	return out
}
