package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vft-network/vft/job"
)

// fuzzRoutes are the endpoints that decode a JSON body.
var fuzzRoutes = []string{
	"/api/v1/swarm/connect",
	"/api/v1/add",
	"/api/v1/get",
	"/api/v1/pin/add",
	"/api/v1/pin/rm",
	"/api/v1/jobs",
	"/api/v1/jobs/j1/cancel",
}

// exampleSpecJSON is a real job spec as `vft job submit` sends it: an
// example job.toml resolved with made-up CIDs.
func exampleSpecJSON(f *testing.F, path string) []byte {
	f.Helper()
	fs, err := job.LoadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	for _, p := range []string{"module.wasm", "testdata/bell"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o700)
		os.WriteFile(filepath.Join(dir, p), nil, 0o600)
	}
	fs.Module, fs.Inputs = "module.wasm", []string{"testdata/"}
	spec, err := fs.Resolve(dir, func(string) (string, error) {
		return "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", nil
	}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// Every JSON body the API accepts, through the real handlers (guard, body
// limit, strict decoding), with the token: whatever the body, the answer
// is a JSON (or NDJSON) document with a status the API documents, never a
// panic or a 5xx of its own.
func FuzzRequestBodies(f *testing.F) {
	s, err := New(Config{Listen: "127.0.0.1:0"}, &fakeBackend{}, testToken, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	s.ServeContent(&fakeContent{})
	s.ServeJobs(&fakeJobs{})
	s.allowed = map[string]bool{"127.0.0.1:1": true}
	h := s.guard(s.mux)

	seeds := map[int][]string{
		0: {`{"addr":"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"}`, `{"addr":"bad"}`},
		1: {`{"path":"/home/u/data","no_pin":true}`, `{"path":"relative"}`},
		2: {`{"cid":"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy","output":"/tmp/out"}`},
		3: {`{"cid":"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}`},
		4: {`{"cid":""}`},
		6: {`{"reason":"cancelled from the dashboard"}`, `{"reason":"x"}{"reason":"y"}`, `{"reason":1}`, `{"unknown":true}`},
	}
	for _, ex := range []string{"wordcount", "qsim", "matmul", "nninfer"} {
		seeds[5] = append(seeds[5], string(exampleSpecJSON(f, "../examples/"+ex+"/job.toml")))
	}
	for route, bodies := range seeds {
		for _, b := range bodies {
			f.Add(uint8(route), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest("POST", "http://127.0.0.1:1"+path, bytes.NewReader(body))
		req.Host = "127.0.0.1:1"
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusBadGateway:
		default:
			t.Fatalf("%s %q: status %d: %s", path, body, rec.Code, rec.Body)
		}
		dec := json.NewDecoder(rec.Body)
		for dec.More() {
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%s %q: answer is not JSON: %v", path, body, err)
			}
		}
	})
}
