package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// noRepoEnv is an environment with no repo anywhere: help must not look.
func noRepoEnv(t *testing.T) []string {
	home := t.TempDir()
	return testEnv("HOME="+home, "VFT_PATH="+filepath.Join(home, "no-repo-here"))
}

// mangledUsage finds a flag line whose value name was taken from a
// back-quoted command in its text ("--no-pin vft repo gc"), the way Go's
// flag package and pflag read `...` in a usage string.
var mangledUsage = regexp.MustCompile(`(?m)^\s+(-\w, )?--?[\w-]+ vft [^\n]*$`)

// -h and --help work on every command and subcommand without a repo or a
// daemon, exit 0, and print the usage with an example and the flags. The
// old CLI needed a repo for `vft pin -h`, answered `vft job -h` with
// `unknown job subcommand "-h"`, mangled `vft add -h`'s flag text, and had
// no --version.
func TestHelpWithoutRepo(t *testing.T) {
	env := noRepoEnv(t)
	cases := []struct {
		args []string
		want []string // in the help, besides Usage and Example
	}{
		{[]string{"pin", "-h"}, []string{"add", "rm", "ls"}},
		{[]string{"pin", "add", "-h"}, []string{"--json"}},
		{[]string{"repo", "--help"}, []string{"stat", "gc"}},
		{[]string{"job", "-h"}, []string{"submit", "list", "status", "result", "cancel"}},
		{[]string{"job", "submit", "-h"}, []string{"--wasm", "--input", "--wait", "--max-entries", "(default 1048576)"}},
		{[]string{"job", "result", "--help"}, []string{"-o"}},
		{[]string{"add", "-h"}, []string{"--hidden", "--no-pin", "--json"}},
		{[]string{"get", "-h"}, []string{"-o", "--max-bytes"}},
		{[]string{"wallet", "-h"}, []string{"balance", "earned", "airdrop"}},
		{[]string{"wallet", "earned", "-h"}, []string{"--recent", "(default 10)"}},
		{[]string{"config", "set", "-h"}, []string{"KEY VALUE"}},
		{[]string{"image", "-h"}, []string{"import"}},
		{[]string{"exec", "-h"}, []string{"--arg", "--runtime", "(default 5m0s)"}},
		{[]string{"devnet", "-h"}, []string{"--miners", "(default 4)"}},
		{[]string{"help", "job"}, []string{"submit", "cancel"}},
		{[]string{"help", "job", "submit"}, []string{"--wasm"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := vft(t, env, tc.args...)
			out := stdout + stderr
			if code != 0 {
				t.Fatalf("exit status %d, want 0:\n%s", code, out)
			}
			for _, want := range append([]string{"Usage:", "Example"}, tc.want...) {
				if !strings.Contains(out, want) {
					t.Errorf("help does not show %q:\n%s", want, out)
				}
			}
			if m := mangledUsage.FindString(out); m != "" {
				t.Errorf("a flag's text was mangled into its value name: %q\n%s", m, out)
			}
		})
	}
	stdout, stderr, code := vft(t, env, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "vft ") {
		t.Fatalf("--version: exit %d: %s%s", code, stdout, stderr)
	}
	if vstdout, _, _ := vft(t, env, "version"); vstdout != stdout {
		t.Errorf("vft --version says %q, vft version %q", stdout, vstdout)
	}
}

// Flags come after positional arguments too: `vft add DIR --json` failed
// with "vft add PATH" on the old CLI.
func TestFlagsAfterArguments(t *testing.T) {
	env := testEnv()
	repoDir := initRepo(t, env, "light")
	startDaemon(t, repoDir, env)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("flags after arguments\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var cids []string
	for _, args := range [][]string{
		{"--repo", repoDir, "add", dir, "--json"},
		{"add", dir, "--json", "--repo", repoDir},
		{"add", "--json", dir, "--repo=" + repoDir},
	} {
		stdout, stderr, code := vft(t, env, args...)
		if code != 0 {
			t.Fatalf("vft %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		var res struct {
			CID string `json:"cid"`
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.CID == "" {
			t.Fatalf("vft %s: not JSON with a cid: %v: %s", strings.Join(args, " "), err, stdout)
		}
		cids = append(cids, res.CID)
	}
	if cids[0] != cids[1] || cids[1] != cids[2] {
		t.Fatalf("the same directory added as %v", cids)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, stderr, code := vft(t, env, "get", cids[0], "--repo", repoDir, "-o", out, "--json"); code != 0 {
		t.Fatalf("get CID --repo R -o OUT --json: exit %d: %s", code, stderr)
	}
	if got, err := os.ReadFile(filepath.Join(out, "a.txt")); err != nil || string(got) != "flags after arguments\n" {
		t.Fatalf("get wrote %q, %v", got, err)
	}
	stdout, stderr, code := vft(t, env, "pin", "ls", "--repo", repoDir, "--json")
	if code != 0 || !strings.Contains(stdout, cids[0]) {
		t.Fatalf("pin ls --repo R --json: exit %d: %s%s", code, stdout, stderr)
	}
}
