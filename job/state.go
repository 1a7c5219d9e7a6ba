package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"
)

// State is where a job is in its life, seen from one node.
type State string

// The states a submitter's or a worker's job moves through.
const (
	StateOffered   State = "offered"   // submitter: offer gossiped, collecting bids
	StateAssigned  State = "assigned"  // workers chosen (submitter) / assignment received (worker)
	StateRunning   State = "running"   // inputs fetched, executor running
	StateVerifying State = "verifying" // results committed, revealed and being compared
	StateSettling  State = "settling"  // verified; payouts being sent
	StateDone      State = "done"      // result accepted (and paid)
	StateFailed    State = "failed"    // ended without an accepted result; Reason says why
	StateCancelled State = "cancelled" // withdrawn by its submitter
)

// next lists the allowed transitions; anything else is a bug or an attack
// and is refused. Every state but the final ones can be cancelled: a
// submitter always has a way out.
var next = map[State][]State{
	StateOffered:   {StateAssigned, StateFailed, StateCancelled},
	StateAssigned:  {StateRunning, StateVerifying, StateOffered, StateFailed, StateCancelled}, // back to offered: reassignment
	StateRunning:   {StateVerifying, StateAssigned, StateFailed, StateCancelled},
	StateVerifying: {StateSettling, StateDone, StateAssigned, StateFailed, StateCancelled},
	StateSettling:  {StateDone, StateFailed, StateCancelled},
}

// Terminal is true for states a job never leaves.
func (s State) Terminal() bool {
	return s == StateDone || s == StateFailed || s == StateCancelled
}

// Role is this node's part in a job.
type Role string

const (
	RoleSubmitter Role = "submitter"
	RoleWorker    Role = "worker"
)

// Record is a job as one node keeps it across restarts.
type Record struct {
	ID      string    `json:"id"`
	Role    Role      `json:"role"`
	State   State     `json:"state"`
	Offer   []byte    `json:"offer"` // the signed offer, from which the spec and ID are recomputed
	Workers []peer.ID `json:"workers,omitempty"`
	Result  string    `json:"result,omitempty"` // accepted result CID
	// Reports are the workers' results as the submitter received them
	// (worker peer ID → result CID, or "error: ..."), kept so a restarted
	// submitter still counts them.
	Reports map[string]string `json:"reports,omitempty"`
	// Failures are the signatures of the program failures among Reports
	// (worker → "exit code 3"), which agree with each other the way
	// results do.
	Failures map[string]string `json:"failures,omitempty"`
	// Commits are the workers' commitments (submitter), and Reveals their
	// signed reveals, kept as the verdict's evidence.
	Commits map[string][]byte `json:"commits,omitempty"`
	Reveals map[string][]byte `json:"reveals,omitempty"`
	// Needed is how many workers the job needs now when that is not its
	// k (0 means k): a spot-checked job adds a verifier, a split one a
	// tie-breaker; an escrowed job that lost a worker goes on with fewer.
	Needed int `json:"needed,omitempty"`
	// Missed are workers dropped for not committing by the report
	// deadline; the verdict names them.
	Missed []string `json:"missed,omitempty"`
	// Salt opens this worker's commitment to Result (worker).
	Salt    []byte         `json:"salt,omitempty"`
	Verdict *VerdictRecord `json:"verdict,omitempty"`
	// Escrow is the escrow's token account, for an escrowed job.
	Escrow  string   `json:"escrow,omitempty"`
	Payouts []Payout `json:"payouts,omitempty"`
	// ReleaseApproved is the result of an escrow release this worker
	// approved and co-signed: once the escrow is empty, that release (or
	// one like it) has paid it, even after a restart.
	ReleaseApproved string `json:"release_approved,omitempty"`
	// Runs counts the times this worker started running the job; a job
	// whose runs kept stopping the node is not run again.
	Runs   int    `json:"runs,omitempty"`
	Reason string `json:"reason,omitempty"` // why it failed or was cancelled
	// Waiting says, while a submitter's job lacks workers, why: kept
	// current every bid round, cleared once it has them.
	Waiting   string    `json:"waiting,omitempty"`
	History   []Change  `json:"history"`
	UpdatedAt time.Time `json:"updated_at"`
}

// VerdictRecord is how a job was decided: the accepted result, who
// agreed and who dissented (and why).
type VerdictRecord struct {
	Accepted  string            `json:"accepted,omitempty"`
	Agreed    []string          `json:"agreed"`
	Dissented []string          `json:"dissented"`
	Reasons   map[string]string `json:"reasons,omitempty"`
	Reason    string            `json:"reason"`
	// Author is who decided it: this node, or the submitter whose gossiped
	// verdict a worker received.
	Author string `json:"author"`
	// Revealed is, for each worker whose signed reveal the verdict carried,
	// the result it revealed: a worker's evidence that a rejection had no
	// quorum before it co-signs a refund.
	Revealed map[string]string `json:"revealed,omitempty"`
}

// Payout is one payment of a settled job.
type Payout struct {
	Recipient string `json:"recipient"` // base58 wallet address
	Worker    string `json:"worker,omitempty"`
	Amount    uint64 `json:"amount"`
	Signature string `json:"signature"`
	State     string `json:"state"`
	// Returned marks the dissenters' share of an escrow going back to the
	// submitter, not a reward.
	Returned bool `json:"returned,omitempty"`
}

// needed is how many workers the job needs now.
func (r Record) needed(k int) int {
	if r.Needed > 0 {
		return r.Needed
	}
	return k
}

// Change is one transition, kept so `vft job status` can show the stages.
type Change struct {
	State State     `json:"state"`
	At    time.Time `json:"at"`
	Note  string    `json:"note,omitempty"`
}

// ErrTransition reports a move the state machine does not allow.
var ErrTransition = errors.New("job state transition not allowed")

// ErrNoJob reports an unknown job ID.
var ErrNoJob = errors.New("no such job")

// Book keeps this node's jobs in the datastore, so a restart loses none.
type Book struct {
	ds  datastore.Batching
	now func() time.Time
	mu  sync.Mutex

	watchMu  sync.RWMutex
	watchers []func(Record)
}

var bookPrefix = datastore.NewKey("/vft/jobs")

// NewBook keeps records in ds under /vft/jobs.
func NewBook(ds datastore.Batching, now func() time.Time) *Book {
	if now == nil {
		now = time.Now
	}
	return &Book{ds: ds, now: now}
}

// Now is the clock of the job protocol: the market and the worker that
// share this book read every time they decide on (freshness, deadlines,
// history, rescue) from it, so a test that injects one clock in NewBook
// moves them all. Timers that only pace retries stay on the wall clock.
func (b *Book) Now() time.Time { return b.now() }

func key(id string) datastore.Key { return bookPrefix.ChildString(id) }

// Watch calls fn with every record after it is saved (created, moved or
// updated), in the saving goroutine and outside the book's lock: metrics
// and the dashboard's live feed follow jobs this way. fn must not block.
func (b *Book) Watch(fn func(Record)) {
	b.watchMu.Lock()
	b.watchers = append(b.watchers, fn)
	b.watchMu.Unlock()
}

func (b *Book) notify(r Record, err error) (Record, error) {
	if err != nil {
		return r, err
	}
	b.watchMu.RLock()
	defer b.watchMu.RUnlock()
	for _, fn := range b.watchers {
		fn(r)
	}
	return r, nil
}

// Create records a new job in its first state, applying edit (nil: none)
// in the same write.
func (b *Book) Create(ctx context.Context, id string, role Role, offer []byte, state State, edit func(*Record)) (Record, error) {
	return b.notify(b.create(ctx, id, role, offer, state, edit))
}

func (b *Book) create(ctx context.Context, id string, role Role, offer []byte, state State, edit func(*Record)) (Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok, err := b.ds.Has(ctx, key(id)); err != nil {
		return Record{}, fmt.Errorf("job %s: %w", id, err)
	} else if ok {
		return Record{}, fmt.Errorf("job %s is already recorded", id)
	}
	now := b.now()
	r := Record{ID: id, Role: role, State: state, Offer: offer, History: []Change{{State: state, At: now}}, UpdatedAt: now}
	if edit != nil {
		edit(&r)
	}
	return r, b.put(ctx, r)
}

// Move changes a job's state if the transition is allowed, applying edit
// (workers, result, reason) in the same write.
func (b *Book) Move(ctx context.Context, id string, to State, note string, edit func(*Record)) (Record, error) {
	return b.notify(b.move(ctx, id, to, note, edit))
}

func (b *Book) move(ctx context.Context, id string, to State, note string, edit func(*Record)) (Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.get(ctx, id)
	if err != nil {
		return Record{}, err
	}
	allowed := false
	for _, s := range next[r.State] {
		if s == to {
			allowed = true
		}
	}
	if !allowed {
		return r, fmt.Errorf("%w: job %s from %s to %s", ErrTransition, id, r.State, to)
	}
	now := b.now()
	r.State, r.UpdatedAt = to, now
	r.History = append(r.History, Change{State: to, At: now, Note: note})
	if to.Terminal() {
		r.Waiting = "" // over: nothing is waited for any more
	}
	if edit != nil {
		edit(&r)
	}
	return r, b.put(ctx, r)
}

// Update edits a job without changing its state (a worker's report).
func (b *Book) Update(ctx context.Context, id string, edit func(*Record)) (Record, error) {
	return b.notify(b.update(ctx, id, edit))
}

func (b *Book) update(ctx context.Context, id string, edit func(*Record)) (Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.get(ctx, id)
	if err != nil {
		return Record{}, err
	}
	edit(&r)
	r.UpdatedAt = b.now()
	return r, b.put(ctx, r)
}

// Get returns one job.
func (b *Book) Get(ctx context.Context, id string) (Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.get(ctx, id)
}

// List returns every job, most recently updated first.
func (b *Book) List(ctx context.Context) ([]Record, error) {
	res, err := b.ds.Query(ctx, query.Query{Prefix: bookPrefix.String()})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer res.Close()
	var out []Record
	for e := range res.Next() {
		if e.Error != nil {
			return nil, fmt.Errorf("list jobs: %w", e.Error)
		}
		var r Record
		if err := json.Unmarshal(e.Value, &r); err != nil {
			return nil, fmt.Errorf("job record %s: %w", e.Key, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UpdatedAt.After(out[j].UpdatedAt) })
	return out, nil
}

// Unfinished lists the jobs a restarted node must resume or fail.
func (b *Book) Unfinished(ctx context.Context) ([]Record, error) {
	all, err := b.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, r := range all {
		if !r.State.Terminal() {
			out = append(out, r)
		}
	}
	return out, nil
}

func (b *Book) get(ctx context.Context, id string) (Record, error) {
	data, err := b.ds.Get(ctx, key(id))
	if errors.Is(err, datastore.ErrNotFound) {
		return Record{}, fmt.Errorf("%w: %s", ErrNoJob, id)
	}
	if err != nil {
		return Record{}, fmt.Errorf("job %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("job record %s: %w", id, err)
	}
	return r, nil
}

// put writes and syncs, so a record survives a crash right after.
func (b *Book) put(ctx context.Context, r Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := b.ds.Put(ctx, key(r.ID), data); err != nil {
		return fmt.Errorf("save job %s: %w", r.ID, err)
	}
	if err := b.ds.Sync(ctx, key(r.ID)); err != nil {
		return fmt.Errorf("sync job %s: %w", r.ID, err)
	}
	return nil
}
