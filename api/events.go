package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Event types of GET /api/v1/events.
const (
	EventJob    = "job"    // a job.Record, every time the node saves one
	EventStatus = "status" // a Status, every couple of seconds
	EventLog    = "log"    // a LogLine worth showing a person
	// EventResync tells a client that it fell behind and events were
	// dropped: it should fetch the full state (jobs, nodes) again.
	EventResync = "resync"
)

// Status is the periodic snapshot of the live feed.
type Status struct {
	Time      time.Time   `json:"time"`
	Peers     int         `json:"peers"`
	Nodes     int         `json:"nodes"`
	FreeSlots int         `json:"free_slots"`
	MaxJobs   int         `json:"max_jobs"`
	GPUs      []GPUStatus `json:"gpus"`
}

// GPUStatus is one GPU's live readings. Unavailable names the readings
// NVML could not give (keys "utilization", "memory", "temperature"), so a
// client can tell 0 from unknown.
type GPUStatus struct {
	Index              int             `json:"index"`
	Name               string          `json:"name"`
	UUID               string          `json:"uuid,omitempty"`
	UtilizationPercent uint32          `json:"utilization_percent"`
	MemoryUsedBytes    uint64          `json:"memory_used_bytes"`
	MemoryTotalBytes   uint64          `json:"memory_total_bytes"`
	TemperatureC       uint32          `json:"temperature_c"`
	Unavailable        map[string]bool `json:"unavailable,omitempty"`
}

// LogLine is a notable event told in a sentence.
type LogLine struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"` // info | warn | error
	Message string    `json:"message"`
	Job     string    `json:"job,omitempty"`
}

// HubConfig sizes the hub; zero values take the defaults.
type HubConfig struct {
	// Buffer is how many events wait for one slow client before it is
	// dropped to a resync (default 256).
	Buffer int
	// Replay is how many recent log lines a new client gets first
	// (default 50).
	Replay int
	// KeepAlive is the interval of comment lines that keep idle
	// connections (and proxies) from timing out (default 15 s).
	KeepAlive time.Duration
}

// Hub fans the node's events out to every connected client. Publishing
// never blocks: each client has a bounded queue, and a client whose queue
// is full loses its queued events and gets one resync event instead, so a
// stalled browser tab cannot slow the job market that feeds the hub.
type Hub struct {
	cfg HubConfig
	log *slog.Logger

	mu      sync.Mutex
	clients map[*subscriber]struct{}
	status  []byte   // last status frame, sent first to a new client
	recent  [][]byte // last log frames, oldest first
	closed  bool

	done      chan struct{}
	closeOnce sync.Once
	handlers  sync.WaitGroup
}

type subscriber struct {
	queue chan []byte // encoded SSE frames
}

// NewHub makes a hub; Close ends every stream.
func NewHub(cfg HubConfig, log *slog.Logger) *Hub {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	if cfg.Replay <= 0 {
		cfg.Replay = 50
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	return &Hub{cfg: cfg, log: log.With("component", "events"), clients: map[*subscriber]struct{}{}, done: make(chan struct{})}
}

// Publish sends an event of type typ with v as its JSON data to every
// client. It is safe from any goroutine and never waits for a client.
func (h *Hub) Publish(typ string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		h.log.Warn("event not encodable", "type", typ, "err", err)
		return
	}
	frame := encodeFrame(typ, data)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	switch typ {
	case EventStatus:
		h.status = frame
	case EventLog:
		h.recent = append(h.recent, frame)
		if len(h.recent) > h.cfg.Replay {
			h.recent = h.recent[len(h.recent)-h.cfg.Replay:]
		}
	}
	for c := range h.clients {
		h.deliver(c, frame)
	}
}

// deliver queues a frame for c, or replaces c's backlog with a resync;
// h.mu is held, so nothing else fills c's queue meanwhile.
func (h *Hub) deliver(c *subscriber, frame []byte) {
	select {
	case c.queue <- frame:
		return
	default:
	}
	for len(c.queue) > 0 {
		select {
		case <-c.queue:
		default:
		}
	}
	c.queue <- encodeFrame(EventResync, []byte(`{"reason":"client too slow; events were dropped"}`))
}

// Clients is how many streams are open.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *Hub) subscribe() (*subscriber, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	c := &subscriber{queue: make(chan []byte, h.cfg.Buffer)}
	// Replay what a dashboard shows before the next tick: the last status
	// and recent log lines (never more than the queue holds).
	if h.status != nil {
		c.queue <- h.status
	}
	for _, f := range h.recent[max(0, len(h.recent)-(h.cfg.Buffer-len(c.queue))):] {
		c.queue <- f
	}
	h.clients[c] = struct{}{}
	h.handlers.Add(1)
	return c, true
}

func (h *Hub) unsubscribe(c *subscriber) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	h.handlers.Done()
}

// Close ends every stream and waits for their handlers to return; later
// publishes are dropped. Safe to call twice.
func (h *Hub) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		close(h.done)
		h.handlers.Wait()
	})
	return nil
}

// ServeHTTP streams events as Server-Sent Events until the client goes,
// or the hub closes.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	c, ok := h.subscribe()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "the node is shutting down")
		return
	}
	defer h.unsubscribe(c)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// retry: how long a browser's EventSource waits before reconnecting.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	keepAlive := time.NewTicker(h.cfg.KeepAlive)
	defer keepAlive.Stop()
	for {
		var frame []byte
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-keepAlive.C:
			frame = []byte(": keep-alive\n\n")
		case frame = <-c.queue:
		}
		// A client that stops reading must not hold this goroutine forever.
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := w.Write(frame); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// encodeFrame is one SSE message; JSON has no raw newlines, so data fits
// one line.
func encodeFrame(typ string, data []byte) []byte {
	b := make([]byte, 0, len(typ)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// ServeEvents adds GET /api/v1/events (with the token, or a ticket from
// POST /api/v1/events/ticket for a browser's EventSource), and closes the
// hub before the server shuts down: open streams never go idle, so
// http.Server.Shutdown would otherwise wait for them until its timeout.
func (s *Server) ServeEvents(h *Hub) {
	s.handle("GET "+eventsPath, h)
	s.Handle("POST "+eventsPath+"/ticket", s.handleTicket)
	s.beforeClose = append(s.beforeClose, h.Close)
}
