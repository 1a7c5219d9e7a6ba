package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// dirReader reads a layout from a directory, as the node reads one from
// UnixFS.
func dirReader(dir string) ReadFunc {
	return func(_ context.Context, path string, max int64) ([]byte, error) {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(path)))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, max))
	}
}

func withPlatform(t *testing.T, img v1.Image, os, arch string) v1.Image {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = os, arch
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Two images sharing a layer, one platform named in the index and one
// only in its config: both listed with their platforms, the shared layer
// counted once in the layout's size.
func TestDescribeLayout(t *testing.T) {
	shared, err := random.Layer(2048, "application/vnd.oci.image.layer.v1.tar")
	if err != nil {
		t.Fatal(err)
	}
	own, err := random.Layer(1024, "application/vnd.oci.image.layer.v1.tar")
	if err != nil {
		t.Fatal(err)
	}
	amd, err := mutate.AppendLayers(empty.Image, shared)
	if err != nil {
		t.Fatal(err)
	}
	amd = withPlatform(t, amd, "linux", "amd64")
	arm, err := mutate.AppendLayers(empty.Image, shared, own)
	if err != nil {
		t.Fatal(err)
	}
	arm = withPlatform(t, arm, "linux", "arm64")

	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(amd); err != nil { // no platform in the index: read from the config
		t.Fatal(err)
	}
	if err := p.AppendImage(arm, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})); err != nil {
		t.Fatal(err)
	}

	s, err := Describe(context.Background(), dirReader(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Manifests) != 2 {
		t.Fatalf("manifests %+v, want 2", s.Manifests)
	}
	var want int64
	blobs := map[v1.Hash]int64{}
	for i, tc := range []struct {
		img      v1.Image
		platform string
	}{{amd, "linux/amd64"}, {arm, "linux/arm64/v8"}} {
		d, _ := tc.img.Digest()
		m, _ := tc.img.Manifest()
		raw, _ := tc.img.RawManifest()
		size := int64(len(raw)) + m.Config.Size
		blobs[d], blobs[m.Config.Digest] = int64(len(raw)), m.Config.Size
		for _, l := range m.Layers {
			size += l.Size
			blobs[l.Digest] = l.Size
		}
		got := s.Manifests[i]
		if got.Digest != d.String() || got.Platform != tc.platform || got.Size != size {
			t.Errorf("manifest %d: %+v, want %s %s %d", i, got, d, tc.platform, size)
		}
	}
	for _, n := range blobs {
		want += n
	}
	if s.Size != want {
		t.Errorf("size %d, want %d (the shared layer once)", s.Size, want)
	}
}

func TestDescribeRefuses(t *testing.T) {
	plain := t.TempDir()
	os.WriteFile(filepath.Join(plain, "index.json"), []byte(`{}`), 0o644)
	notJSON := t.TempDir()
	os.WriteFile(filepath.Join(notJSON, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(notJSON, "index.json"), []byte(`not json`), 0o644)
	missing := t.TempDir()
	os.WriteFile(filepath.Join(missing, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(missing, "index.json"), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":10,"digest":"sha256:`+
		"0000000000000000000000000000000000000000000000000000000000000000"+`"}]}`), 0o644)
	for _, tc := range []struct {
		name, dir string
		want      error
	}{
		{"no oci-layout", plain, ErrNotLayout},
		{"index not JSON", notJSON, ErrNotLayout},
		{"manifest blob missing", missing, ErrBadBlob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Describe(context.Background(), dirReader(tc.dir))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// Describe reads JSON that came over the network as content: whatever the
// index and the blob it names hold, it returns an error or a listing,
// within its bounds, and never panics.
func FuzzDescribe(f *testing.F) {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`)
	entry := func(media string, blob []byte) string {
		sum := sha256.Sum256(blob)
		return fmt.Sprintf(`{"mediaType":%q,"size":%d,"digest":"sha256:%x"}`, media, len(blob), sum)
	}
	image := entry("application/vnd.oci.image.manifest.v1+json", manifest)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[`+image+`]}`), manifest)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[`+image+`,`+image+`]}`), manifest)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[`+entry("application/vnd.oci.image.index.v1+json", manifest)+`]}`), manifest)
	f.Add([]byte(`{}`), []byte(`{}`))
	negative := []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":-1000000,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[`+entry("application/vnd.oci.image.manifest.v1+json", negative)+`]}`), negative)
	f.Fuzz(func(t *testing.T, index, blob []byte) {
		sum := sha256.Sum256(blob)
		files := map[string][]byte{
			"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`),
			"index.json": index,
			"blobs/sha256/" + hex.EncodeToString(sum[:]): blob,
			// The config the seed manifest names: "{}".
			"blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a": []byte("{}"),
		}
		reads := 0
		read := func(_ context.Context, path string, max int64) ([]byte, error) {
			reads++
			data, ok := files[path]
			if !ok {
				return nil, os.ErrNotExist
			}
			return data[:min(int64(len(data)), max)], nil
		}
		s, err := Describe(context.Background(), read)
		if err == nil && s.Size < 0 {
			t.Fatalf("negative size %d from %q", s.Size, index)
		}
		if reads > 2+2*len(files)*5 { // each distinct blob once per nesting level at most
			t.Fatalf("%d reads of a %d-file layout", reads, len(files))
		}
	})
}
