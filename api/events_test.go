package api

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// readEvent reads SSE lines until one whole event, skipping comments.
func readEvent(t *testing.T, r *bufio.Reader) (typ, data string) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && typ != "":
			return typ, data
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func openEvents(t *testing.T, ctx context.Context, s *Server) *bufio.Reader {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Addr()+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return bufio.NewReader(resp.Body)
}

// waitClients waits until the hub has n streams open.
func waitClients(t *testing.T, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Clients() != n {
		if time.Now().After(deadline) {
			t.Fatalf("hub has %d clients, want %d", h.Clients(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client connecting late still gets the last status and recent log
// lines first, then every event in order, and the stream ends when the
// server closes (so Close does not hang on open streams).
func TestEventsStream(t *testing.T) {
	s, _ := startServer(t)
	hub := NewHub(HubConfig{}, slog.New(slog.DiscardHandler))
	s.ServeEvents(hub)
	hub.Publish(EventStatus, Status{Peers: 3})
	hub.Publish(EventLog, LogLine{Message: "job x assigned"})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := openEvents(t, ctx, s)
	if typ, data := readEvent(t, r); typ != EventStatus || !strings.Contains(data, `"peers":3`) {
		t.Fatalf("first event %s %s, want the last status", typ, data)
	}
	if typ, data := readEvent(t, r); typ != EventLog || !strings.Contains(data, "job x assigned") {
		t.Fatalf("second event %s %s, want the replayed log line", typ, data)
	}
	hub.Publish(EventJob, map[string]string{"id": "j1", "state": "running"})
	typ, data := readEvent(t, r)
	var rec map[string]string
	if typ != EventJob || json.Unmarshal([]byte(data), &rec) != nil || rec["state"] != "running" {
		t.Fatalf("event %s %s, want the job", typ, data)
	}

	s.Close()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("stream still open after Close")
	}
	hub.Publish(EventLog, LogLine{Message: "after close"}) // must not panic or block
}

// A client that stops reading never blocks Publish; once its queue is
// full it loses the backlog and gets a resync event to refetch state.
func TestEventsSlowClientResyncs(t *testing.T) {
	hub := NewHub(HubConfig{Buffer: 4}, slog.New(slog.DiscardHandler))
	defer hub.Close()
	c, ok := hub.subscribe()
	if !ok {
		t.Fatal("subscribe refused")
	}
	defer hub.unsubscribe(c)
	for i := range 100 {
		hub.Publish(EventJob, map[string]int{"n": i})
	}
	if len(c.queue) > 4 {
		t.Fatalf("queue holds %d, over its bound", len(c.queue))
	}
	sawResync := false
	for len(c.queue) > 0 {
		frame := string(<-c.queue)
		sawResync = sawResync || strings.HasPrefix(frame, "event: "+EventResync+"\n")
	}
	if !sawResync {
		t.Fatal("slow client was never told to resync")
	}
}

// The feed is guarded like the rest of the API against other sites.
func TestEventsGuard(t *testing.T) {
	s, _ := startServer(t)
	hub := NewHub(HubConfig{}, slog.New(slog.DiscardHandler))
	s.ServeEvents(hub)
	req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/api/v1/events", nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site events: %d, want 403", resp.StatusCode)
	}
	if hub.Clients() != 0 {
		t.Fatal("a refused request subscribed")
	}
}
