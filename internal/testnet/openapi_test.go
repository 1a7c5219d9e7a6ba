package testnet

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
)

// Real nodes' answers match the API's OpenAPI document (api/openapi.json),
// after a real job: records with workers, reports, commitments and a
// verdict, heartbeats in the network table, reputation, a reachability
// report. The api package checks every route against fakes; this checks
// what the fakes cannot produce.
func TestOpenAPIRealNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 2, nil)
	submitter := nodes[2]
	dir := "../../examples/wordcount"
	spec := wasmSpec(2, 3*time.Minute)
	spec.Module, spec.Seed = addModule(ctx, t, submitter, dir), 42
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, filepath.Join(dir, "testdata"))}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	waitState(ctx, t, submitter, id, job.StateDone)
	waitState(ctx, t, nodes[0], id, job.StateDone)

	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	for name, nd := range map[string]*node.Node{"submitter": submitter, "miner": nodes[0]} {
		t.Run(name, func(t *testing.T) {
			doc.Servers = openapi3.Servers{{URL: "http://" + nd.APIAddr()}}
			router, err := gorillamux.NewRouter(doc)
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/api/v1/id", "/api/v1/peers", "/api/v1/nodes", "/api/v1/health", "/api/v1/reputation",
				"/api/v1/jobs", "/api/v1/jobs/" + id, "/api/v1/pin/ls", "/api/v1/repo/stat", "/api/v1/earnings", "/api/v1/wallet", "/api/v1/images"} {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+nd.APIAddr()+path, nil)
				req.Header.Set("Authorization", "Bearer "+mustToken(t, nd))
				route, params, err := router.FindRoute(req)
				if err != nil {
					t.Fatalf("%s: not in the document: %v", path, err)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				in := &openapi3filter.ResponseValidationInput{
					RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
						Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
					Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)),
					Options: &openapi3filter.Options{IncludeResponseStatus: true},
				}
				if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
					t.Errorf("GET %s (%d) does not match api/openapi.json: %v\n%.2000s", path, resp.StatusCode, err, body)
				}
			}
		})
	}
}
