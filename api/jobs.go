package api

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
)

// Jobs is the job market the API serves: `vft job ...`.
type Jobs interface {
	Submit(ctx context.Context, spec job.Spec) (id string, err error)
	List(ctx context.Context) ([]job.Record, error)
	Status(ctx context.Context, id string) (job.Record, error)
	Cancel(ctx context.Context, id, reason string) error
}

// CancelRequest is the body of POST /api/v1/jobs/{id}/cancel.
type CancelRequest struct {
	Reason string `json:"reason"`
}

// SubmitResponse answers POST /api/v1/jobs.
type SubmitResponse struct {
	ID string `json:"id"`
}

// ServeJobs adds the job endpoints.
func (s *Server) ServeJobs(j Jobs) {
	s.Handle("POST /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var spec job.Spec
		if err := decodeJSON(r, &spec); err != nil {
			writeDecodeError(w, err)
			return
		}
		id, err := j.Submit(r.Context(), spec)
		respond(w, SubmitResponse{ID: id}, err)
	})
	s.Handle("POST /api/v1/jobs/file", func(w http.ResponseWriter, r *http.Request) {
		var req SubmitFileRequest
		if err := decodeJSON(r, &req); err != nil {
			writeDecodeError(w, err)
			return
		}
		spec, err := s.resolveJobFile(r.Context(), req)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		id, err := j.Submit(r.Context(), spec)
		respond(w, SubmitResponse{ID: id}, err)
	})
	s.Handle("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		list, err := j.List(r.Context())
		if list == nil {
			list = []job.Record{}
		}
		respond(w, list, err)
	})
	s.Handle("POST /api/v1/jobs/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		var req CancelRequest
		if err := decodeJSON(r, &req); err != nil {
			writeDecodeError(w, err)
			return
		}
		respond(w, req, j.Cancel(r.Context(), r.PathValue("id"), req.Reason))
	})
	s.Handle("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec, err := j.Status(r.Context(), r.PathValue("id"))
		if err != nil {
			respond(w, nil, err)
			return
		}
		st := JobStatus{Record: rec}
		if c, ok := j.(Currencies); ok {
			cur := c.Currency(r.Context(), rec)
			st.Currency = &cur
		}
		respond(w, st, nil)
	})
}

// JobStatus is what GET /api/v1/jobs/{id} returns: the record, and the
// currency its payouts' base-unit amounts are in.
type JobStatus struct {
	job.Record
	Currency *units.Currency `json:"currency,omitempty"`
}

// Currencies is what a Jobs may also say: the currency a job pays in
// (SOL, or its mint with the mint's decimals).
type Currencies interface {
	Currency(ctx context.Context, rec job.Record) units.Currency
}

// SubmitFileRequest is the body of POST /api/v1/jobs/file: a job spec file
// (job.FileSpec, the TOML `vft job submit` reads) on this machine, resolved
// by the daemon exactly as the CLI does it. SDKs use it so that they need
// no TOML parser and cannot drift from the CLI's defaults.
type SubmitFileRequest struct {
	// Path is the spec file's absolute path; its relative paths are
	// relative to its directory.
	Path string `json:"path"`
}

// resolveJobFile loads and resolves a spec file, adding its module and
// inputs to the content store.
func (s *Server) resolveJobFile(ctx context.Context, req SubmitFileRequest) (job.Spec, error) {
	if !filepath.IsAbs(req.Path) {
		return job.Spec{}, fmt.Errorf("path %q is not absolute: send the spec file's absolute path", req.Path)
	}
	if s.content == nil {
		return job.Spec{}, fmt.Errorf("this node serves no content store, so it cannot add the files %s names", req.Path)
	}
	fileSpec, err := job.LoadFile(req.Path)
	if err != nil {
		return job.Spec{}, err
	}
	return fileSpec.Resolve(filepath.Dir(req.Path), func(path string) (string, error) {
		res, err := s.content.Add(ctx, AddRequest{Path: strings.TrimSuffix(path, "/")}, func(int64, int64) {})
		return res.CID, err
	}, time.Now())
}
