package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestOpenRefusesBadLayouts(t *testing.T) {
	img := imageOf(t, "", layerOf(t, file("hello", "world")))
	layers, _ := img.Layers()
	layerDigest, _ := layers[0].Digest()
	cases := []struct {
		name    string
		prepare func(t *testing.T) string
		want    error
		mention string
	}{
		{"not a layout", func(t *testing.T) string { return t.TempDir() }, ErrNotLayout, "oci-layout"},
		{"missing layer blob", func(t *testing.T) string {
			dir := writeLayout(t, img)
			if err := os.Remove(filepath.Join(dir, "blobs", "sha256", layerDigest.Hex)); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrBadBlob, layerDigest.String()},
		{"corrupt layer blob", func(t *testing.T) string {
			dir := writeLayout(t, img)
			p := filepath.Join(dir, "blobs", "sha256", layerDigest.Hex)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrBadBlob, layerDigest.String()},
		{"other platform", func(t *testing.T) string {
			return writeLayout(t, imageOf(t, "s390x", layerOf(t, file("hello", "world"))))
		}, ErrPlatform, "linux/s390x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.prepare(t), nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestOpenPicksThisPlatform(t *testing.T) {
	dir := writeLayout(t, imageOf(t, "", layerOf(t, file("hello", "world"))))
	img, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Image.Digest()
	if img.Digest != want || img.Config.Architecture == "" {
		t.Fatalf("opened %s (config %+v), want %s", img.Digest, img.Config, want)
	}
}

func TestImportLayout(t *testing.T) {
	img := imageOf(t, "", layerOf(t, file("etc/greeting", "hello")))
	want, _ := img.Digest()

	archive := filepath.Join(t.TempDir(), "image.tar")
	tag, err := name.NewTag("example.org/greeting:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.tar")
	if err := os.WriteFile(garbage, []byte("not a tarball"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		src     string
		sameMfs bool // the manifest is copied as is (a layout) or rebuilt (docker-archive)
		wantErr error
	}{
		{"layout directory", writeLayout(t, img), true, nil},
		{"docker-archive tarball", archive, false, nil},
		{"neither", garbage, false, ErrNotLayout},
		{"empty directory", t.TempDir(), false, ErrNotLayout},
		{"layout with a corrupt layer", corruptLayout(t, img), false, ErrBadBlob},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "layout")
			var calls int
			err := ImportLayout(context.Background(), tc.src, dst, func(done, total int64) { calls++ })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ImportLayout: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if calls == 0 {
				t.Error("no progress reported")
			}
			opened, err := Open(dst, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.sameMfs && opened.Digest != want {
				t.Errorf("imported manifest %s, want %s", opened.Digest, want)
			}
			root := filepath.Join(t.TempDir(), "rootfs")
			if _, err := Unpack(context.Background(), opened, root, 1<<20, -1); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "etc", "greeting")); err != nil || string(b) != "hello" {
				t.Fatalf("greeting = %q, %v", b, err)
			}
		})
	}
}

func corruptLayout(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := writeLayout(t, img)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	p := filepath.Join(dir, "blobs", "sha256", d.Hex)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
