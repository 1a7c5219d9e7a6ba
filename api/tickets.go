package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// The live feed is read with a browser's EventSource, which cannot send an
// Authorization header. The dashboard therefore buys a ticket with the
// token (POST /api/v1/events/ticket) and opens
// /api/v1/events?ticket=<ticket>. A ticket is good for one connection and
// for ticketTTL only, so one that ends up in a log or a history is worth
// nothing. A cookie was the other choice: cookies are scoped to the host,
// not the port, so every other local server on 127.0.0.1 that the user's
// browser visits would receive it.
const (
	eventsPath = "/api/v1/events"
	ticketTTL  = 30 * time.Second
	// maxTickets bounds the unredeemed tickets kept: a client with the
	// token could otherwise grow the table without end.
	maxTickets = 64
)

// TicketResponse answers POST /api/v1/events/ticket.
type TicketResponse struct {
	Ticket string `json:"ticket"`
	// ExpiresInMS is how long the ticket may wait to be used.
	ExpiresInMS int64 `json:"expires_in_ms"`
}

// tickets are one-time credentials for the live feed.
type tickets struct {
	now func() time.Time
	mu  sync.Mutex
	out map[string]time.Time // ticket → expiry
}

func newTickets(now func() time.Time) *tickets {
	return &tickets{now: now, out: map[string]time.Time{}}
}

// issue makes a new ticket, dropping expired ones, and the oldest if the
// table is full.
func (t *tickets) issue() string {
	buf := make([]byte, 24)
	rand.Read(buf) // never fails (crypto/rand panics rather than return short)
	ticket := hex.EncodeToString(buf)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var oldest string
	for k, exp := range t.out {
		if !now.Before(exp) {
			delete(t.out, k)
		} else if oldest == "" || exp.Before(t.out[oldest]) {
			oldest = k
		}
	}
	if len(t.out) >= maxTickets {
		delete(t.out, oldest)
	}
	t.out[ticket] = now.Add(ticketTTL)
	return ticket
}

// redeem uses up a ticket; it reports whether it was valid.
func (t *tickets) redeem(ticket string) bool {
	if ticket == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, exp := range t.out {
		// Constant time per comparison: the map lookup alone would leak
		// through timing how much of a guess matched.
		if subtle.ConstantTimeCompare([]byte(k), []byte(ticket)) == 1 {
			delete(t.out, k)
			return t.now().Before(exp)
		}
	}
	return false
}

func (s *Server) handleTicket(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, TicketResponse{Ticket: s.tickets.issue(), ExpiresInMS: ticketTTL.Milliseconds()})
}
