package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
	flatfs "github.com/ipfs/go-ds-flatfs"
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

// Ctrl-C in the middle of `vft get` says so and how to go on, not which
// HTTP call it cut; the blocks fetched so far stay, so the same command
// afterwards fetches only the rest. The transfer is held mid-way for sure:
// one block of the directory is on no node until the test adds it back.
func TestGetInterruptedResumes(t *testing.T) {
	env := testEnv("VFT_STORAGE_FETCH_TIMEOUT=5m", "VFT_STORAGE_CHUNKER=size-65536")
	repoA, repoB := initRepo(t, env, "miner"), initRepo(t, env, "miner")
	// A keeps its blocks in flatfs, as repos from before the pack store
	// do (one file per block), so the test can take one block away below.
	fds, ferr := flatfs.CreateOrOpen(filepath.Join(repoA, "blocks"), flatfs.NextToLast(2), false)
	if ferr != nil {
		t.Fatal(ferr)
	}
	fds.Close()
	startDaemon(t, repoA, env)
	_, addrsA := idOf(t, env, repoA)
	startDaemon(t, repoB, testEnv("VFT_STORAGE_FETCH_TIMEOUT=5m", "VFT_STORAGE_CHUNKER=size-65536", "VFT_P2P_BOOTSTRAP="+strings.Join(addrsA, ",")))

	dir := t.TempDir()
	src := filepath.Join(dir, "model")
	os.Mkdir(src, 0o755)
	big, late := make([]byte, 2<<20), make([]byte, 1000)
	rand.Read(big)
	rand.Read(late)
	os.WriteFile(filepath.Join(src, "weights.bin"), big, 0o644)
	os.WriteFile(filepath.Join(src, "vocab.txt"), late, 0o644)
	lateFile := filepath.Join(dir, "vocab.txt")
	os.WriteFile(lateFile, late, 0o644)

	out, stderr, code := vft(t, env, "--repo", repoA, "add", lateFile)
	if code != 0 {
		t.Fatalf("add: %s", stderr)
	}
	lateCID, err := cid.Decode(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code = vft(t, env, "--repo", repoA, "add", src)
	if code != 0 {
		t.Fatalf("add: %s", stderr)
	}
	root := strings.TrimSpace(out)
	// vocab.txt is one raw block: remove it from A's flatfs, so no node has it.
	key := dshelp.MultihashToDsKey(lateCID.Hash()).String()[1:]
	if err := os.Remove(filepath.Join(repoA, "blocks", key[len(key)-3:len(key)-1], key+".data")); err != nil {
		t.Fatalf("remove the block of vocab.txt from A: %v", err)
	}

	blocksOnB := func() int64 {
		out, _, _ := vft(t, env, "--repo", repoB, "repo", "stat", "--json")
		var st struct{ Blocks int64 }
		json.Unmarshal([]byte(out), &st)
		return st.Blocks
	}
	dst := filepath.Join(dir, "copy")
	get := exec.Command(vftBin, "--repo", repoB, "get", root, "-o", dst, "--json")
	get.Env = env
	var getErr bytes.Buffer
	get.Stderr = &getErr
	if err := get.Start(); err != nil {
		t.Fatal(err)
	}
	// weights.bin is 32 chunks: wait until B holds them all and waits for vocab.txt.
	for deadline := time.Now().Add(time.Minute); blocksOnB() < 33; {
		if time.Now().After(deadline) {
			get.Process.Kill()
			t.Fatalf("B never fetched what A has; get said %s", getErr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	get.Process.Signal(os.Interrupt)
	get.Wait()
	if code, last := get.ProcessState.ExitCode(), lastLine(getErr.String()); code != 130 || last != "vft get: interrupted; run the same command to resume" {
		t.Fatalf("Ctrl-C mid-transfer: exit %d, last line %q; want 130 and the advice to run it again", code, last)
	}
	held := blocksOnB()
	if held < 33 {
		t.Fatalf("B holds %d blocks after the interrupted get, want the 33 it had fetched", held)
	}
	if _, err := os.Lstat(dst); err == nil {
		t.Fatal("the interrupted get left a partial output behind")
	}

	// vocab.txt comes back on A; the same command fetches only what is missing.
	if _, stderr, code := vft(t, env, "--repo", repoA, "add", lateFile); code != 0 {
		t.Fatalf("add: %s", stderr)
	}
	out, stderr, code = vft(t, env, "--repo", repoB, "get", root, "-o", dst, "--json")
	if code != 0 {
		t.Fatalf("the second get: %s", stderr)
	}
	var res struct{ Blocks, Fetched int }
	json.Unmarshal([]byte(out), &res)
	if res.Fetched == 0 || int64(res.Fetched) > int64(res.Blocks)-held {
		t.Fatalf("the second get fetched %d of %d blocks, with %d already here: want only the missing ones", res.Fetched, res.Blocks, held)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "weights.bin")); !bytes.Equal(got, big) {
		t.Fatal("the resumed get wrote different weights.bin")
	}
}

// `vft add` of a directory skips dot files, as `ipfs add` does, and says
// how many and how to include them; --hidden includes them.
func TestAddHidden(t *testing.T) {
	env := testEnv()
	repoA := initRepo(t, env, "miner")
	startDaemon(t, repoA, env)
	src := filepath.Join(t.TempDir(), "project")
	for _, p := range []string{"main.go", ".env", ".git/config", ".git/HEAD", "sub/.cache"} {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		os.WriteFile(filepath.Join(src, p), []byte(p), 0o644)
	}

	without, stderr, code := vft(t, env, "--repo", repoA, "add", src)
	if code != 0 {
		t.Fatalf("add: %s", stderr)
	}
	if !strings.Contains(stderr, "skipped 3 hidden") || !strings.Contains(stderr, "vft add --hidden "+src) {
		t.Fatalf("add without --hidden said %q: want the count of skipped dot files (.env, .git, sub/.cache) and how to include them", stderr)
	}
	with, stderr, code := vft(t, env, "--repo", repoA, "add", "--hidden", src)
	if code != 0 {
		t.Fatalf("add --hidden: %s", stderr)
	}
	if strings.Contains(stderr, "skipped") || with == without {
		t.Fatalf("add --hidden gave the same CID %s or still skipped: %s", with, stderr)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if _, stderr, code := vft(t, env, "--repo", repoA, "get", strings.TrimSpace(with), "-o", dst); code != 0 {
		t.Fatalf("get: %s", stderr)
	}
	for _, p := range []string{".env", ".git/config", "sub/.cache"} {
		if _, err := os.Stat(filepath.Join(dst, p)); err != nil {
			t.Errorf("--hidden left out %s: %v", p, err)
		}
	}
}
