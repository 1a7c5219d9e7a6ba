package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Content moves between two daemons: add on one, get on the other, with
// resume, pins and GC, and clear errors for bad input.
func TestAddGetAcrossDaemons(t *testing.T) {
	env := testEnv("VFT_STORAGE_FETCH_TIMEOUT=3s", "VFT_STORAGE_CHUNKER=size-65536")
	repoA, repoB := initRepo(t, env, "miner"), initRepo(t, env, "miner")
	startDaemon(t, repoA, env)
	_, addrsA := idOf(t, env, repoA)
	startDaemon(t, repoB, testEnv("VFT_STORAGE_FETCH_TIMEOUT=3s", "VFT_STORAGE_CHUNKER=size-65536", "VFT_P2P_BOOTSTRAP="+strings.Join(addrsA, ",")))

	dir := t.TempDir()
	data := make([]byte, 3<<20+17) // many 64 KiB chunks
	rand.Read(data)
	src := filepath.Join(dir, "weights.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := vft(t, env, "--repo", repoA, "add", src)
	if code != 0 {
		t.Fatalf("add: %s", stderr)
	}
	id := strings.TrimSpace(out)
	if !strings.HasPrefix(id, "bafy") {
		t.Fatalf("add printed %q, want a CIDv1", out)
	}

	dst := filepath.Join(dir, "copy.bin")
	out, stderr, code = vft(t, env, "--repo", repoB, "get", id, "-o", dst, "--json")
	if code != 0 {
		t.Fatalf("get: %s", stderr)
	}
	var res struct {
		Blocks, Fetched int
	}
	json.Unmarshal([]byte(out), &res)
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, data) {
		t.Fatalf("fetched %d bytes differ from the %d added", len(got), len(data))
	}
	if res.Fetched == 0 || res.Blocks < 48 {
		t.Fatalf("get result %+v: want a multi-block fetch over the network", res)
	}
	// A second get finds every block already here.
	out, _, _ = vft(t, env, "--repo", repoB, "get", id, "-o", filepath.Join(dir, "again.bin"), "--json")
	json.Unmarshal([]byte(out), &res)
	if res.Fetched != 0 {
		t.Fatalf("second get fetched %d blocks again", res.Fetched)
	}

	// Pins and GC: B's fetched copy is unpinned, so GC removes it; A's
	// pinned original survives.
	out, _, _ = vft(t, env, "--repo", repoA, "pin", "ls")
	if !strings.Contains(out, id) {
		t.Fatalf("A does not list its added CID as pinned: %s", out)
	}
	if _, stderr, code = vft(t, env, "--repo", repoB, "repo", "gc"); code != 0 {
		t.Fatalf("gc: %s", stderr)
	}
	out, _, _ = vft(t, env, "--repo", repoB, "repo", "stat", "--json")
	var st struct{ Blocks int64 }
	json.Unmarshal([]byte(out), &st)
	if st.Blocks != 0 {
		t.Fatalf("B still holds %d blocks after GC of unpinned content", st.Blocks)
	}
	if _, _, code = vft(t, env, "--repo", repoA, "repo", "gc"); code != 0 {
		t.Fatal("gc on A failed")
	}
	if _, stderr, code = vft(t, env, "--repo", repoB, "get", id, "-o", filepath.Join(dir, "third.bin")); code != 0 {
		t.Fatalf("A's pinned content was collected: %s", stderr)
	}

	const unknown = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"path does not exist", []string{"add", filepath.Join(dir, "nope")}, "nope"},
		{"unknown CID", []string{"get", unknown, "-o", filepath.Join(dir, "x")}, unknown},
		{"not a CID", []string{"get", "hello", "-o", filepath.Join(dir, "y")}, `"hello"`},
		// Refused before writing, naming the declared size and the limit.
		{"over --max-bytes", []string{"get", id, "--max-bytes", "1MiB", "-o", filepath.Join(dir, "z")}, "declares 3145745 bytes (3.0 MiB) of files, over the limit of 1048576 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := vft(t, env, append([]string{"--repo", repoB}, tc.args...)...)
			if code == 0 || !strings.Contains(lastLine(stderr), tc.want) {
				t.Fatalf("exit %d, stderr %q: want an error naming %s", code, stderr, tc.want)
			}
		})
	}
}
