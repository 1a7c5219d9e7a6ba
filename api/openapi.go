package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes every route of this API (OpenAPI 3.1). It is
// generated from the Go types by `go test ./api -run TestOpenAPIDocument
// -update`, and TestOpenAPIDocument fails when it is stale, when a route
// is missing from it, or when an answer does not match its schema.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI is the document served at GET /api/v1/openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// serveOpenAPI needs the token like every data route: the document holds
// no secret, but the guard's public list stays as short as it is (the
// health check and the dashboard's files), and SDKs have the token anyway.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(openAPIDocument)
}
