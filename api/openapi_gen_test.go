package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"

	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/verify"
)

// route documents one endpoint of the API for the OpenAPI document.
type route struct {
	pattern string // as registered: "METHOD /path"
	id      string // operationId
	summary string
	// request is the JSON body's Go type (nil: no body).
	request any
	// response is the 200 answer's Go type; its media type is kind's.
	response any
	kind     mediaKind
	params   []*openapi3.Parameter
	// errors are the non-2xx statuses the handler itself answers, each
	// with an ErrorResponse (401, 403 and 413 come from the guard).
	errors []int
	public bool
}

type mediaKind int

const (
	mediaJSON   mediaKind = iota
	mediaNDJSON           // progress lines (Event), then the result or error
	mediaSSE              // Server-Sent Events
	mediaHTML
	mediaText
	mediaAny // static files
)

var jobID = openapi3.NewPathParameter("id").WithSchema(openapi3.NewStringSchema()).WithDescription("the job's ID")

// routes is every endpoint, in the order the document lists them.
var routes = []route{
	{pattern: "GET /api/v1/id", id: "getIdentity", summary: "This node's identity: peer ID, wallet, mode, version, addresses and reachability.", response: Identity{}},
	{pattern: "GET /api/v1/peers", id: "listPeers", summary: "Connected peers.", response: []Peer{}},
	{pattern: "POST /api/v1/swarm/connect", id: "connect", summary: "Dial a peer by multiaddr.", request: ConnectRequest{}, response: ConnectResponse{}, errors: []int{400, 502}},
	{pattern: "GET /api/v1/nodes", id: "listNodes", summary: "The live network table from heartbeats, with this node's reputation of each.", response: []NodeEntry{}},
	{pattern: "GET /api/v1/health", id: "getHealth", summary: "Peer and node counts and clock skew (no token needed).", response: Health{}, public: true},
	{pattern: "GET /api/v1/openapi.json", id: "getOpenAPI", summary: "This document.", response: map[string]any{}},
	{pattern: "GET /metrics", id: "getMetrics", summary: "Prometheus metrics (text exposition format).", kind: mediaText},
	{pattern: "POST /api/v1/add", id: "add", summary: "Import a file or directory on this machine (an absolute path the daemon can read) into the content store. Streams progress lines, then one line whose result is an AddResult.", request: AddRequest{}, response: AddResult{}, kind: mediaNDJSON, errors: []int{400}},
	{pattern: "POST /api/v1/get", id: "get", summary: "Write a CID's content to an absolute path on this machine, fetching what is missing. Streams progress lines, then one line whose result is a GetResult.", request: GetRequest{}, response: GetResult{}, kind: mediaNDJSON, errors: []int{400}},
	{pattern: "POST /api/v1/pin/add", id: "pinAdd", summary: "Fetch what is missing of a CID and pin it. Streams progress lines, then one line whose result echoes the CIDRequest.", request: CIDRequest{}, response: CIDRequest{}, kind: mediaNDJSON, errors: []int{400}},
	{pattern: "POST /api/v1/pin/rm", id: "pinRemove", summary: "Unpin a CID.", request: CIDRequest{}, response: CIDRequest{}, errors: []int{400, 422}},
	{pattern: "GET /api/v1/pin/ls", id: "pinList", summary: "Pinned CIDs.", response: []string{}, errors: []int{422}},
	{pattern: "POST /api/v1/repo/gc", id: "repoGC", summary: "Remove unpinned blocks.", response: GCResult{}, errors: []int{422}},
	{pattern: "GET /api/v1/images", id: "imageList", summary: "Container images this node holds: the pinned CIDs that are OCI image layouts, with their manifests, platforms, sizes and import times.", response: []Image{}, errors: []int{422}},
	{pattern: "GET /api/v1/repo/stat", id: "repoStat", summary: "Content store size and health.", response: RepoStat{}, errors: []int{422}},
	{pattern: "POST /api/v1/jobs", id: "submitJob", summary: "Offer a job (a resolved job.Spec: module and inputs by CID).", request: job.Spec{}, response: SubmitResponse{}, errors: []int{400, 422}},
	{pattern: "POST /api/v1/jobs/file", id: "submitJobFile", summary: "Offer a job from a spec file on this machine (the TOML of `vft job submit`), resolved by the daemon as the CLI does: its module and inputs are added first.", request: SubmitFileRequest{}, response: SubmitResponse{}, errors: []int{400, 422}},
	{pattern: "GET /api/v1/jobs", id: "listJobs", summary: "Every job this node knows, as submitter or worker.", response: []job.Record{}, errors: []int{422}},
	{pattern: "GET /api/v1/jobs/{id}", id: "getJob", summary: "One job's record and the currency of its payouts.", response: JobStatus{}, params: []*openapi3.Parameter{jobID}, errors: []int{422}},
	{pattern: "POST /api/v1/jobs/{id}/cancel", id: "cancelJob", summary: "Cancel a job this node submitted.", request: CancelRequest{}, response: CancelRequest{}, params: []*openapi3.Parameter{jobID}, errors: []int{400, 422}},
	{pattern: "GET /api/v1/reputation", id: "getReputation", summary: "Every peer this node rated, best first.", response: []verify.Entry{}},
	{pattern: "GET /api/v1/wallet", id: "getWallet", summary: "The node's wallet address and balances, read from the chain.", response: WalletInfo{}, errors: []int{503}},
	{pattern: "GET /api/v1/earnings", id: "getEarnings", summary: "What this node earned as a worker and paid as a submitter.", response: Earnings{}, errors: []int{400, 422},
		params: []*openapi3.Parameter{openapi3.NewQueryParameter("recent").WithSchema(openapi3.NewIntegerSchema().WithMin(0).WithMax(1000)).WithDescription("how many recent jobs to list (default 20)")}},
	{pattern: "GET /api/v1/events", id: "events", kind: mediaSSE, errors: []int{503},
		summary: "The live feed as Server-Sent Events. Event types: `job` (data: a job.Record, whenever the node saves one), `status` (data: a Status, every couple of seconds), `log` (data: a LogLine), `resync` (the client fell behind: fetch the full state again). Authorise with the token, or with ?ticket= from POST /api/v1/events/ticket (a browser's EventSource cannot send headers).",
		params:  []*openapi3.Parameter{openapi3.NewQueryParameter("ticket").WithSchema(openapi3.NewStringSchema()).WithDescription("a one-time ticket, instead of the Authorization header")}},
	{pattern: "POST /api/v1/events/ticket", id: "eventsTicket", summary: "A one-time ticket (good for one connection, for expires_in_ms) that opens GET /api/v1/events without the Authorization header.", response: TicketResponse{}},
	{pattern: "GET /{$}", id: "dashboard", summary: "The web dashboard's page (no token needed; it reads the token from its URL fragment). Edge nodes answer 404 with the reason.", kind: mediaHTML, public: true},
	{pattern: "GET /assets/", id: "dashboardAsset", summary: "The dashboard's static files (no token needed).", kind: mediaAny, public: true},
}

// streamSchemas are the schemas the document names that no route's Go
// type reaches: the data of the live feed's events.
var streamSchemas = []any{Status{}, LogLine{}, job.Record{}, Event{}}

// openAPIPath turns a mux pattern into the document's path.
func openAPIPath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.TrimSuffix(path, "{$}")
	if strings.HasSuffix(path, "/") && path != "/" {
		path += "{file}"
	}
	return strings.ToLower(method), path
}

// schemaName names a component after its type, qualified by its package
// outside api (verify.Entry and heartbeat.Entry would clash).
func schemaName(t reflect.Type) string {
	pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
	if pkg == "api" || t.Name() == "" {
		return t.Name()
	}
	return strings.ToUpper(pkg[:1]) + pkg[1:] + t.Name()
}

// buildOpenAPI makes the document from routes and the Go types.
func buildOpenAPI() (*openapi3.T, error) {
	schemas := openapi3.Schemas{}
	gen := openapi3gen.NewGenerator(
		openapi3gen.UseAllExportedFields(), // job.Spec has CBOR tags only: JSON uses its Go names
		openapi3gen.CreateTypeNameGenerator(schemaName),
		openapi3gen.CreateComponentSchemas(openapi3gen.ExportComponentSchemasOptions{ExportComponentSchemas: true, ExportTopLevelSchema: true}),
		openapi3gen.SchemaCustomizer(customizeSchema),
	)
	schemaOf := func(v any) (*openapi3.SchemaRef, error) {
		ref, err := gen.NewSchemaRefForValue(v, schemas)
		if err != nil {
			return nil, fmt.Errorf("schema of %T: %w", v, err)
		}
		return ref, nil
	}
	errRef, err := schemaOf(ErrorResponse{})
	if err != nil {
		return nil, err
	}
	for _, v := range streamSchemas {
		if _, err := schemaOf(v); err != nil {
			return nil, err
		}
	}
	doc := &openapi3.T{
		OpenAPI: "3.1.0",
		Info: &openapi3.Info{Title: "VFT node API", Version: "v1",
			Description: "The local HTTP API of a VFT node (`vft daemon`). It listens on loopback only; its address is in <repo>/api and its bearer token in <repo>/api.token. Every route needs `Authorization: Bearer <token>` except the health check and the dashboard's files. Every non-2xx answer is an ErrorResponse: {\"error\": \"what went wrong and what to do\"}. Generated from the Go types by `go test ./api -run TestOpenAPIDocument -update`."},
		Servers: openapi3.Servers{{URL: "http://127.0.0.1:5001", Description: "the address in <repo>/api"}},
		Paths:   openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: schemas,
			SecuritySchemes: openapi3.SecuritySchemes{
				"token":  {Value: openapi3.NewSecurityScheme().WithType("http").WithScheme("bearer").WithDescription("the contents of <repo>/api.token")},
				"ticket": {Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("query").WithName("ticket").WithDescription("a one-time ticket from POST /api/v1/events/ticket; only GET /api/v1/events takes it")},
			},
		},
		Security: openapi3.SecurityRequirements{{"token": []string{}}},
	}
	errorResponse := func(desc string) *openapi3.ResponseRef {
		return &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription(desc).WithJSONSchemaRef(errRef)}
	}
	for _, rt := range routes {
		method, path := openAPIPath(rt.pattern)
		op := openapi3.NewOperation()
		op.OperationID, op.Summary = rt.id, rt.summary
		for _, p := range rt.params {
			op.AddParameter(p)
		}
		if strings.Contains(path, "{file}") {
			op.AddParameter(openapi3.NewPathParameter("file").WithSchema(openapi3.NewStringSchema()))
		}
		if rt.request != nil {
			ref, err := schemaOf(rt.request)
			if err != nil {
				return nil, err
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(ref)}
		}
		ok := openapi3.NewResponse().WithDescription("OK")
		switch rt.kind {
		case mediaJSON:
			ref, err := schemaOf(rt.response)
			if err != nil {
				return nil, err
			}
			ok.WithJSONSchemaRef(ref)
		case mediaNDJSON:
			// One schema per line: every line is an Event; the last one
			// carries the result (or the error).
			ref, err := schemaOf(rt.response)
			if err != nil {
				return nil, err
			}
			// The Event schema, with its result typed.
			line := openapi3.NewObjectSchema().
				WithProperty("done", openapi3.NewInt64Schema()).
				WithProperty("total", openapi3.NewInt64Schema()).
				WithPropertyRef("result", ref).
				WithProperty("error", openapi3.NewStringSchema())
			no := false
			line.AdditionalProperties = openapi3.AdditionalProperties{Has: &no}
			name := ref.RefString()[strings.LastIndex(ref.RefString(), "/")+1:]
			ok.WithDescription("Newline-delimited JSON Events: progress lines ({done, total}) at most every 200 ms, then one line whose result is " + name + ", or whose error says why it failed.")
			ok.Content = openapi3.Content{"application/x-ndjson": &openapi3.MediaType{Schema: &openapi3.SchemaRef{Value: line}}}
		case mediaSSE:
			ok.WithDescription("text/event-stream: `event: job|status|log|resync` and `data: <JSON>` (schemas JobRecord, Status, LogLine), with `: keep-alive` comments.")
			ok.Content = openapi3.Content{"text/event-stream": &openapi3.MediaType{Schema: &openapi3.SchemaRef{Value: openapi3.NewStringSchema()}}}
		case mediaHTML:
			ok.Content = openapi3.Content{"text/html": &openapi3.MediaType{Schema: &openapi3.SchemaRef{Value: openapi3.NewStringSchema()}}}
		case mediaText:
			ok.Content = openapi3.Content{"text/plain": &openapi3.MediaType{Schema: &openapi3.SchemaRef{Value: openapi3.NewStringSchema()}}}
		case mediaAny:
			ok.Content = openapi3.Content{"*/*": &openapi3.MediaType{Schema: &openapi3.SchemaRef{Value: openapi3.NewStringSchema()}}}
		}
		op.AddResponse(http.StatusOK, ok)
		statuses := append([]int{}, rt.errors...)
		if rt.public {
			op.Security = &openapi3.SecurityRequirements{}
		} else {
			statuses = append(statuses, http.StatusUnauthorized)
		}
		if rt.pattern == "GET /api/v1/events" {
			op.Security = &openapi3.SecurityRequirements{{"token": []string{}}, {"ticket": []string{}}}
		}
		if rt.request != nil {
			statuses = append(statuses, http.StatusRequestEntityTooLarge)
		}
		statuses = append(statuses, http.StatusForbidden)
		sort.Ints(statuses)
		for _, st := range statuses {
			op.AddResponse(st, errorResponse(http.StatusText(st)).Value)
			op.Responses.Value(fmt.Sprint(st)).Value.Content = openapi3.NewContentWithJSONSchemaRef(errRef)
		}
		doc.AddOperation(path, strings.ToUpper(method), op)
	}
	toOpenAPI31(schemas)
	return doc, nil
}

// customizeSchema fixes what reflection cannot know: Go encodes a nil
// slice or map as null, json.RawMessage is any JSON, and the units types
// marshal as text.
func customizeSchema(name string, t reflect.Type, tag reflect.StructTag, schema *openapi3.Schema) error {
	if t == reflect.TypeOf(json.RawMessage(nil)) {
		*schema = openapi3.Schema{Description: "any JSON value"}
		return nil
	}
	if t.Implements(reflect.TypeOf((*interface{ MarshalText() ([]byte, error) })(nil)).Elem()) && t.Kind() != reflect.Struct {
		*schema = *openapi3.NewStringSchema()
		return nil
	}
	if t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		schema.Nullable = true
	}
	// A struct's fields are all its JSON has: a field the document lacks
	// fails the response test instead of going unnoticed.
	if t.Kind() == reflect.Struct && t != reflect.TypeOf(time.Time{}) && len(schema.Properties) > 0 {
		no := false
		schema.AdditionalProperties = openapi3.AdditionalProperties{Has: &no}
	}
	return nil
}

// toOpenAPI31 turns 3.0's nullable into 3.1's type lists.
func toOpenAPI31(schemas openapi3.Schemas) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] || ref.Ref != "" {
			return
		}
		s := ref.Value
		seen[s] = true
		if s.Nullable && s.Type != nil {
			t := append(openapi3.Types{}, *s.Type...)
			t = append(t, "null")
			s.Type = &t
			s.Nullable = false
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		if s.AdditionalProperties.Schema != nil {
			walk(s.AdditionalProperties.Schema)
		}
		for _, sub := range s.AllOf {
			walk(sub)
		}
	}
	for _, ref := range schemas {
		walk(ref)
	}
}
