package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// testTree is the command tree, built in the test process.
func testTree() *cobra.Command {
	return (&cli{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}).rootCmd()
}

// allCommands is every command in the tree, hidden ones too, but not
// cobra's internal __complete.
func allCommands(cmd *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{cmd}
	for _, sub := range cmd.Commands() {
		if strings.HasPrefix(sub.Name(), "__") {
			continue
		}
		out = append(out, allCommands(sub)...)
	}
	return out
}

// Every command in the tree, found by walking it, answers -h and --help
// without a repo or a daemon: exit 0, its usage, an example, and no flag
// text mangled into a value name.
func TestHelpEveryCommand(t *testing.T) {
	env := noRepoEnv(t)
	cmds := allCommands(testTree())
	if len(cmds) < 35 {
		t.Fatalf("the tree has only %d commands", len(cmds))
	}
	for _, cmd := range cmds {
		path := strings.Fields(cmd.CommandPath())[1:]
		t.Run(strings.Join(append([]string{"vft"}, path...), " "), func(t *testing.T) {
			if cmd.Short == "" || cmd.Example == "" {
				t.Errorf("%s has no Short or no Example", cmd.CommandPath())
			}
			for _, help := range []string{"-h", "--help"} {
				stdout, stderr, code := vft(t, env, append(slices.Clone(path), help)...)
				if code != 0 || stderr != "" {
					t.Fatalf("%s: exit %d, stderr %q", help, code, stderr)
				}
				for _, want := range []string{"Usage:", "Examples:", cmd.Example} {
					if !strings.Contains(stdout, want) {
						t.Errorf("%s does not show %q:\n%s", help, want, stdout)
					}
				}
				if m := mangledUsage.FindString(stdout); m != "" {
					t.Errorf("a flag's text was mangled into its value name: %q", m)
				}
			}
			if len(path) > 0 && path[0] != "help" {
				stdout, _, code := vft(t, env, append([]string{"help"}, path...)...)
				if code != 0 || !strings.Contains(stdout, cmd.Example) {
					t.Errorf("vft help %s: exit %d:\n%s", strings.Join(path, " "), code, stdout)
				}
			}
		})
	}
}

// --repo is on the commands that open a repo, and only there.
func TestRepoFlagWhereUsed(t *testing.T) {
	without := []string{"vft", "vft exec", "vft devnet", "vft version", "vft help", "vft cli-docs"}
	for _, cmd := range allCommands(testTree()) {
		has := cmd.Flag("repo") != nil
		want := !slices.Contains(without, cmd.CommandPath()) && !strings.HasPrefix(cmd.CommandPath(), "vft completion")
		if has != want {
			t.Errorf("%s: has --repo %v, want %v", cmd.CommandPath(), has, want)
		}
	}
	// $VFT_PATH still names the repo.
	home := t.TempDir()
	repoDir := filepath.Join(home, "repo")
	env := testEnv("HOME="+home, "VFT_PATH="+repoDir)
	if _, stderr, code := vft(t, env, "init", "--mode", "light"); code != 0 {
		t.Fatalf("VFT_PATH=%s vft init: %s", repoDir, stderr)
	}
	if _, err := os.Stat(filepath.Join(repoDir, "identity.key")); err != nil {
		t.Fatalf("init with $VFT_PATH: %v", err)
	}
}

// A usage mistake is one line on stderr naming the bad value and where
// to look, with exit status 2.
func TestUsageErrors(t *testing.T) {
	env := noRepoEnv(t)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"frobnicate"}, []string{`vft: unknown command "frobnicate"`, "vft help"}},
		{[]string{"jb"}, []string{`vft: unknown command "jb" (did you mean job?)`, "vft help"}},
		{[]string{"help", "frobnicate"}, []string{`vft help: unknown command "frobnicate"`, "vft help"}},
		{[]string{"help", "job", "frobnicate"}, []string{`vft help: usage: unknown job subcommand "frobnicate"`, "vft help job"}},
		{[]string{"job", "frobnicate"}, []string{"vft job:", `"frobnicate"`, "submit", "vft help job"}},
		{[]string{"pin", "frobnicate"}, []string{"vft pin:", `"frobnicate"`, "vft help pin"}},
		{[]string{"job"}, []string{"vft job: usage: vft job submit"}},
		{[]string{"add", "--frobnicate", "x"}, []string{"vft add:", "--frobnicate", "vft help add"}},
		{[]string{"job", "submit", "--frobnicate"}, []string{"vft job:", "--frobnicate", "vft help job submit"}},
		{[]string{"get", "-x", "bafy"}, []string{"vft get:", "'x'", "vft help get"}},
		{[]string{"version", "--repo", "/tmp"}, []string{"vft version:", "--repo"}},
		{[]string{"exec", "--repo", "/tmp", "m.wasm"}, []string{"vft exec:", "--repo"}},
		{[]string{"add"}, []string{"vft add: usage: vft add PATH"}},
		{[]string{"wallet", "earned", "--recent", "many"}, []string{"vft wallet:", `"many"`, "--recent"}},
		{[]string{"exec", "a.wasm", "b.wasm"}, []string{"vft exec:", `"b.wasm"`, "--arg"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := vft(t, env, tc.args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if stdout != "" || strings.Count(stderr, "\n") != 1 {
				t.Errorf("want one line on stderr and nothing on stdout, got stdout %q, stderr %q", stdout, stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q: %s", want, stderr)
				}
			}
		})
	}
	// `vft` and `vft help` alone list the commands.
	for _, args := range [][]string{nil, {"help"}} {
		stdout, _, code := vft(t, env, args...)
		if code != 0 || !strings.Contains(stdout, "Available Commands:") || !strings.Contains(stdout, "devnet") {
			t.Errorf("vft %v: exit %d:\n%s", args, code, stdout)
		}
	}
}

// The old CLI took Go-style single-dash long flags (-json, -repo DIR) and
// --o for -o; they still work, and a flag's value is never rewritten.
func TestLongFlagsCompat(t *testing.T) {
	root := testTree()
	cases := []struct{ in, want []string }{
		{[]string{"version", "-json"}, []string{"version", "--json"}},
		{[]string{"-repo", "R", "add", "D", "-json"}, []string{"--repo", "R", "add", "D", "--json"}},
		{[]string{"exec", "m.wasm", "--arg", "-json", "--arg", "-n", "-o", "-json"}, []string{"exec", "m.wasm", "--arg", "-json", "--arg", "-n", "-o", "-json"}},
		{[]string{"init", "-mode=light"}, []string{"init", "--mode=light"}},
		{[]string{"config", "set", "k", "-x"}, []string{"config", "set", "k", "-x"}},
		{[]string{"config", "set", "k", "-1"}, []string{"config", "set", "k", "--", "-1"}},
		{[]string{"wallet", "airdrop", "-0.5", "--json"}, []string{"wallet", "airdrop", "-0.5", "--json"}},
		{[]string{"job", "submit", "--", "-json"}, []string{"job", "submit", "--", "-json"}},
	}
	for _, tc := range cases {
		if got := longFlagsCompat(root, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("longFlagsCompat(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	env := noRepoEnv(t)
	stdout, stderr, code := vft(t, env, "version", "-json")
	var v struct{ Version string }
	if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil || v.Version == "" {
		t.Fatalf("vft version -json: exit %d: %s%s", code, stdout, stderr)
	}
	repoDir := initRepo(t, env, "light")
	stdout, stderr, code = vft(t, env, "-repo", repoDir, "config", "show", "-json")
	if code != 0 || !strings.Contains(stdout, `"node.mode": "light"`) {
		t.Fatalf("vft -repo R config show -json: exit %d: %s%s", code, stdout, stderr)
	}
}

// `vft completion bash|zsh|fish` print cobra's scripts; bash loads the
// bash one, and the binary completes subcommand names.
func TestCompletion(t *testing.T) {
	env := noRepoEnv(t)
	for _, sh := range []string{"bash", "zsh", "fish"} {
		stdout, stderr, code := vft(t, env, "completion", sh)
		if code != 0 || !strings.Contains(stdout, "vft") || len(stdout) < 1000 {
			t.Fatalf("completion %s: exit %d, %d bytes: %s", sh, code, len(stdout), stderr)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		script, _, _ := vft(t, env, "completion", "bash")
		cmd := exec.Command(bash, "--norc", "-c", `source /dev/stdin && complete -p vft`)
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "__start_vft") {
			t.Fatalf("bash did not load the completion: %v: %s", err, out)
		}
	}
	stdout, _, code := vft(t, env, "__complete", "job", "s")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var names []string
	for _, l := range lines {
		if !strings.HasPrefix(l, ":") {
			names = append(names, strings.SplitN(l, "\t", 2)[0])
		}
	}
	if code != 0 || !slices.Equal(names, []string{"status", "submit"}) {
		t.Fatalf("__complete job s: exit %d: %q", code, stdout)
	}
	stdout, _, _ = vft(t, env, "__complete", "add", "x", "--j")
	if !strings.Contains(stdout, "--json") {
		t.Fatalf("__complete add x --j does not offer --json: %q", stdout)
	}
}

// docs/CLI.md is the reference generated from the tree.
func TestCLIDocsCurrent(t *testing.T) {
	var want bytes.Buffer
	if err := writeCLIDocs(&want, testTree()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "..", cliDocsFile))
	if err != nil {
		t.Fatalf("%v: run `make cli-docs` to write it", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(want.String(), "\n")
		line := 0
		for line < len(gl) && line < len(wl) && gl[line] == wl[line] {
			line++
		}
		t.Fatalf("%s is out of date with the command tree (first difference at line %d); run `make cli-docs` and commit it", cliDocsFile, line+1)
	}
	for _, cmd := range visibleCommands(testTree()) {
		if !bytes.Contains(got, []byte("\n## "+cmd.CommandPath()+"\n")) {
			t.Errorf("%s has no section for %s", cliDocsFile, cmd.CommandPath())
		}
	}
}
