package api

import (
	"net/http"

	"github.com/vft-network/vft/verify"
)

// Reputation is this node's own view of other nodes, from verdicts.
type Reputation interface {
	All() []verify.Entry
}

// ServeReputation adds GET /api/v1/reputation: every rated peer, best
// score first (verify.Entry: peer, score, good, bad, excluded, last_seen).
func (s *Server) ServeReputation(rep Reputation) {
	s.Handle("GET /api/v1/reputation", func(w http.ResponseWriter, r *http.Request) {
		entries := rep.All()
		if entries == nil {
			entries = []verify.Entry{}
		}
		writeJSON(w, http.StatusOK, entries)
	})
}
