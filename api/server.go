// Package api is the node's local HTTP API: JSON endpoints under /api/v1,
// Prometheus /metrics, guarded so that only the local user's tools can drive
// the node (loopback only, Host and Origin checks against DNS rebinding and
// CSRF, a bearer token for every call but the health check and the
// dashboard's static files: other users of the machine must not read job
// specs, salts, the wallet or the live feed).
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/vft-network/vft/p2p"
)

// Identity is what GET /api/v1/id returns.
type Identity struct {
	PeerID  string   `json:"peer_id"`
	Wallet  string   `json:"wallet"`
	Mode    string   `json:"mode"`
	Version string   `json:"version"`
	Addrs   []string `json:"addrs"`
	// Reachability is absent when the daemon is not running.
	Reachability *Reachability `json:"reachability,omitempty"`
}

// Reachability says whether peers on the internet can dial the node, and
// how it stays reachable when they cannot: p2p's view, and the fix when
// the node is private.
type Reachability struct {
	p2p.Reachability
	// Fix is what the operator can do when the node is private.
	Fix string `json:"fix,omitempty"`
}

// Peer is one entry of GET /api/v1/peers.
type Peer struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Direction string `json:"direction"`
	LatencyMS int64  `json:"latency_ms"`
	Agent     string `json:"agent,omitempty"`
	// Relayed is a connection through a relay (small messages only).
	Relayed bool `json:"relayed,omitempty"`
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
	// tickets let a browser's EventSource, which cannot send headers,
	// open the live feed.
	tickets *tickets
	// limits are the connection timeouts; tests shorten them.
	limits connLimits
	// routes are the patterns registered, in order: the OpenAPI test
	// checks that the document describes every one.
	routes []string
	// content adds the files a job spec names (POST /api/v1/jobs/file);
	// nil until ServeContent.
	content Content
}

// connLimits bound how long a client may take to send a request and how
// long an idle connection stays open.
type connLimits struct {
	readHeader, read, idle time.Duration
}

// New prepares the API; Start listens.
func New(cfg Config, backend Backend, token string, metrics prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(token) < 32 {
		return nil, errors.New("api: token too short")
	}
	s := &Server{cfg: cfg, backend: backend, token: token, log: log.With("component", "api"), mux: http.NewServeMux(), tickets: newTickets(time.Now),
		limits: connLimits{readHeader: readHeaderTimeout, read: readTimeout, idle: idleTimeout}}
	s.Handle("GET /api/v1/id", s.handleID)
	s.Handle("GET /api/v1/peers", s.handlePeers)
	s.Handle("POST /api/v1/swarm/connect", s.handleConnect)
	s.Handle("GET /api/v1/nodes", s.handleNodes)
	s.Handle("GET /api/v1/health", s.handleHealth)
	s.Handle("GET /api/v1/openapi.json", serveOpenAPI)
	if metrics != nil {
		s.handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	}
	return s, nil
}

// Handle adds an endpoint. Patterns use net/http's "METHOD /path" form;
// every endpoint needs the token unless public says otherwise.
func (s *Server) Handle(pattern string, h http.HandlerFunc) { s.handle(pattern, h) }

// handle registers any handler and records its pattern.
func (s *Server) handle(pattern string, h http.Handler) {
	s.routes = append(s.routes, pattern)
	s.mux.Handle(pattern, h)
}

// Routes are the patterns registered so far ("METHOD /path"), in order.
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("api.listen %s is already in use (another daemon?): stop it or choose another address, e.g. VFT_API_LISTEN=127.0.0.1:0", s.cfg.Listen)
		}
		return fmt.Errorf("api: listen on %s: %w", s.cfg.Listen, err)
	}
	// "localhost" is resolved by the system: a resolver or hosts file that
	// maps it elsewhere must not put the API on the network.
	if err := checkLoopback(ln.Addr()); err != nil {
		ln.Close()
		return fmt.Errorf("api.listen %s: %w", s.cfg.Listen, err)
	}
	s.listener = ln
	port := ln.Addr().(*net.TCPAddr).Port
	s.allowed = map[string]bool{}
	for _, h := range []string{"127.0.0.1", "localhost", "[::1]"} {
		s.allowed[fmt.Sprintf("%s:%d", h, port)] = true
	}
	s.http = &http.Server{
		Handler: s.guard(s.mux),
		// A client that trickles its headers or body (slowloris) must not
		// hold a connection and a goroutine for ever. No request uploads
		// much (`vft add` sends a path, not the file), so the whole
		// request must arrive within ReadTimeout; guard lifts that
		// deadline once the body is read (see liftReadDeadline). There is
		// no WriteTimeout: answers stream (the live feed, add/get
		// progress) and bound each write themselves.
		ReadHeaderTimeout: s.limits.readHeader,
		ReadTimeout:       s.limits.read,
		IdleTimeout:       s.limits.idle,
		MaxHeaderBytes:    maxHeaderBytes,
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

// checkLoopback refuses a listening address other machines could reach.
func checkLoopback(a net.Addr) error {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return fmt.Errorf("the API would listen on %s, which is not a loopback address: set api.listen to 127.0.0.1:PORT", a)
	}
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
		if !public(r) && !s.authorised(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vft"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong API token: send \"Authorization: Bearer <token>\" with the token from <repo>/api.token (`vft dashboard` prints the dashboard's address with it)")
			return
		}
		// A body over the limit is refused before it is read when it says
		// its length, and cut off at the limit when it does not.
		if r.ContentLength > MaxBodyBytes {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestEntityTooLarge, tooLargeError().Error())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		liftReadDeadline(w, r)
		next.ServeHTTP(w, r)
	})
}

// liftReadDeadline clears the server's ReadTimeout once the request's body
// has been read. Go's server cancels a request's context when the
// connection's read deadline passes, even while the handler is still
// answering: a live feed, a long `vft get`, a pin that fetches a big DAG
// would be cut off after readTimeout.
func liftReadDeadline(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		rc.SetReadDeadline(time.Time{})
		return
	}
	r.Body = &readThenLift{ReadCloser: r.Body, rc: rc}
}

// readThenLift clears the read deadline when its body has been read to the
// end. Not on an error: after a timeout the server must still find the
// deadline passed, or it would wait for the rest of a trickled body.
type readThenLift struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

func (b *readThenLift) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(func() { b.rc.SetReadDeadline(time.Time{}) })
	}
	return n, err
}

// public says whether a request needs no token: the health check (for
// supervisors and probes; it tells only counts) and the dashboard's page
// and static files, which hold no data: the page fetches everything with
// the token from its URL fragment.
func public(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.URL.Path == "/api/v1/health" || r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/assets/")
}

func (s *Server) authorised(r *http.Request) bool {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
	}
	// EventSource cannot send headers: the live feed also takes a
	// one-time ticket, bought with the token just before (see tickets).
	if r.URL.Path == eventsPath && r.Method == http.MethodGet {
		return s.tickets.redeem(r.URL.Query().Get("ticket"))
	}
	return false
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
		writeDecodeError(w, err)
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

// Limits on what a client may send. Every JSON body is small: a job spec
// names its module and inputs by CID, and `vft add` sends a path.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// MaxBodyBytes bounds every JSON request body.
	MaxBodyBytes = 1 << 20
)

// ErrBodyTooLarge is a request body over MaxBodyBytes.
var ErrBodyTooLarge = errors.New("request body too large")

// decodeJSON reads a small JSON body strictly: one value, no unknown
// fields, at most MaxBodyBytes (guard wraps every body in a
// http.MaxBytesReader).
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		return tooLargeError()
	}
	if err != nil {
		return fmt.Errorf("bad request body: %v", err)
	}
	return nil
}

func tooLargeError() error {
	return fmt.Errorf("%w: the limit is %d bytes (1 MiB); a job spec names its module and inputs by CID, so add big files with `vft add` first", ErrBodyTooLarge, MaxBodyBytes)
}

// writeDecodeError answers a body decodeJSON refused: 413 for one too
// large, 400 for one malformed.
func writeDecodeError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrBodyTooLarge) {
		status = http.StatusRequestEntityTooLarge
	}
	writeError(w, status, err.Error())
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
