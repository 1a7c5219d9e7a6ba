package job

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/wire"
)

// A worker stages a job before its time limit starts: it fetches the
// module or image and the inputs, then its executor compiles the module
// or unpacks the image. On a large image over a slow link that takes
// minutes, far longer than the submitter's report grace, so a submitter
// that counted the whole time from the assignment would drop an honest,
// busy worker as a no-show and hand the job to the next one, which would
// fare no better. Instead the worker says how its staging goes
// (job-progress/1 on /vft/progress/1): "staging" every ProgressInterval
// while it fetches and prepares, "running" once when its executor starts
// the job's clock. The submitter then gives each worker its own report
// deadline:
//
//   - never earlier than the assignment + timeout + report grace (as for a
//     worker that says nothing);
//   - while staging, one report grace after its last word;
//   - once running, the timeout + report grace from then;
//   - never later than the assignment + stagingLimit(timeout) + timeout +
//     report grace: a worker that only ever says "staging" cannot hold a
//     job longer than an honest one could take to stage it.
const (
	KindProgress     = "job-progress/1"
	ProtocolProgress = "/vft/progress/1"

	StageStaging = "staging"
	StageRunning = "running"
)

// ProgressInterval is how often a staging worker tells its submitter it is
// still at it. A submitter's report grace (market.report_grace, 2 minutes
// by default) must be longer for the messages to keep a worker.
var ProgressInterval = 15 * time.Second

// progressMinGap: a submitter ignores progress from one worker of one job
// that comes sooner than this after the last (without blame: it costs a
// map lookup).
const progressMinGap = time.Second

// ProgressMsg is a worker's word on its staging, sent to the submitter.
type ProgressMsg struct {
	Job string `cbor:"job"`
	// Stage is StageStaging or StageRunning.
	Stage string `cbor:"stage"`
	// StagedBytes are the bytes of module, image and inputs staged so
	// far (shown to the user; not trusted for anything).
	StagedBytes uint64 `cbor:"staged_bytes"`
}

// fetchSlack is how much longer than the job's timeout a worker may take
// to fetch the job's content, and compileSlack how long its executor may
// take to compile or unpack it (wasm.DefaultCompileTimeout).
const (
	fetchSlack   = 5 * time.Minute
	compileSlack = 5 * time.Minute
)

// stagingLimit is the longest an honest worker stages a job whose timeout
// is timeout: its fetch limit plus its executor's compile limit.
func stagingLimit(timeout time.Duration) time.Duration {
	return timeout + fetchSlack + compileSlack
}

// workerProgress is what a submitter heard from its workers' staging.
type workerProgress struct {
	mu   sync.Mutex
	jobs map[string]map[peer.ID]*heard
}

type heard struct {
	last      time.Time // last progress message
	runningAt time.Time // zero while staging
}

func newWorkerProgress() *workerProgress {
	return &workerProgress{jobs: map[string]map[peer.ID]*heard{}}
}

// record notes msg from w; it returns false for a message too soon after
// the last, and whether this is w's first "running".
func (p *workerProgress) record(job string, w peer.ID, msg ProgressMsg, now time.Time) (ok bool, firstRun bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.jobs[job]
	if ws == nil {
		ws = map[peer.ID]*heard{}
		p.jobs[job] = ws
	}
	h := ws[w]
	if h == nil {
		h = &heard{}
		ws[w] = h
	} else if now.Sub(h.last) < progressMinGap && !(msg.Stage == StageRunning && h.runningAt.IsZero()) {
		return false, false
	}
	h.last = now
	if msg.Stage == StageRunning && h.runningAt.IsZero() {
		h.runningAt = now
		return true, true
	}
	return true, false
}

// deadline is w's report deadline for a job assigned at assignedAt.
func (p *workerProgress) deadline(job string, w peer.ID, assignedAt time.Time, timeout, grace time.Duration) time.Time {
	base := assignedAt.Add(timeout + grace)
	p.mu.Lock()
	h := p.jobs[job][w]
	var last, runningAt time.Time
	if h != nil {
		last, runningAt = h.last, h.runningAt
	}
	p.mu.Unlock()
	if h == nil {
		return base
	}
	d := last.Add(grace)
	if !runningAt.IsZero() {
		d = runningAt.Add(timeout + grace)
	}
	limit := assignedAt.Add(stagingLimit(timeout) + timeout + grace)
	if d.After(limit) {
		d = limit
	}
	if d.Before(base) {
		return base
	}
	return d
}

// forget drops what was heard about a job (ended) or one of its workers.
func (p *workerProgress) forget(job string, workers ...peer.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(workers) == 0 {
		delete(p.jobs, job)
		return
	}
	for _, w := range workers {
		delete(p.jobs[job], w)
	}
}

// handleProgress records a worker's progress on one of this node's jobs.
func (m *Market) handleProgress(st network.Stream) {
	serve(st, 1<<10, func(from peer.ID, req []byte) ([]byte, error) {
		var msg ProgressMsg
		if err := openDirect(req, KindProgress, from, m.now(), &msg); err != nil {
			return nil, err
		}
		refuse := func(reason string) ([]byte, error) {
			return wire.Seal(m.key, KindAck, m.now(), AckMsg{Job: msg.Job, Reason: reason})
		}
		if msg.Stage != StageStaging && msg.Stage != StageRunning {
			return refuse(fmt.Sprintf("stage %q is neither %q nor %q", msg.Stage, StageStaging, StageRunning))
		}
		rec, err := m.awaitWorker(msg.Job, from)
		if err != nil || rec.Role != RoleSubmitter || !slices.Contains(rec.Workers, from) {
			return refuse("not a worker of this job")
		}
		if rec.State.Terminal() {
			return refuse("job is " + string(rec.State))
		}
		now := m.now()
		if _, firstRun := m.progress.record(msg.Job, from, msg, now); firstRun && msg.StagedBytes > 0 {
			m.book.Update(m.ctx, msg.Job, func(r *Record) {
				r.History = append(r.History, Change{State: r.State, At: now,
					Note: fmt.Sprintf("worker %s staged %.1f MiB and started", shortPeer(from.String()), float64(msg.StagedBytes)/(1<<20))})
			})
		}
		return wire.Seal(m.key, KindAck, m.now(), AckMsg{Job: msg.Job, OK: true})
	})
}

// stagingReporter tells a job's submitter how the worker's staging goes,
// best effort: "staging" every ProgressInterval until the job's clock
// starts, then "running" once.
type stagingReporter struct {
	w       *Worker
	o       Offer
	staged  atomic.Uint64
	running chan struct{}
	once    sync.Once
	stop    context.CancelFunc
}

func (w *Worker) reportStaging(ctx context.Context, o Offer) *stagingReporter {
	ctx, stop := context.WithCancel(ctx)
	r := &stagingReporter{w: w, o: o, running: make(chan struct{}), stop: stop}
	go r.loop(ctx)
	return r
}

func (r *stagingReporter) loop(ctx context.Context) {
	tick := time.NewTicker(ProgressInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.running:
			r.send(ctx, StageRunning)
			return
		case <-tick.C:
			r.send(ctx, StageStaging)
		}
	}
}

func (r *stagingReporter) send(ctx context.Context, stage string) {
	msg, err := wire.Seal(r.w.key, KindProgress, r.w.now(), ProgressMsg{Job: r.o.ID.String(), Stage: stage, StagedBytes: r.staged.Load()})
	if err != nil {
		return
	}
	if _, err := exchange(ctx, r.w.streams, r.o.Submitter, ProtocolProgress, msg, 1<<10); err != nil {
		r.w.log.Debug("progress not delivered", "job", r.o.ID, "stage", stage, "err", err)
	}
}

// started is the executor's Task.Started: the job's clock has started.
func (r *stagingReporter) started() { r.once.Do(func() { close(r.running) }) }

// Close stops the reports without waiting: the job's commitment, which
// follows, tells the submitter more than a late "running" would.
func (r *stagingReporter) Close() { r.stop() }
