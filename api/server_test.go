package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeBackend struct{ connected []string }

func (f *fakeBackend) Identity() Identity              { return Identity{PeerID: "12D3KooWtest", Mode: "miner"} }
func (f *fakeBackend) Peers() []Peer                   { return nil }
func (f *fakeBackend) Nodes() []NodeEntry              { return []NodeEntry{} }
func (f *fakeBackend) ClockSkew() (time.Duration, int) { return 0, 0 }
func (f *fakeBackend) Connect(_ context.Context, addr string) (string, error) {
	if strings.Contains(addr, "bad") {
		return "", errors.New("dial failed")
	}
	f.connected = append(f.connected, addr)
	return "12D3KooWpeer", nil
}

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func startServer(t *testing.T) (*Server, *fakeBackend) {
	t.Helper()
	b := &fakeBackend{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "vft_test_total", Help: "test"}))
	s, err := New(Config{Listen: "127.0.0.1:0"}, b, testToken, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, b
}

func TestGuard(t *testing.T) {
	s, b := startServer(t)
	port := s.Addr()[strings.LastIndex(s.Addr(), ":")+1:]
	cases := []struct {
		name       string
		method     string
		path       string
		host       string
		origin     string
		token      string
		wantStatus int
	}{
		{"read id", "GET", "/api/v1/id", "", "", testToken, 200},
		{"read id without token", "GET", "/api/v1/id", "", "", "", 401},
		{"read via localhost name", "GET", "/api/v1/id", "localhost:" + port, "", testToken, 200},
		{"metrics", "GET", "/metrics", "", "", testToken, 200},
		{"metrics without token", "GET", "/metrics", "", "", "", 401},
		{"health without token", "GET", "/api/v1/health", "", "", "", 200},
		{"DNS rebinding host", "GET", "/api/v1/id", "evil.example:" + port, "", "", 403},
		{"right host wrong port", "GET", "/api/v1/id", "127.0.0.1:1", "", "", 403},
		{"cross-site origin", "POST", "/api/v1/swarm/connect", "", "http://evil.example", testToken, 403},
		{"same origin", "POST", "/api/v1/swarm/connect", "", "http://127.0.0.1:" + port, testToken, 200},
		{"connect without token", "POST", "/api/v1/swarm/connect", "", "", "", 401},
		{"connect with wrong token", "POST", "/api/v1/swarm/connect", "", "", strings.Repeat("0", 64), 401},
		{"connect with token", "POST", "/api/v1/swarm/connect", "", "", testToken, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.method == "POST" {
				body = strings.NewReader(`{"addr":"/ip4/127.0.0.1/tcp/1/p2p/x"}`)
			}
			req, _ := http.NewRequest(tc.method, "http://"+s.Addr()+tc.path, body)
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, data)
			}
		})
	}
	if len(b.connected) != 2 {
		t.Fatalf("backend saw %d connects, want exactly the 2 authorised ones", len(b.connected))
	}
}

func TestClient(t *testing.T) {
	s, _ := startServer(t)
	ctx := context.Background()
	c := NewClient(s.Addr(), testToken)
	id, err := c.ID(ctx)
	if err != nil || id.PeerID != "12D3KooWtest" {
		t.Fatalf("ID = %+v, %v", id, err)
	}
	peers, err := c.Peers(ctx)
	if err != nil || peers == nil || len(peers) != 0 {
		t.Fatalf("Peers = %v, %v (want an empty list, not null)", peers, err)
	}
	if _, err := c.Connect(ctx, "/bad"); err == nil || !strings.Contains(err.Error(), "dial failed") {
		t.Fatalf("Connect error = %v, want the backend's message", err)
	}
	if _, err := NewClient(s.Addr(), "").Connect(ctx, "/x"); err == nil || !strings.Contains(err.Error(), "api.token") {
		t.Fatalf("Connect without token = %v, want a message pointing at api.token", err)
	}
}

func TestStartPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Config{Listen: ln.Addr().String()}, &fakeBackend{}, testToken, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Start = %v, want an error naming %s as in use", err, ln.Addr())
	}
}

func TestConfigValidate(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:5801": true, "[::1]:0": true, "localhost:5801": true,
		"0.0.0.0:5801": false, "192.168.1.2:5801": false, "5801": false, "127.0.0.1:http2": false,
	} {
		err := Config{Listen: addr}.Validate()
		if (err == nil) != ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

// Whatever "localhost" resolves to, the API only serves on a loopback
// address.
func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		ok   bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5801}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 5801}, true},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 2), Port: 5801}, false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 5801}, false},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, false},
	} {
		if err := checkLoopback(tc.addr); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%s) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}
