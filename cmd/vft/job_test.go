package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vft-network/vft/executor/wasm/wasmtest"
)

// The main job with the real binary: three miner daemons and a submitter;
// `vft job submit --wait -o` runs the wordcount example on three workers
// and writes the agreed result.
func TestJobSubmitWithBinary(t *testing.T) {
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv("VFT_HEARTBEAT_INTERVAL=5s")
	first := initRepo(t, env, "miner")
	startDaemon(t, first, env)
	_, addrs := idOf(t, env, first)
	viaFirst := testEnv("VFT_HEARTBEAT_INTERVAL=5s", "VFT_P2P_BOOTSTRAP="+strings.Join(addrs, ","))
	for range 2 {
		startDaemon(t, initRepo(t, viaFirst, "miner"), viaFirst)
	}
	submitter := initRepo(t, viaFirst, "light")
	startDaemon(t, submitter, viaFirst)

	out := filepath.Join(t.TempDir(), "result")
	stdout, stderr, code := vft(t, env, "--repo", submitter, "job", "submit",
		"--wasm", module, "--input", "../../examples/wordcount/testdata/",
		"--redundancy", "3", "--verify", "exact", "--timeout", "1m", "--reward", "5000",
		"--wait", "-o", out)
	if code != 0 {
		t.Fatalf("job submit failed:\n%s\n%s", stdout, stderr)
	}
	for _, stage := range []string{"offered", "assigned", "verifying", "done"} {
		if !strings.Contains(stderr, stage) {
			t.Errorf("--wait did not show the %s stage:\n%s", stage, stderr)
		}
	}
	got, _ := os.ReadFile(filepath.Join(out, "counts.tsv"))
	want, _ := os.ReadFile("../../examples/wordcount/expected/texts/counts.tsv")
	if len(got) == 0 || !bytes.Equal(got, want) {
		t.Fatalf("result counts.tsv differs from the expected output:\n%s", got)
	}
	list, _, _ := vft(t, env, "--repo", submitter, "job", "list")
	if !strings.Contains(list, "done") {
		t.Fatalf("job list:\n%s", list)
	}
}
