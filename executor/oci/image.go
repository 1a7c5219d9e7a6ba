package oci

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Errors of opening an image; test with errors.Is.
var (
	// ErrNotLayout: the directory is not an OCI image layout.
	ErrNotLayout = errors.New("not an OCI image layout")
	// ErrBadBlob: a blob the image uses is missing or does not match its digest.
	ErrBadBlob = errors.New("image blob missing or corrupt")
	// ErrPlatform: no manifest in the image is for this machine's platform.
	ErrPlatform = errors.New("image has no manifest for this platform")
)

// Progress reports bytes done of total (total < 0: not known yet).
type Progress func(done, total int64)

// ImportLayout turns src, an OCI image layout directory or a `docker save` /
// `podman save` / `skopeo copy docker-archive:` tarball, into an OCI image
// layout at dstDir (created; it must not exist or be empty). Blobs stay
// separate files under blobs/sha256, so identical layers of different images
// are identical files and share their blocks once added as content.
func ImportLayout(ctx context.Context, src, dstDir string, progress Progress) error {
	if progress == nil {
		progress = func(int64, int64) {}
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("import %s: %w", src, err)
	}
	if entries, err := os.ReadDir(dstDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("import into %s: the directory is not empty", dstDir)
	}
	dst, err := layout.Write(dstDir, empty.Index)
	if err != nil {
		return fmt.Errorf("import: create layout %s: %w", dstDir, err)
	}
	if st.IsDir() {
		err = importLayoutDir(ctx, src, dst, progress)
	} else {
		err = importArchive(ctx, src, dst, progress)
	}
	if err != nil {
		return err
	}
	return verifyAllBlobs(dstDir)
}

// verifyAllBlobs hashes every file under blobs/sha256 against its name:
// go-containerregistry copies a layout's blobs without rehashing them, and
// a corrupt blob must not become content other peers fetch.
func verifyAllBlobs(dir string) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	entries, err := os.ReadDir(blobs)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotLayout, err)
	}
	for _, e := range entries {
		if err := verifyBlob(dir, v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: e.Name()}}); err != nil {
			return err
		}
	}
	return nil
}

// importLayoutDir copies an existing layout (ImportLayout then checks every
// blob copied against its digest).
func importLayoutDir(ctx context.Context, src string, dst layout.Path, progress Progress) error {
	if _, err := os.Stat(filepath.Join(src, "oci-layout")); err != nil {
		return fmt.Errorf("%w: %s has no oci-layout file; give an OCI layout directory or a docker/podman save tarball", ErrNotLayout, src)
	}
	idx, err := layout.ImageIndexFromPath(src)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotLayout, src, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("%w: %s: index.json: %v", ErrNotLayout, src, err)
	}
	total := int64(0)
	for _, d := range im.Manifests {
		total += d.Size
	}
	done := int64(0)
	for _, d := range im.Manifests {
		if err := ctx.Err(); err != nil {
			return err
		}
		opts := []layout.Option{layout.WithAnnotations(d.Annotations)}
		if d.Platform != nil {
			opts = append(opts, layout.WithPlatform(*d.Platform))
		}
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return fmt.Errorf("%w: index %s: %v", ErrBadBlob, d.Digest, err)
			}
			err = dst.AppendIndex(child, opts...)
			if err != nil {
				return fmt.Errorf("import index %s: %w", d.Digest, err)
			}
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return fmt.Errorf("%w: image %s: %v", ErrBadBlob, d.Digest, err)
			}
			if err := dst.AppendImage(img, opts...); err != nil {
				return fmt.Errorf("import image %s: %w", d.Digest, err)
			}
		default:
			return fmt.Errorf("%w: %s: index.json names %s of media type %q, neither an image nor an index", ErrNotLayout, src, d.Digest, d.MediaType)
		}
		done += d.Size
		progress(done, total)
	}
	return nil
}

// importArchive reads a docker-archive tarball (docker save, podman save,
// skopeo docker-archive:) and appends each image it holds, with its tags as
// org.opencontainers.image.ref.name annotations.
func importArchive(ctx context.Context, src string, dst layout.Path, progress Progress) error {
	opener := func() (io.ReadCloser, error) { return os.Open(src) }
	mf, err := tarball.LoadManifest(opener)
	if err != nil {
		if isOCIArchive(src) {
			return fmt.Errorf("%w: %s is a tar of an OCI layout (oci-archive); unpack it (tar -xf) and import the directory", ErrNotLayout, src)
		}
		return fmt.Errorf("%w: %s is neither an OCI layout directory nor a docker-archive tarball (docker save, podman save): %v", ErrNotLayout, src, err)
	}
	if len(mf) == 0 {
		return fmt.Errorf("%w: %s: the archive's manifest.json lists no image", ErrNotLayout, src)
	}
	// The archive is read about once per image; its size is the work to report.
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	total, done := st.Size(), int64(0)
	for i, desc := range mf {
		if err := ctx.Err(); err != nil {
			return err
		}
		var tag *name.Tag
		if len(desc.RepoTags) > 0 {
			t, err := name.NewTag(desc.RepoTags[0])
			if err != nil {
				return fmt.Errorf("%s: image %d: tag %q: %w", src, i+1, desc.RepoTags[0], err)
			}
			tag = &t
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return fmt.Errorf("%s: image %d: %w", src, i+1, err)
		}
		ann := map[string]string{}
		if len(desc.RepoTags) > 0 {
			ann["org.opencontainers.image.ref.name"] = desc.RepoTags[0]
		}
		if err := dst.AppendImage(img, layout.WithAnnotations(ann)); err != nil {
			return fmt.Errorf("%s: image %d: %w", src, i+1, err)
		}
		done += total / int64(len(mf))
		progress(min(done, total), total)
	}
	progress(total, total)
	return nil
}

// isOCIArchive tells whether the tarball holds an oci-layout file at its top.
func isOCIArchive(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		if filepath.Clean(h.Name) == "oci-layout" {
			return true
		}
	}
}

// Image is an opened, verified image: the manifest for this platform and its
// config.
type Image struct {
	// Dir is the layout directory.
	Dir string
	// Digest is the manifest's digest: the rootfs cache's key.
	Digest v1.Hash
	// Image reads the layers (from Dir).
	Image v1.Image
	// Config is the image's configuration (entrypoint, env, workdir).
	Config *v1.ConfigFile
	// LayersSize is the sum of the layers' (compressed) sizes.
	LayersSize int64

	layers         []v1.Descriptor
	layersVerified bool
}

// Platform is the platform whose manifest Open picks.
func Platform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// Open opens the OCI layout at dir, picks the manifest for platform (nil:
// Platform()) and verifies every blob the image uses (manifest, config,
// layers) against its digest and size before anything reads it.
func Open(dir string, platform *v1.Platform) (*Image, error) {
	img, err := openManifest(dir, platform)
	if err != nil {
		return nil, err
	}
	if err := img.VerifyLayers(); err != nil {
		return nil, err
	}
	return img, nil
}

// VerifyLayers hashes every layer blob against its digest and size. The
// rootfs cache calls it before unpacking an image opened without it: a
// cached rootfs was unpacked from verified layers, and the verified
// manifest names them by digest, so a cache hit needs no rehashing of
// gigabytes.
func (img *Image) VerifyLayers() error {
	if img.layersVerified {
		return nil
	}
	for _, l := range img.layers {
		if err := verifyBlob(img.Dir, l); err != nil {
			return err
		}
	}
	img.layersVerified = true
	return nil
}

// openManifest is Open without the layers' verification: index, manifest
// and config are checked, the layers are left for VerifyLayers.
func openManifest(dir string, platform *v1.Platform) (*Image, error) {
	if platform == nil {
		p := Platform()
		platform = &p
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("%w: %s has no oci-layout file (import images with `vft image import`)", ErrNotLayout, dir)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotLayout, dir, err)
	}
	desc, err := pickManifest(dir, idx, *platform, 0)
	if err != nil {
		return nil, err
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %v", ErrBadBlob, desc.Digest, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %v", ErrBadBlob, desc.Digest, err)
	}
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	if err := verifyBlob(dir, m.Config); err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%w: config %s: %v", ErrBadBlob, m.Config.Digest, err)
	}
	if cfg.OS != "" && cfg.OS != platform.OS || cfg.Architecture != "" && cfg.Architecture != platform.Architecture {
		return nil, fmt.Errorf("%w: the image is for %s/%s, this machine runs %s/%s", ErrPlatform, cfg.OS, cfg.Architecture, platform.OS, platform.Architecture)
	}
	return &Image{Dir: dir, Digest: desc.Digest, Image: img, Config: cfg, LayersSize: size, layers: m.Layers}, nil
}

// pickManifest finds the image manifest for platform in idx, descending
// into nested indexes (a multi-platform image imported as one entry).
func pickManifest(dir string, idx v1.ImageIndex, platform v1.Platform, depth int) (v1.Descriptor, error) {
	if depth > 4 {
		return v1.Descriptor{}, fmt.Errorf("%w: %s: indexes nested more than 4 deep", ErrNotLayout, dir)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("%w: %s: %v", ErrNotLayout, dir, err)
	}
	var seen []string
	for _, d := range im.Manifests {
		if d.MediaType.IsIndex() {
			if err := verifyBlob(dir, d); err != nil {
				return v1.Descriptor{}, err
			}
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return v1.Descriptor{}, fmt.Errorf("%w: index %s: %v", ErrBadBlob, d.Digest, err)
			}
			found, err := pickManifest(dir, child, platform, depth+1)
			if err == nil {
				return found, nil
			}
			if !errors.Is(err, ErrPlatform) {
				return v1.Descriptor{}, err
			}
			seen = append(seen, platformsOf(child)...)
			continue
		}
		if !d.MediaType.IsImage() && d.MediaType != types.OCIManifestSchema1 {
			continue
		}
		if err := verifyBlob(dir, d); err != nil {
			return v1.Descriptor{}, err
		}
		p, err := manifestPlatform(idx, d)
		if err != nil {
			return v1.Descriptor{}, err
		}
		if p.OS == platform.OS && p.Architecture == platform.Architecture &&
			(p.Variant == "" || platform.Variant == "" || p.Variant == platform.Variant) {
			return d, nil
		}
		seen = append(seen, p.OS+"/"+p.Architecture)
	}
	if len(seen) == 0 {
		return v1.Descriptor{}, fmt.Errorf("%w: %s: index.json lists no image manifest", ErrNotLayout, dir)
	}
	slices.Sort(seen)
	return v1.Descriptor{}, fmt.Errorf("%w: this machine runs %s/%s and the image is for %s", ErrPlatform,
		platform.OS, platform.Architecture, strings.Join(slices.Compact(seen), ", "))
}

// manifestPlatform is the descriptor's platform, or, where the index does
// not say (docker save, single-image layouts), the one in the image config.
func manifestPlatform(idx v1.ImageIndex, d v1.Descriptor) (v1.Platform, error) {
	if d.Platform != nil && d.Platform.OS != "" {
		return *d.Platform, nil
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("%w: manifest %s: %v", ErrBadBlob, d.Digest, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return v1.Platform{}, fmt.Errorf("%w: manifest %s: %v", ErrBadBlob, d.Digest, err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return v1.Platform{}, fmt.Errorf("%w: config %s: %v", ErrBadBlob, m.Config.Digest, err)
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(raw)))
	if err != nil {
		return v1.Platform{}, fmt.Errorf("%w: config %s: %v", ErrBadBlob, m.Config.Digest, err)
	}
	return v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}, nil
}

func platformsOf(idx v1.ImageIndex) []string {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range im.Manifests {
		if d.Platform != nil {
			out = append(out, d.Platform.OS+"/"+d.Platform.Architecture)
		}
	}
	return out
}

// verifyBlob hashes the blob file of d and compares digest and size. Only
// sha256 is accepted: it is what every tool writes.
func verifyBlob(dir string, d v1.Descriptor) error {
	if d.Digest.Algorithm != "sha256" || len(d.Digest.Hex) != 64 {
		return fmt.Errorf("%w: digest %s: only sha256 digests are supported", ErrBadBlob, d.Digest)
	}
	if _, err := hex.DecodeString(d.Digest.Hex); err != nil {
		return fmt.Errorf("%w: digest %s is not hexadecimal", ErrBadBlob, d.Digest)
	}
	p := filepath.Join(dir, "blobs", "sha256", d.Digest.Hex)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: blob %s is missing from the layout (re-import the image)", ErrBadBlob, d.Digest)
		}
		return fmt.Errorf("%w: blob %s: %v", ErrBadBlob, d.Digest, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("%w: read blob %s: %v", ErrBadBlob, d.Digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex {
		return fmt.Errorf("%w: blob %s is corrupt: its content hashes to sha256:%s", ErrBadBlob, d.Digest, got)
	}
	if d.Size != 0 && n != d.Size {
		return fmt.Errorf("%w: blob %s holds %d bytes, its descriptor says %d", ErrBadBlob, d.Digest, n, d.Size)
	}
	return nil
}
