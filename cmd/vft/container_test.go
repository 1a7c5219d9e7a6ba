package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vft-network/vft/executor/oci/ocitest"
)

// A container job with the real binary in processes: `vft image import`
// adds the busybox image layout on the submitter, `vft job submit` runs a
// command in it on a miner that offers oci (set with `vft config set`),
// and the result comes back. The same job again fetches nothing: the
// miner's store holds exactly the bytes it held before (image, input and
// output are all already there).
func TestContainerJobWithBinary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("container jobs need root (CI runs as root)")
	}
	env := testEnv("VFT_HEARTBEAT_INTERVAL=5s")
	miner := initRepo(t, env, "miner")
	if _, stderr, code := vft(t, env, "--repo", miner, "config", "set", "market.executors", "wasm,oci"); code != 0 {
		t.Fatalf("config set market.executors: %s", stderr)
	}
	startDaemon(t, miner, env)
	_, addrs := idOf(t, env, miner)
	viaMiner := testEnv("VFT_HEARTBEAT_INTERVAL=5s", "VFT_P2P_BOOTSTRAP="+strings.Join(addrs, ","))
	submitter := initRepo(t, viaMiner, "light")
	startDaemon(t, submitter, viaMiner)

	out, stderr, code := vft(t, env, "--repo", submitter, "image", "import", ocitest.BusyboxLayout(t))
	if code != 0 {
		t.Fatalf("image import: %s", stderr)
	}
	image := lastLine(out)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "words.txt"), []byte("to be or not to be\n"), 0o644)
	spec := filepath.Join(dir, "job.toml")
	os.WriteFile(spec, []byte(`image = "`+image+`"
command = ["sh", "-c", "tr a-z A-Z < /input/words.txt > /output/upper.txt"]
inputs = ["words.txt"]
timeout = "2m"
reward = 5000
`), 0o644)

	stored := func() int64 {
		t.Helper()
		out, stderr, code := vft(t, env, "--repo", miner, "repo", "stat", "--json")
		var st struct {
			Bytes int64 `json:"bytes"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("repo stat: %s %s", out, stderr)
		}
		return st.Bytes
	}
	run := func(name string) {
		t.Helper()
		result := filepath.Join(dir, name)
		stdout, stderr, code := vft(t, env, "--repo", submitter, "job", "submit", spec, "--wait", "-o", result)
		if code != 0 {
			t.Fatalf("%s job: %s\n%s", name, stdout, stderr)
		}
		got, _ := os.ReadFile(filepath.Join(result, "upper.txt"))
		if string(got) != "TO BE OR NOT TO BE\n" {
			t.Fatalf("%s job: upper.txt = %q", name, got)
		}
	}
	run("cold")
	before := stored()
	run("warm")
	if after := stored(); after != before {
		t.Fatalf("the second job changed the miner's store from %d to %d bytes: it fetched what it had", before, after)
	}
}
