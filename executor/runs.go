package executor

import (
	"context"
	"sync"
)

// Runs tracks an executor's running tasks: Close stops them and waits for
// them, and a run started after Close fails with ErrClosed. The native and
// oci executors hold one.
type Runs struct {
	life   context.Context // ends at Close
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// NewRuns returns a tracker with nothing running.
func NewRuns() *Runs {
	life, cancel := context.WithCancel(context.Background())
	return &Runs{life: life, cancel: cancel}
}

// Do runs task under a context that ends with ctx or at Close, and puts
// its error in the terms every executor uses (RunError).
func (r *Runs) Do(ctx context.Context, jobID string, task func(context.Context) (Result, error)) (Result, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Result{}, ErrClosed
	}
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.life, cancel)()
	res, err := task(ctx)
	return res, RunError(err, r.life.Err() != nil, jobID)
}

// Close stops the running tasks and waits for them; it is safe to call
// twice.
func (r *Runs) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
