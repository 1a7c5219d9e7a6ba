package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Layout under /vft/reputation:
//
//	/peer/<peer ID>     a record, JSON
//	/seen/<sha256 hex>  a verdict's (Author, Job) pair, its time as the value
var (
	peerPrefix = datastore.NewKey("/vft/reputation/peer")
	seenPrefix = datastore.NewKey("/vft/reputation/seen")
)

// record is one peer's evidence. Good and Bad are weighted counts; Direct
// is the part of Good from this node's own checks; Unvouched the weight
// added by authors this node does not trust (capped).
type record struct {
	Peer      peer.ID `json:"peer"`
	Good      float64 `json:"good"`
	Bad       float64 `json:"bad"`
	Direct    float64 `json:"direct"`
	Unvouched float64 `json:"unvouched"`
	Excluded  bool    `json:"excluded"`
	// Misses counts deadlines missed on this node's own jobs before the
	// peer proved itself; BenchedUntil is when the last one's bench ends.
	Misses       int       `json:"misses,omitempty"`
	BenchedUntil time.Time `json:"benched_until,omitzero"`
	LastSeen     time.Time `json:"last_seen"`
	// Updated is when the counts were last decayed.
	Updated time.Time `json:"updated"`
}

func (rec record) score() float64 { return (rec.Good + 1) / (rec.Good + rec.Bad + 2) }

// decayed is rec with its counts halved every halfLife since Updated.
func (rec record) decayed(now time.Time) record {
	dt := now.Sub(rec.Updated)
	if dt <= 0 {
		return rec
	}
	f := math.Exp2(-float64(dt) / float64(halfLife))
	rec.Good *= f
	rec.Bad *= f
	rec.Direct *= f
	rec.Updated = now
	return rec
}

func seenKey(author peer.ID, job string) string {
	h := sha256.Sum256([]byte(string(author) + "\x00" + job))
	return hex.EncodeToString(h[:])
}

// save writes the changed records and the verdict's seen key in one batch,
// with the deletions of whatever the caps evicted.
func (r *Reputation) save(ctx context.Context, changed []*record, seen string, at time.Time) error {
	b, err := r.ds.Batch(ctx)
	if err != nil {
		return fmt.Errorf("reputation: %w", err)
	}
	for _, rec := range changed {
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := b.Put(ctx, peerPrefix.ChildString(rec.Peer.String()), data); err != nil {
			return fmt.Errorf("reputation: save %s: %w", rec.Peer, err)
		}
	}
	for r.lru.Len() > r.maxPeers {
		old := r.lru.Remove(r.lru.Back()).(*record)
		delete(r.peers, old.Peer)
		if err := b.Delete(ctx, peerPrefix.ChildString(old.Peer.String())); err != nil {
			return fmt.Errorf("reputation: evict %s: %w", old.Peer, err)
		}
	}
	if seen != "" {
		for _, k := range r.seen.add(seen, at, r.now()) {
			if err := b.Delete(ctx, seenPrefix.ChildString(k)); err != nil {
				return fmt.Errorf("reputation: forget verdict %s: %w", k, err)
			}
		}
		if err := b.Put(ctx, seenPrefix.ChildString(seen), []byte(strconv.FormatInt(at.UnixNano(), 10))); err != nil {
			return fmt.Errorf("reputation: save verdict %s: %w", seen, err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		return fmt.Errorf("reputation: %w", err)
	}
	// Synced: a verdict counted and then lost in a crash could be counted
	// again when it is gossiped again.
	if err := r.ds.Sync(ctx, seenPrefix); err != nil {
		return fmt.Errorf("reputation: %w", err)
	}
	return nil
}

// load reads the table back, most recently seen peers first in the LRU.
func (r *Reputation) load(ctx context.Context) error {
	res, err := r.ds.Query(ctx, query.Query{Prefix: peerPrefix.String()})
	if err != nil {
		return fmt.Errorf("reputation: load: %w", err)
	}
	var recs []*record
	for e := range res.Next() {
		if e.Error != nil {
			return fmt.Errorf("reputation: load: %w", e.Error)
		}
		var rec record
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return fmt.Errorf("reputation: load %s: %w", e.Key, err)
		}
		recs = append(recs, &rec)
	}
	res.Close()
	slices.SortFunc(recs, func(a, b *record) int { return a.LastSeen.Compare(b.LastSeen) })
	for _, rec := range recs {
		r.peers[rec.Peer] = r.lru.PushFront(rec)
	}

	res, err = r.ds.Query(ctx, query.Query{Prefix: seenPrefix.String()})
	if err != nil {
		return fmt.Errorf("reputation: load: %w", err)
	}
	defer res.Close()
	for e := range res.Next() {
		if e.Error != nil {
			return fmt.Errorf("reputation: load: %w", e.Error)
		}
		ns, err := strconv.ParseInt(string(e.Value), 10, 64)
		if err != nil {
			return fmt.Errorf("reputation: load %s: %w", e.Key, err)
		}
		r.seen.add(datastore.RawKey(e.Key).BaseNamespace(), time.Unix(0, ns), r.now())
	}
	return nil
}

// seenSet remembers the verdicts counted within the replay window.
type seenSet struct {
	at map[string]time.Time
}

func newSeenSet() *seenSet { return &seenSet{at: make(map[string]time.Time)} }

func (s *seenSet) has(author peer.ID, job string) bool {
	_, ok := s.at[seenKey(author, job)]
	return ok
}

// add remembers key and returns the keys it forgot: those out of the
// window (their verdicts are refused as stale anyway) and, past maxSeen,
// the oldest.
func (s *seenSet) add(key string, at, now time.Time) []string {
	s.at[key] = at
	var gone []string
	if len(s.at) <= maxSeen {
		return nil
	}
	for k, t := range s.at {
		if now.Sub(t) > verdictWindow {
			gone = append(gone, k)
		}
	}
	if len(gone) == 0 {
		// All are recent: forget the oldest tenth at once, so the
		// scan runs rarely.
		keys := make([]string, 0, len(s.at))
		for k := range s.at {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return s.at[a].Compare(s.at[b]) })
		gone = keys[:maxSeen/10]
	}
	for _, k := range gone {
		delete(s.at, k)
	}
	return gone
}
