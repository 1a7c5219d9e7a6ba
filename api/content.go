package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"
)

// Content is the content store the API serves: `vft add`, `get`, `pin`,
// `repo`. The node implements it over storage/.
type Content interface {
	// Add imports req.Path (pinned unless req.NoPin).
	Add(ctx context.Context, req AddRequest, progress func(done, total int64)) (AddResult, error)
	// Get writes req.CID to req.Output within req's limits.
	Get(ctx context.Context, req GetRequest, progress func(done, total int64)) (GetResult, error)
	// Pin fetches what is missing of cid, reporting progress as Get does,
	// and pins it.
	Pin(ctx context.Context, cid string, progress func(done, total int64)) error
	Unpin(ctx context.Context, cid string) error
	Pins(ctx context.Context) ([]string, error)
	GC(ctx context.Context) (GCResult, error)
	Stat(ctx context.Context) (RepoStat, error)
	// Images are the pinned OCI image layouts.
	Images
}

// GetResult reports a finished `vft get`.
type GetResult struct {
	CID     string `json:"cid"`
	Output  string `json:"output"`
	Blocks  int    `json:"blocks"`
	Bytes   int64  `json:"bytes"`
	Fetched int    `json:"fetched"` // blocks from the network; the rest were already here
}

// GCResult reports a garbage collection.
type GCResult struct {
	Blocks int   `json:"blocks_removed"`
	Bytes  int64 `json:"bytes_freed"`
}

// RepoStat describes the content store.
type RepoStat struct {
	Blocks        int64 `json:"blocks"`
	Bytes         int64 `json:"bytes"`
	Pins          int   `json:"pins"`
	MaxBytes      int64 `json:"max_bytes"`
	CorruptBlocks int64 `json:"corrupt_blocks"`
}

// AddRequest is the body of POST /api/v1/add. The path is on the daemon's
// machine (this machine: the API is loopback only) and must be readable by
// the daemon's user.
type AddRequest struct {
	Path  string `json:"path"`
	NoPin bool   `json:"no_pin"`
	// Hidden imports files and directories whose names start with a dot,
	// as `ipfs add --hidden` does; without it they are skipped (unless
	// storage.include_hidden is set) and counted in AddResult.
	Hidden bool `json:"hidden,omitempty"`
	// Image records the import time of the result, an OCI image layout
	// (`vft image import`), for `vft image ls`.
	Image bool `json:"image,omitempty"`
}

// AddResult reports a finished `vft add`.
type AddResult struct {
	CID string `json:"cid"`
	// HiddenSkipped counts the dot files and directories (a directory
	// counts once) left out of the import.
	HiddenSkipped int `json:"hidden_skipped,omitempty"`
}

// GetRequest is the body of POST /api/v1/get.
type GetRequest struct {
	CID    string `json:"cid"`
	Output string `json:"output"`
	// MaxBytes bounds the file content written; 0 means the free space on
	// the output's file system less a reserve. A DAG declaring more is
	// refused before anything is written (a few blocks can declare a TiB).
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// MaxEntries bounds the files and directories written; 0 means 1048576.
	MaxEntries int64 `json:"max_entries,omitempty"`
}

// CIDRequest names one CID (pin add, pin rm).
type CIDRequest struct {
	CID string `json:"cid"`
}

// Event is one line of a streamed answer (application/x-ndjson): progress
// lines, then one line with the result or the error.
type Event struct {
	Done   int64           `json:"done,omitempty"`
	Total  int64           `json:"total,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// ServeContent adds the content endpoints.
func (s *Server) ServeContent(c Content) {
	s.content = c
	s.Handle("POST /api/v1/add", func(w http.ResponseWriter, r *http.Request) {
		var req AddRequest
		if err := decodeJSON(r, &req); err != nil {
			writeDecodeError(w, err)
			return
		}
		if !filepath.IsAbs(req.Path) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("path %q is not absolute", req.Path))
			return
		}
		stream(w, r, func(ctx context.Context, progress func(int64, int64)) (any, error) {
			return c.Add(ctx, req, progress)
		})
	})
	s.Handle("POST /api/v1/get", func(w http.ResponseWriter, r *http.Request) {
		var req GetRequest
		if err := decodeJSON(r, &req); err != nil {
			writeDecodeError(w, err)
			return
		}
		if !filepath.IsAbs(req.Output) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("output %q is not absolute", req.Output))
			return
		}
		if req.MaxBytes < 0 || req.MaxEntries < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("max_bytes %d and max_entries %d must not be negative (0: the default)", req.MaxBytes, req.MaxEntries))
			return
		}
		stream(w, r, func(ctx context.Context, progress func(int64, int64)) (any, error) {
			return c.Get(ctx, req, progress)
		})
	})
	// Pinning fetches what is missing, which takes as long as a get: it
	// streams progress the same way.
	s.Handle("POST /api/v1/pin/add", func(w http.ResponseWriter, r *http.Request) {
		var req CIDRequest
		if err := decodeJSON(r, &req); err != nil {
			writeDecodeError(w, err)
			return
		}
		stream(w, r, func(ctx context.Context, progress func(int64, int64)) (any, error) {
			return req, c.Pin(ctx, req.CID, progress)
		})
	})
	s.Handle("POST /api/v1/pin/rm", s.cidCall(c.Unpin))
	s.Handle("GET /api/v1/pin/ls", func(w http.ResponseWriter, r *http.Request) {
		pins, err := c.Pins(r.Context())
		respond(w, pins, err)
	})
	s.Handle("POST /api/v1/repo/gc", func(w http.ResponseWriter, r *http.Request) {
		res, err := c.GC(r.Context())
		respond(w, res, err)
	})
	s.Handle("GET /api/v1/repo/stat", func(w http.ResponseWriter, r *http.Request) {
		st, err := c.Stat(r.Context())
		respond(w, st, err)
	})
	s.serveImages(c)
}

func (s *Server) cidCall(call func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req CIDRequest
		if err := decodeJSON(r, &req); err != nil {
			writeDecodeError(w, err)
			return
		}
		respond(w, req, call(r.Context(), req.CID))
	}
}

func respond(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if v == nil {
		v = []string{}
	}
	writeJSON(w, http.StatusOK, v)
}

// stream runs a long operation, sending progress at most every 200 ms and
// then its result as newline-delimited JSON. Closing the request (Ctrl-C in
// the CLI) cancels the operation.
func stream(w http.ResponseWriter, r *http.Request, run func(context.Context, func(done, total int64)) (any, error)) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	var mu sync.Mutex
	send := func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(e)
		if flusher != nil {
			flusher.Flush()
		}
	}
	var last time.Time
	progress := func(done, total int64) {
		mu.Lock()
		due := time.Since(last) >= 200*time.Millisecond
		if due {
			last = time.Now()
		}
		mu.Unlock()
		if due {
			send(Event{Done: done, Total: total})
		}
	}
	res, err := run(r.Context(), progress)
	if err != nil {
		send(Event{Error: err.Error()})
		return
	}
	data, err := json.Marshal(res)
	if err != nil {
		send(Event{Error: err.Error()})
		return
	}
	send(Event{Result: data})
}

// errStreamEnded reports a stream that stopped without a result line.
var errStreamEnded = errors.New("the daemon closed the connection before answering (did it stop?)")
