package node

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/api"
)

// The status of the live feed is built only while a client watches it: a
// tick with no client publishes nothing (a new client is then sent no
// status until the next tick), and a tick with a client sends it one.
func TestDashboardStatusOnlyWhileWatched(t *testing.T) {
	nd := startTestNode(t)
	hub := api.NewHub(api.HubConfig{}, slog.New(slog.DiscardHandler))
	defer hub.Close()
	d := &dashboard{n: nd, hub: hub, log: slog.New(slog.DiscardHandler), changes: newTransitions()}
	ctx := context.Background()
	d.tick(ctx) // nobody watches

	srv := httptest.NewServer(hub)
	defer srv.Close()
	events := make(chan string, 16)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events <- ev
			}
		}
		close(events)
	}()
	for hub.Clients() == 0 {
		time.Sleep(time.Millisecond)
	}
	d.tick(ctx)
	select {
	case ev := <-events:
		if ev != api.EventStatus {
			t.Fatalf("first event %q, want %q", ev, api.EventStatus)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no status event after a tick with a client watching")
	}
	select {
	case ev := <-events:
		t.Fatalf("a second event %q: the tick without a client published a status too", ev)
	case <-time.After(200 * time.Millisecond):
	}
}
