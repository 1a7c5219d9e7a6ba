// Package ocitest builds a small container image for tests outside
// executor/oci (the in-process network, the binary's tests): busybox from
// Debian's busybox-static package, as an OCI image layout directory, so
// `make test` needs no image download.
package ocitest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Applets are the busybox commands the image links in /bin.
var Applets = []string{"sh", "echo", "cat", "sha256sum", "wc", "ls", "sleep", "tr", "touch", "dd", "head", "id", "ip", "unshare", "grep"}

// BusyboxLayer is a layer holding /bin/busybox and its Applets as
// symbolic links. busybox-static must be installed (`.ci/run` installs it).
func BusyboxLayer(t testing.TB) v1.Layer {
	t.Helper()
	var bin []byte
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if b, err := os.ReadFile(p); err == nil {
			bin = b
			break
		}
	}
	if bin == nil {
		t.Fatal("busybox not installed: apt-get install busybox-static")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	write(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	write(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, bin)
	for _, a := range Applets {
		write(&tar.Header{Name: "bin/" + a, Linkname: "busybox", Typeflag: tar.TypeSymlink, Mode: 0o777}, nil)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

// BusyboxLayout writes the busybox image for this machine's platform as
// an OCI image layout in a new directory under t.TempDir() and returns
// it.
func BusyboxLayout(t testing.TB) string {
	t.Helper()
	layer := BusyboxLayer(t)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config = v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}
