package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ReadFunc reads the file at path (slash-separated, relative to the
// layout's root: "index.json", "blobs/sha256/<hex>") of at most max bytes.
// `vft image ls` reads a layout stored as UnixFS through it, without
// writing it out.
type ReadFunc func(ctx context.Context, path string, max int64) ([]byte, error)

// maxMetadataBlob bounds an index, manifest or config read to describe
// an image: real ones are kilobytes.
const maxMetadataBlob = 4 << 20

// Summary describes an OCI image layout for `vft image ls`.
type Summary struct {
	Manifests []ManifestSummary
	// Size is the sum of the distinct blobs' sizes the manifests name
	// (indexes, manifests, configs, layers): what the image takes to fetch.
	Size int64
}

// ManifestSummary is one image of a layout.
type ManifestSummary struct {
	Digest string
	// Platform is "os/arch" or "os/arch/variant"; "" where neither the
	// index nor the config says.
	Platform string
	// Size is the manifest's own size plus its config's and layers'.
	Size int64
}

// Describe lists the images of an OCI layout read through read: each
// manifest's digest, platform and size, descending into nested indexes.
// It reads only the small JSON blobs, never a layer, and checks no
// digests (a miner does that before running one): it is a listing.
// Attestation manifests (docker buildx's "unknown/unknown") are left out.
func Describe(ctx context.Context, read ReadFunc) (Summary, error) {
	if _, err := read(ctx, "oci-layout", 4096); err != nil {
		return Summary{}, fmt.Errorf("%w: no oci-layout file: %v", ErrNotLayout, err)
	}
	raw, err := read(ctx, "index.json", maxMetadataBlob)
	if err != nil {
		return Summary{}, fmt.Errorf("%w: index.json: %v", ErrNotLayout, err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return Summary{}, fmt.Errorf("%w: index.json: %v", ErrNotLayout, err)
	}
	d := describer{read: read, blobs: map[v1.Hash]int64{}}
	if err := d.index(ctx, idx, 0); err != nil {
		return Summary{}, err
	}
	var s Summary
	s.Manifests = d.manifests
	for _, size := range d.blobs {
		s.Size += size
	}
	return s, nil
}

type describer struct {
	read      ReadFunc
	manifests []ManifestSummary
	blobs     map[v1.Hash]int64 // distinct blobs, for the image's size
}

func (d *describer) blob(ctx context.Context, desc v1.Descriptor) ([]byte, error) {
	if desc.Digest.Algorithm != "sha256" || len(desc.Digest.Hex) != 64 {
		return nil, fmt.Errorf("%w: digest %s: only sha256 digests are supported", ErrBadBlob, desc.Digest)
	}
	if desc.Size < 0 || desc.Size > maxMetadataBlob {
		return nil, fmt.Errorf("%w: %s declares %d bytes, more than an index, manifest or config has", ErrBadBlob, desc.Digest, desc.Size)
	}
	data, err := d.read(ctx, "blobs/sha256/"+desc.Digest.Hex, maxMetadataBlob)
	if err != nil {
		return nil, fmt.Errorf("%w: blob %s: %v", ErrBadBlob, desc.Digest, err)
	}
	return data, nil
}

func (d *describer) index(ctx context.Context, idx *v1.IndexManifest, depth int) error {
	if depth > 4 {
		return fmt.Errorf("%w: indexes nested more than 4 deep", ErrNotLayout)
	}
	for _, m := range idx.Manifests {
		if m.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		if _, seen := d.blobs[m.Digest]; seen {
			continue // listed already: an index naming one blob many times is read once
		}
		switch {
		case m.MediaType.IsIndex():
			raw, err := d.blob(ctx, m)
			if err != nil {
				return err
			}
			child, err := v1.ParseIndexManifest(bytes.NewReader(raw))
			if err != nil {
				return fmt.Errorf("%w: index %s: %v", ErrBadBlob, m.Digest, err)
			}
			d.blobs[m.Digest] = m.Size
			if err := d.index(ctx, child, depth+1); err != nil {
				return err
			}
		case m.MediaType.IsImage():
			if err := d.image(ctx, m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *describer) image(ctx context.Context, desc v1.Descriptor) error {
	raw, err := d.blob(ctx, desc)
	if err != nil {
		return err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: manifest %s: %v", ErrBadBlob, desc.Digest, err)
	}
	var p *v1.Platform
	if desc.Platform != nil && desc.Platform.OS != "" {
		p = desc.Platform
	} else if cfgRaw, err := d.blob(ctx, m.Config); err == nil {
		// docker save and single-image layouts name the platform only in
		// the config.
		var cfg struct{ OS, Architecture, Variant string }
		if json.Unmarshal(cfgRaw, &cfg) == nil && cfg.OS != "" {
			p = &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		}
	}
	platform := ""
	if p != nil {
		platform = p.OS + "/" + p.Architecture
		if p.Variant != "" {
			platform += "/" + p.Variant
		}
	}
	for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if b.Size < 0 {
			return fmt.Errorf("%w: manifest %s gives blob %s a negative size", ErrBadBlob, desc.Digest, b.Digest)
		}
	}
	size := desc.Size + m.Config.Size
	d.blobs[desc.Digest] = desc.Size
	d.blobs[m.Config.Digest] = m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
		d.blobs[l.Digest] = l.Size
	}
	s := ManifestSummary{Digest: desc.Digest.String(), Platform: platform, Size: size}
	if !slices.Contains(d.manifests, s) {
		d.manifests = append(d.manifests, s)
	}
	return nil
}
