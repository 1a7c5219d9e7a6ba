package api

import (
	"embed"
	"io/fs"
	"net/http"
)

// assets are the dashboard's files: plain HTML, CSS and JavaScript with no
// build step and nothing loaded from elsewhere, so it works offline.
//
//go:embed dashboard
var assets embed.FS

// contentSecurityPolicy lets the dashboard load only its own files and talk
// only to this API: no inline scripts or styles, no other origins, no
// framing. A page that slipped HTML into a job record could run nothing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeDashboard serves the web dashboard at / and its files under
// /assets/. The page reads the API token from its URL fragment, which
// browsers never send, and uses it only for state-changing calls.
func (s *Server) ServeDashboard() {
	sub, err := fs.Sub(assets, "dashboard")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	s.handle("GET /{$}", dashboardHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	})))
	s.handle("GET /assets/", dashboardHeaders(http.StripPrefix("/assets/", files)))
}

// NoDashboard answers / with why there is none (edge devices serve none:
// they are headless and short of memory).
func (s *Server) NoDashboard(why string) {
	s.Handle("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(why + "\n"))
	})
}

func dashboardHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		// The assets change with the binary; a stale cached app.js after an
		// upgrade would misread the new API.
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}
