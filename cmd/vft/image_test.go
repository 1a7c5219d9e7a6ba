package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vft-network/vft/executor/oci"
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
