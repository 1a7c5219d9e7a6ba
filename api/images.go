package api

import (
	"context"
	"net/http"
	"time"
)

// Image is one container image this node holds: a pinned CID that is an
// OCI image layout (`vft image ls`).
type Image struct {
	CID       string          `json:"cid"`
	Manifests []ImageManifest `json:"manifests"`
	// Size is the sum of the distinct blobs' sizes (compressed layers,
	// configs, manifests): what a miner fetches to run it.
	Size int64 `json:"size"`
	// ImportedAt is when `vft image import` added it on this node; absent
	// for images pinned otherwise (`vft pin add`, a fetch for a job).
	ImportedAt *time.Time `json:"imported_at,omitempty"`
	// Error says why the layout could not be described (a missing or
	// unreadable index, manifest or config); the other fields are then
	// what is known.
	Error string `json:"error,omitempty"`
}

// ImageManifest is one image of a layout: one per platform.
type ImageManifest struct {
	Digest string `json:"digest"`
	// Platform is "os/arch" or "os/arch/variant"; "" where the image does
	// not say.
	Platform string `json:"platform"`
	Size     int64  `json:"size"`
}

// Images lists the container images among the pinned content: the
// content store's half of `vft image ls`.
type Images interface {
	Images(ctx context.Context) ([]Image, error)
}

// serveImages adds GET /api/v1/images.
func (s *Server) serveImages(im Images) {
	s.Handle("GET /api/v1/images", func(w http.ResponseWriter, r *http.Request) {
		list, err := im.Images(r.Context())
		if list == nil {
			list = []Image{}
		}
		respond(w, list, err)
	})
}
