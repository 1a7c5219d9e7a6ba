// Package api is the node's local HTTP API: JSON endpoints under /api/v1,
// Prometheus /metrics, guarded so that only the local user's tools can drive
// the node (loopback only, Host and Origin checks against DNS rebinding and
// CSRF, a bearer token for every state-changing call).
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vft-network/vft/heartbeat"
)

// Identity is what GET /api/v1/id returns.
type Identity struct {
	PeerID  string   `json:"peer_id"`
	Wallet  string   `json:"wallet"`
	Mode    string   `json:"mode"`
	Version string   `json:"version"`
	Addrs   []string `json:"addrs"`
}

// Peer is one entry of GET /api/v1/peers.
type Peer struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Direction string `json:"direction"`
	LatencyMS int64  `json:"latency_ms"`
	Agent     string `json:"agent,omitempty"`
}

// Backend is what the API serves; the node implements it.
type Backend interface {
	Identity() Identity
	Peers() []Peer
	Connect(ctx context.Context, addr string) (peerID string, err error)
	// Nodes is the live network table from heartbeats, with this node's
	// view of each one's reputation.
	Nodes() []NodeEntry
	// ClockSkew is the median offset of peers' clocks from ours.
	ClockSkew() (median time.Duration, samples int)
}

// Server is the running API.
type Server struct {
	cfg     Config
	backend Backend
	token   string
	log     *slog.Logger
	mux     *http.ServeMux

	listener  net.Listener
	http      *http.Server
	allowed   map[string]bool // Host header values that name this server
	done      chan struct{}
	closeOnce sync.Once
	// beforeClose runs first in Close: long-lived streams end there.
	beforeClose []func() error
}

// New prepares the API; Start listens.
func New(cfg Config, backend Backend, token string, metrics prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(token) < 32 {
		return nil, errors.New("api: token too short")
	}
	s := &Server{cfg: cfg, backend: backend, token: token, log: log.With("component", "api"), mux: http.NewServeMux()}
	s.Handle("GET /api/v1/id", s.handleID)
	s.Handle("GET /api/v1/peers", s.handlePeers)
	s.Handle("POST /api/v1/swarm/connect", s.handleConnect)
	s.Handle("GET /api/v1/nodes", s.handleNodes)
	s.Handle("GET /api/v1/health", s.handleHealth)
	if metrics != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	}
	return s, nil
}

// Handle adds an endpoint. Patterns use net/http's "METHOD /path" form;
// any method but GET and HEAD needs the token.
func (s *Server) Handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("api.listen %s is already in use (another daemon?): stop it or choose another address, e.g. VFT_API_LISTEN=127.0.0.1:0", s.cfg.Listen)
		}
		return fmt.Errorf("api: listen on %s: %w", s.cfg.Listen, err)
	}
	s.listener = ln
	port := ln.Addr().(*net.TCPAddr).Port
	s.allowed = map[string]bool{}
	for _, h := range []string{"127.0.0.1", "localhost", "[::1]"} {
		s.allowed[fmt.Sprintf("%s:%d", h, port)] = true
	}
	s.http = &http.Server{
		Handler:           s.guard(s.mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "err", err)
		}
	}()
	s.log.Info("api listening", "addr", s.Addr())
	return nil
}

// Addr is the real listening address (host:port), also with port 0.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Close stops serving, letting requests in flight finish for a few seconds.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		for _, fn := range s.beforeClose {
			fn()
		}
		if s.http == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.http.Shutdown(ctx)
		<-s.done
	})
	return err
}

// guard refuses requests that do not come from this machine's own tools.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// DNS rebinding: a page on evil.example that resolves to 127.0.0.1
		// still sends Host: evil.example.
		if !s.allowed[strings.ToLower(r.Host)] {
			writeError(w, http.StatusForbidden, fmt.Sprintf("host %q is not this API's address; use http://%s", r.Host, s.Addr()))
			return
		}
		// CSRF: browsers send Origin on cross-site requests; only our own
		// pages (the dashboard) may use the API from a browser.
		if origin := r.Header.Get("Origin"); origin != "" && !s.allowed[strings.TrimPrefix(strings.ToLower(origin), "http://")] {
			writeError(w, http.StatusForbidden, fmt.Sprintf("origin %q may not use this API", origin))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.authorised(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vft"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong API token: send \"Authorization: Bearer <token>\" with the token from <repo>/api.token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorised(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

func (s *Server) handleID(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.backend.Identity())
}

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	peers := s.backend.Peers()
	if peers == nil {
		peers = []Peer{}
	}
	writeJSON(w, http.StatusOK, peers)
}

// NodeEntry is one row of the network table.
type NodeEntry struct {
	heartbeat.Entry
	// Reputation is this node's score of the peer, 0..1 (0.5: a stranger).
	Reputation float64 `json:"reputation"`
	// Excluded peers are never chosen for this node's jobs again.
	Excluded bool `json:"excluded"`
}

func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.backend.Nodes())
}

// Health is what GET /api/v1/health returns: the daemon's view of itself,
// for `vft doctor`.
type Health struct {
	Peers            int   `json:"peers"`
	Nodes            int   `json:"nodes"`
	ClockSkewMS      int64 `json:"clock_skew_ms"`
	ClockSkewSamples int   `json:"clock_skew_samples"`
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	skew, samples := s.backend.ClockSkew()
	writeJSON(w, http.StatusOK, Health{
		Peers: len(s.backend.Peers()), Nodes: len(s.backend.Nodes()),
		ClockSkewMS: skew.Milliseconds(), ClockSkewSamples: samples,
	})
}

// ConnectRequest is the body of POST /api/v1/swarm/connect.
type ConnectRequest struct {
	Addr string `json:"addr"`
}

// ConnectResponse answers it.
type ConnectResponse struct {
	PeerID string `json:"peer_id"`
}

func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) {
	var req ConnectRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	id, err := s.backend.Connect(ctx, req.Addr)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ConnectResponse{PeerID: id})
}

// decodeJSON reads a small JSON body strictly.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request body: %v", err)
	}
	return nil
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
