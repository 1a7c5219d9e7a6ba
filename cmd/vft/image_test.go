package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/executor/oci"
	"github.com/vft-network/vft/executor/oci/ocitest"
)

// `vft image import` adds a docker-archive tarball as an OCI layout that
// `vft get` brings back and the oci executor opens; garbage is refused.
func TestImageImport(t *testing.T) {
	env := testEnv()
	repoA := initRepo(t, env, "miner")
	startDaemon(t, repoA, env)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc/greeting", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	tw.Write([]byte("hello"))
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", oci.Platform().Architecture
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "image.tar")
	tag, _ := name.NewTag("example.org/greeting:1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}

	out, stderr, code := vft(t, env, "--repo", repoA, "image", "import", archive)
	if code != 0 {
		t.Fatalf("image import: %s", stderr)
	}
	id := strings.TrimSpace(out)
	if !strings.HasPrefix(id, "bafy") {
		t.Fatalf("image import printed %q, want a CID", out)
	}
	got := filepath.Join(dir, "got")
	if _, stderr, code := vft(t, env, "--repo", repoA, "get", id, "-o", got); code != 0 {
		t.Fatalf("get: %s", stderr)
	}
	opened, err := oci.Open(got, nil)
	if err != nil {
		t.Fatalf("the imported image does not open: %v", err)
	}
	if _, err := layout.FromPath(got); err != nil || opened.LayersSize == 0 {
		t.Fatalf("layout %v, layers %d bytes", err, opened.LayersSize)
	}

	// The same image as a layout directory imports to the same CID twice.
	lay := filepath.Join(dir, "layout")
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	first, _, _ := vft(t, env, "--repo", repoA, "image", "import", lay)
	second, _, _ := vft(t, env, "--repo", repoA, "image", "import", lay)
	if strings.TrimSpace(first) == "" || first != second {
		t.Fatalf("layout imported as %q then %q", first, second)
	}

	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("not an image"), 0o644)
	_, stderr, code = vft(t, env, "--repo", repoA, "image", "import", garbage)
	if code != 1 || !strings.Contains(stderr, "neither an OCI layout directory nor a docker-archive tarball") {
		t.Fatalf("garbage import: exit %d: %s", code, stderr)
	}
	entries, _ := os.ReadDir(filepath.Join(repoA, "tmp"))
	if len(entries) != 0 {
		t.Fatalf("temporary layouts left in the repo: %v", entries)
	}
}

// `vft image ls` lists what `vft image import` added, with its manifest,
// platform, size and import time, an image pinned by `vft add` (no import
// time), and leaves out pinned content that is not an image.
func TestImageList(t *testing.T) {
	env := testEnv()
	repo := initRepo(t, env, "miner")
	startDaemon(t, repo, env)

	if out, stderr, code := vft(t, env, "--repo", repo, "image", "ls"); code != 0 || out != "" || !strings.Contains(stderr, "no images") {
		t.Fatalf("image ls on an empty repo: exit %d, %q, %q", code, out, stderr)
	}

	lay := ocitest.BusyboxLayout(t)
	imported, stderr, code := vft(t, env, "--repo", repo, "image", "import", "--json", lay)
	if code != 0 {
		t.Fatalf("image import: %s", stderr)
	}
	var imp struct{ CID, Manifest string }
	if err := json.Unmarshal([]byte(imported), &imp); err != nil {
		t.Fatal(err)
	}
	// The same layout added as plain content: an image, but not imported.
	other := t.TempDir()
	if err := os.CopyFS(other, os.DirFS(lay)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(other, "README"), []byte("also an image"), 0o644)
	added, stderr, code := vft(t, env, "--repo", repo, "add", other)
	if code != 0 {
		t.Fatalf("add: %s", stderr)
	}
	addedCID := strings.TrimSpace(added)
	plain := t.TempDir()
	os.WriteFile(filepath.Join(plain, "index.json"), []byte("{}"), 0o644) // no oci-layout: not an image
	if _, stderr, code := vft(t, env, "--repo", repo, "add", plain); code != 0 {
		t.Fatalf("add: %s", stderr)
	}

	out, stderr, code := vft(t, env, "--repo", repo, "image", "ls", "--json")
	if code != 0 {
		t.Fatalf("image ls: %s", stderr)
	}
	var images []api.Image
	if err := json.Unmarshal([]byte(out), &images); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(images) != 2 {
		t.Fatalf("image ls lists %d images, want 2: %s", len(images), out)
	}
	opened, err := oci.Open(lay, nil)
	if err != nil {
		t.Fatal(err)
	}
	byCID := map[string]api.Image{}
	for _, img := range images {
		byCID[img.CID] = img
	}
	for _, tc := range []struct {
		cid      string
		imported bool
	}{{imp.CID, true}, {addedCID, false}} {
		img, ok := byCID[tc.cid]
		if !ok {
			t.Fatalf("%s not listed: %s", tc.cid, out)
		}
		if len(img.Manifests) != 1 || img.Manifests[0].Digest != imp.Manifest || img.Manifests[0].Digest != opened.Digest.String() ||
			img.Manifests[0].Platform != "linux/"+runtime.GOARCH || img.Size < opened.LayersSize || img.Error != "" {
			t.Errorf("%s: %+v, want manifest %s for linux/%s, at least %d bytes", tc.cid, img, imp.Manifest, runtime.GOARCH, opened.LayersSize)
		}
		if (img.ImportedAt != nil) != tc.imported {
			t.Errorf("%s: imported at %v, want a time: %v", tc.cid, img.ImportedAt, tc.imported)
		}
	}

	table, _, code := vft(t, env, "--repo", repo, "image", "ls")
	if code != 0 || !strings.Contains(table, imp.CID) || !strings.Contains(table, imp.Manifest) || !strings.Contains(table, "linux/"+runtime.GOARCH) {
		t.Fatalf("image ls: exit %d:\n%s", code, table)
	}
}
