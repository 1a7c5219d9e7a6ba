package api

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
)

var updateOpenAPI = flag.Bool("update", false, "rewrite api/openapi.json from the Go types")

// The committed document is what buildOpenAPI makes from today's types.
func TestOpenAPIDocumentCurrent(t *testing.T) {
	doc, err := buildOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, '\n')
	if *updateOpenAPI {
		if err := os.WriteFile("openapi.json", data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(data) != string(openAPIDocument) {
		t.Fatal("api/openapi.json is stale: the routes or their Go types changed. Run `go test ./api -run TestOpenAPIDocumentCurrent -update` and commit it")
	}
}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("api/openapi.json does not load: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("api/openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// Every route a fully configured server registers is in the document.
func TestOpenAPIDocumentCoversEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	s, _ := startFullServer(t, func(s *Server) { s.ServeEarnings(fakeEarnings{}) })
	for _, pattern := range s.Routes() {
		method, path := openAPIPath(pattern)
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(strings.ToUpper(method)) == nil {
			t.Errorf("the server registers %q but api/openapi.json has no %s %s: add it to routes in api/openapi_gen_test.go and run `go test ./api -run TestOpenAPIDocumentCurrent -update`", pattern, strings.ToUpper(method), path)
		}
	}
	if len(s.Routes()) < 25 {
		t.Fatalf("only %d routes recorded: %v", len(s.Routes()), s.Routes())
	}
}

type fakeEarnings struct{}

func (fakeEarnings) Earnings(context.Context, int) (Earnings, error) {
	return Earnings{Wallet: "W", Earned: []Total{{Currency: units.SOL, Amount: 5000, Jobs: 1}}}, nil
}

// richJobs answers with a record that has most fields set, and a null
// slice where Go leaves one nil.
type richJobs struct{ fakeJobs }

func (richJobs) List(context.Context) ([]job.Record, error) {
	rec, _ := richJobs{}.Status(context.Background(), "j1")
	return []job.Record{rec}, nil
}
func (richJobs) Status(_ context.Context, id string) (job.Record, error) {
	if id != "j1" {
		return job.Record{}, job.ErrNoJob
	}
	return job.Record{ID: "j1", Role: job.RoleSubmitter, State: job.StateDone, Offer: []byte{1, 2}, Result: "bafyresult",
		Reports: map[string]string{"12D3KooWa": "bafyresult"}, Verdict: &job.VerdictRecord{Accepted: "bafyresult", Agreed: []string{"12D3KooWa"}},
		Payouts: []job.Payout{{}}, History: []job.Change{{State: job.StateDone, At: time.Now()}}, UpdatedAt: time.Now()}, nil
}

// ndjsonDecoder checks every line of a streamed answer against the
// document's line schema and hands the last line to ValidateResponse.
func ndjsonDecoder(body io.Reader, h http.Header, schema *openapi3.SchemaRef, enc openapi3filter.EncodingFn) (any, error) {
	var last any
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("line %q: %w", sc.Text(), err)
		}
		if err := schema.Value.VisitJSON(v); err != nil {
			return nil, fmt.Errorf("line %q: %w", sc.Text(), err)
		}
		last = v
	}
	return last, sc.Err()
}

// Real requests to a real server (with the api tests' fakes behind it);
// every answer, errors included, must match its schema in the document.
func TestOpenAPIResponsesMatchDocument(t *testing.T) {
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", ndjsonDecoder)
	doc := loadOpenAPI(t)
	hub := NewHub(HubConfig{}, slog.New(slog.DiscardHandler))
	s, err := New(Config{Listen: "127.0.0.1:0"}, &fakeBackend{}, testToken, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.ServeContent(&fakeContent{})
	s.ServeJobs(&richJobs{})
	s.ServeWallet(fakeWallet{})
	s.ServeEarnings(fakeEarnings{})
	s.ServeReputation(fakeReputation{})
	s.ServeEvents(hub)
	s.ServeDashboard()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	hub.Publish(EventStatus, Status{Time: time.Now(), Peers: 1})
	// The server answers with "127.0.0.1:port"; the document's server is
	// an example address, so route against a copy naming this one.
	doc.Servers = openapi3.Servers{{URL: "http://" + s.Addr()}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	specJSON, _ := json.Marshal(job.Spec{Executor: "wasm", Module: "bafymodule"})
	cases := []struct {
		method, path, body string
		token              string
		want               int
		skipBody           bool // streams that never end, and static files
	}{
		{"GET", "/api/v1/id", "", testToken, 200, false},
		{"GET", "/api/v1/id", "", "", 401, false},
		{"GET", "/api/v1/peers", "", testToken, 200, false},
		{"GET", "/api/v1/nodes", "", testToken, 200, false},
		{"GET", "/api/v1/health", "", "", 200, false},
		{"GET", "/api/v1/openapi.json", "", testToken, 200, false},
		{"GET", "/metrics", "", testToken, 200, true},
		{"POST", "/api/v1/swarm/connect", `{"addr":"/ip4/127.0.0.1/tcp/1"}`, testToken, 200, false},
		{"POST", "/api/v1/swarm/connect", `{"addr":"bad"}`, testToken, 502, false},
		{"POST", "/api/v1/swarm/connect", `{"nope":1}`, testToken, 400, false},
		{"POST", "/api/v1/add", `{"path":"/tmp/x"}`, testToken, 200, false},
		{"POST", "/api/v1/add", `{"path":"x"}`, testToken, 400, false},
		{"POST", "/api/v1/get", `{"cid":"bafy","output":"/tmp/x"}`, testToken, 200, false},
		{"POST", "/api/v1/pin/add", `{"cid":"bafy"}`, testToken, 200, false},
		{"POST", "/api/v1/pin/rm", `{"cid":"bafy"}`, testToken, 200, false},
		{"GET", "/api/v1/pin/ls", "", testToken, 200, false},
		{"POST", "/api/v1/repo/gc", "", testToken, 200, false},
		{"GET", "/api/v1/repo/stat", "", testToken, 200, false},
		{"GET", "/api/v1/images", "", testToken, 200, false},
		{"POST", "/api/v1/jobs", string(specJSON), testToken, 200, false},
		{"POST", "/api/v1/jobs/file", `{"path":"job.toml"}`, testToken, 400, false},
		{"GET", "/api/v1/jobs", "", testToken, 200, false},
		{"GET", "/api/v1/jobs/j1", "", testToken, 200, false},
		{"GET", "/api/v1/jobs/nope", "", testToken, 422, false},
		{"POST", "/api/v1/jobs/j1/cancel", `{"reason":"test"}`, testToken, 200, false},
		{"GET", "/api/v1/reputation", "", testToken, 200, false},
		{"GET", "/api/v1/wallet", "", testToken, 200, false},
		{"GET", "/api/v1/earnings?recent=5", "", testToken, 200, false},
		{"GET", "/api/v1/earnings?recent=x", "", testToken, 400, false},
		{"POST", "/api/v1/events/ticket", "", testToken, 200, false},
		{"GET", "/api/v1/events", "", testToken, 200, true},
		{"GET", "/", "", "", 200, true},
		{"GET", "/assets/app.js", "", "", 200, true},
	}
	client := &http.Client{Timeout: 20 * time.Second}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s %d", tc.method, tc.path, tc.want), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, tc.method, "http://"+s.Addr()+tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			route, pathParams, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("the document has no route for it: %v", err)
			}
			if tc.want < 300 {
				// What the server accepted, the document must accept too.
				check, _ := http.NewRequest(tc.method, req.URL.String(), strings.NewReader(tc.body))
				check.Header = req.Header.Clone()
				in := &openapi3filter.RequestValidationInput{Request: check, PathParams: pathParams, Route: route,
					Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
				if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
					t.Fatalf("the document refuses a request the server accepts: %v", err)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			input := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route,
					Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
				Status: resp.StatusCode, Header: resp.Header,
				Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: tc.skipBody},
			}
			if tc.skipBody {
				input.SetBodyBytes(nil)
			} else {
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				input.SetBodyBytes(body)
			}
			if err := openapi3filter.ValidateResponse(ctx, input); err != nil {
				t.Fatalf("the answer does not match api/openapi.json: %v", err)
			}
			if tc.path == "/api/v1/events" {
				checkStatusEvent(t, doc, resp.Body)
			}
		})
	}
}

// checkStatusEvent reads the live feed up to its first status event and
// validates its data against the Status schema.
func checkStatusEvent(t *testing.T, doc *openapi3.T, body io.Reader) {
	t.Helper()
	r := bufio.NewReader(body)
	typ, data := readEvent(t, r)
	if typ != EventStatus {
		t.Fatalf("first event %q, want status", typ)
	}
	var v any
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatal(err)
	}
	if err := doc.Components.Schemas["Status"].Value.VisitJSON(v); err != nil {
		t.Fatalf("status event does not match the Status schema: %v", err)
	}
}
