package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vft-network/vft/verify"
)

type fakeContent struct{ calls int }

func (f *fakeContent) Add(context.Context, AddRequest, func(int64, int64)) (AddResult, error) {
	f.calls++
	return AddResult{CID: "bafy"}, nil
}
func (f *fakeContent) Get(context.Context, GetRequest, func(int64, int64)) (GetResult, error) {
	f.calls++
	return GetResult{}, nil
}
func (f *fakeContent) Pin(context.Context, string, func(int64, int64)) error {
	f.calls++
	return nil
}
func (f *fakeContent) Unpin(context.Context, string) error { f.calls++; return nil }
func (f *fakeContent) Pins(context.Context) ([]string, error) {
	f.calls++
	return []string{"bafy-secret-pin"}, nil
}
func (f *fakeContent) GC(context.Context) (GCResult, error) { f.calls++; return GCResult{}, nil }
func (f *fakeContent) Images(context.Context) ([]Image, error) {
	f.calls++
	at := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	return []Image{{CID: "bafyimage", Size: 3000, ImportedAt: &at,
		Manifests: []ImageManifest{{Digest: "sha256:" + strings.Repeat("a", 64), Platform: "linux/amd64", Size: 3000}}}}, nil
}
func (f *fakeContent) Stat(context.Context) (RepoStat, error) {
	f.calls++
	return RepoStat{}, nil
}

type fakeReputation struct{}

func (fakeReputation) All() []verify.Entry { return nil }

// startFullServer serves every endpoint the node serves, with fakes.
func startFullServer(t *testing.T, configure func(*Server)) (*Server, *fakeContent) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(Config{Listen: "127.0.0.1:0"}, &fakeBackend{}, testToken, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	content := &fakeContent{}
	s.ServeContent(content)
	s.ServeJobs(&fakeJobs{})
	s.ServeWallet(fakeWallet{})
	s.ServeReputation(fakeReputation{})
	hub := NewHub(HubConfig{}, slog.New(slog.DiscardHandler))
	s.ServeEvents(hub)
	s.ServeDashboard()
	if configure != nil {
		configure(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, content
}

// Another user of the machine can reach the loopback API but cannot read
// api.token: every endpoint but the health check and the dashboard's
// (data-free) files must refuse them, reads included: job specs carry
// salts, the wallet its address and balance, the feed every job.
func TestEveryRouteNeedsToken(t *testing.T) {
	s, content := startFullServer(t, nil)
	base := "http://" + s.Addr()
	routes := []struct{ method, path, body string }{
		{"GET", "/api/v1/id", ""},
		{"GET", "/api/v1/peers", ""},
		{"GET", "/api/v1/nodes", ""},
		{"GET", "/api/v1/reputation", ""},
		{"GET", "/api/v1/wallet", ""},
		{"GET", "/api/v1/jobs", ""},
		{"GET", "/api/v1/images", ""},
		{"GET", "/api/v1/jobs/j1", ""},
		{"GET", "/api/v1/events", ""},
		{"GET", "/api/v1/pin/ls", ""},
		{"GET", "/api/v1/repo/stat", ""},
		{"GET", "/metrics", ""},
		{"HEAD", "/api/v1/jobs", ""},
		{"POST", "/api/v1/events/ticket", ""},
		{"POST", "/api/v1/swarm/connect", `{"addr":"/x"}`},
		{"POST", "/api/v1/jobs", `{}`},
		{"POST", "/api/v1/jobs/j1/cancel", `{"reason":"x"}`},
		{"POST", "/api/v1/add", `{"path":"/etc/passwd"}`},
		{"POST", "/api/v1/get", `{"cid":"bafy","output":"/tmp/x"}`},
		{"POST", "/api/v1/pin/add", `{"cid":"bafy"}`},
		{"POST", "/api/v1/pin/rm", `{"cid":"bafy"}`},
		{"POST", "/api/v1/repo/gc", ``},
		{"GET", "/no/such/route", ""},
	}
	// A bound, so that a stream opened without the token fails the test
	// rather than hang it.
	client := &http.Client{Timeout: 20 * time.Second}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			req, _ := http.NewRequest(rt.method, base+rt.path, strings.NewReader(rt.body))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("without the token: %d, want 401", resp.StatusCode)
			}
			body, _ := io.ReadAll(resp.Body)
			if strings.Contains(string(body), "bafy-secret-pin") || strings.Contains(string(body), "12D3KooWtest") {
				t.Fatalf("the refusal leaks data: %s", body)
			}
		})
	}
	if content.calls != 0 {
		t.Fatalf("%d calls reached the content store without the token", content.calls)
	}
	for _, path := range []string{"/api/v1/health", "/", "/assets/app.js", "/assets/style.css"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without the token: %d, want 200 (it holds no data)", path, resp.StatusCode)
		}
	}
	resp, body := get(t, base+"/api/v1/pin/ls")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "bafy-secret-pin") {
		t.Fatalf("with the token: %d %s", resp.StatusCode, body)
	}
}

// The dashboard's EventSource cannot send the token: it buys a one-time
// ticket with it. A ticket opens one stream, once, and only while fresh.
func TestEventsTicket(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s, _ := startFullServer(t, func(s *Server) { s.tickets = newTickets(clock) })
	base := "http://" + s.Addr()
	buy := func() string {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/api/v1/events/ticket", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr TicketResponse
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 || len(tr.Ticket) < 32 {
			t.Fatalf("ticket: %d %+v %v", resp.StatusCode, tr, err)
		}
		return tr.Ticket
	}
	open := func(ticket string) int {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/events?ticket="+ticket, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == 200 {
			if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
				t.Fatalf("stream opened with a ticket: %q %v", line, err)
			}
		}
		return resp.StatusCode
	}
	ticket := buy()
	if got := open(ticket); got != 200 {
		t.Fatalf("fresh ticket: %d, want 200", got)
	}
	if got := open(ticket); got != 401 {
		t.Fatalf("ticket used twice: %d, want 401", got)
	}
	if got := open(strings.Repeat("ab", 24)); got != 401 {
		t.Fatalf("made-up ticket: %d, want 401", got)
	}
	stale := buy()
	now = now.Add(ticketTTL + time.Second)
	if got := open(stale); got != 401 {
		t.Fatalf("expired ticket: %d, want 401", got)
	}
	// A ticket opens the feed only, not other reads.
	other := buy()
	resp, err := http.Get(base + "/api/v1/jobs?ticket=" + other)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("ticket on /api/v1/jobs: %d, want 401", resp.StatusCode)
	}
}

// The table of unredeemed tickets stays bounded however many are bought.
func TestTicketsBounded(t *testing.T) {
	tk := newTickets(time.Now)
	first := tk.issue()
	for range 10 * maxTickets {
		tk.issue()
	}
	if len(tk.out) > maxTickets {
		t.Fatalf("%d tickets kept, want at most %d", len(tk.out), maxTickets)
	}
	if tk.redeem(first) {
		t.Fatal("the oldest ticket survived a full table")
	}
}

// A client that sends a request's body a byte at a time (slowloris) is
// disconnected: it must not hold a connection and a handler goroutine for
// ever. The same for one that trickles its headers.
func TestSlowClientDisconnected(t *testing.T) {
	s, _ := startFullServer(t, func(s *Server) {
		s.limits = connLimits{readHeader: 500 * time.Millisecond, read: time.Second, idle: time.Second}
	})
	for _, tc := range []struct {
		name, head string
	}{
		{"slow headers", "GET /api/v1/health HTTP/1.1\r\nHost: " + s.Addr() + "\r\n"},
		{"slow body", "POST /api/v1/swarm/connect HTTP/1.1\r\nHost: " + s.Addr() + "\r\nAuthorization: Bearer " + testToken +
			"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"addr\":\""},
		{"idle keep-alive", "GET /api/v1/health HTTP/1.1\r\nHost: " + s.Addr() + "\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.head); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			if tc.name != "idle keep-alive" {
				go func() { // one byte every 100 ms, for ever
					for {
						select {
						case <-stop:
							return
						case <-time.After(100 * time.Millisecond):
						}
						if _, err := conn.Write([]byte("a")); err != nil {
							return
						}
					}
				}()
			}
			// Generous: the server's limits are about a second here.
			conn.SetReadDeadline(time.Now().Add(time.Minute))
			_, err = io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server kept a slow client's connection open for a minute")
			}
		})
	}
}

// A request body over MaxBodyBytes is refused with 413 and a message that
// names the limit, whether or not it declares its length.
func TestOversizedBodyRefused(t *testing.T) {
	s, content := startFullServer(t, nil)
	big := `{"path":"/` + strings.Repeat("a", 2*MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name    string
		chunked bool
	}{{"with Content-Length", false}, {"chunked", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(big)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/api/v1/add", body)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(msg), fmt.Sprint(MaxBodyBytes)) {
				t.Fatalf("%d %s, want 413 naming the limit", resp.StatusCode, msg)
			}
		})
	}
	if content.calls != 0 {
		t.Fatal("an oversized request reached the content store")
	}
}
