package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/verify"
	"github.com/vft-network/vft/wire"
)

// Content is the content store as a worker uses it.
type Content interface {
	// GetFrom fetches a CID (from the network if needed) and writes it to
	// path, refusing content over maxBytes of files (0: what fits on disk)
	// and any symlink. It asks holder first: the job's submitter has its
	// module and inputs, and asking the node's other peers first costs a
	// round trip each on a large network.
	GetFrom(ctx context.Context, holder peer.ID, cid, path string, maxBytes int64) error
	// AddDir imports a directory and returns its CID, pinned.
	AddDir(ctx context.Context, path string) (string, error)
}

// Executors maps an executor name to what runs it.
type Executors map[string]executor.Executor

// moduleHolder is an executor that keeps compiled modules in memory by
// the content address they were fetched by (the wasm executor on
// Wasmtime): a task of a module it holds runs without the module staged.
type moduleHolder interface {
	// HoldModule pins the module fetched as id, compiled for a task with
	// floats, when the executor holds it, and gives the size its file
	// would have; release unpins it.
	HoldModule(id, floats string) (size int64, release func(), ok bool)
}

// Device is a GPU a worker may hand to a job.
type Device struct {
	UUID        string
	Name        string
	MemoryBytes uint64
}

// Devices lists the GPUs jobs may use now (after the miner's exclusions).
type Devices func(ctx context.Context) []Device

// Faults a deliberately dishonest worker can be told to commit, for tests
// and demos of verification (VFT_DEBUG_FAULT; refused unless the node's
// config has debug.allow_faults).
const (
	FaultWrongResult = "wrong-result" // returns garbage instead of running the job
	FaultCopy        = "copy"         // skips the work and tries to pass off a result it did not compute
	FaultNoShow      = "no-show"      // accepts the assignment, then never reports
	// FaultSlowStaging is an honest worker on a slow link: its staging
	// takes SlowStaging longer, for tests of the report deadline.
	FaultSlowStaging = "slow-staging"
)

// Faults lists the valid fault names.
var Faults = []string{FaultWrongResult, FaultCopy, FaultNoShow, FaultSlowStaging}

// SlowStaging is how much longer FaultSlowStaging makes a worker stage.
var SlowStaging = 10 * time.Second

// Worker runs assigned jobs: fetch inputs, execute, import the output,
// report the result CID to the submitter.
type Worker struct {
	key     *identity.Key
	streams Streams
	book    *Book
	content Content
	execs   Executors
	workDir string
	log     *slog.Logger

	devices Devices
	fault   string
	// escrow checks an escrowed job's escrow on chain before it runs.
	escrow func(ctx context.Context, o Offer, workers []peer.ID) error
	// rescuer releases escrows whose submitter went silent (rescue.go).
	rescuer     Rescuer
	rescueAfter time.Duration

	// caps are this miner's limits on what a job may make it store.
	caps StagingCaps
	// commitRetryMax caps the wait between two tries to deliver a
	// commitment.
	commitRetryMax time.Duration

	mu sync.Mutex
	// running holds the jobs that have a slot: reserved when the
	// assignment is accepted, cancellable once the run starts.
	running map[string]context.CancelFunc
	gpusBy  map[string][]string // job ID → GPU UUIDs it holds
}

// StagingCaps are a miner's limits on what one job may make it store, from
// its [market] config; zero means no cap of that kind.
type StagingCaps struct {
	// InputBytes caps the module and inputs fetched for one job.
	InputBytes int64
	// OutputBytes caps /output for a job whose spec sets no max_output
	// (one that asks for more gets no bid: Policy.MaxOutputBytes).
	OutputBytes int64
	// OutputFiles caps the files and directories a job leaves in /output:
	// empty ones cost no bytes but do cost the import and the disk.
	OutputFiles int
}

// maxRunStarts is how many times a worker starts running one job. A
// node that stopped during a run runs the job again after its restart;
// a job that itself crashed the node (a sandbox escape of memory or a
// bug) would crash it again, so after this many starts it fails.
const maxRunStarts = 2

// WorkerOptions configure a Worker; zero fields leave a feature off.
type WorkerOptions struct {
	// Executors run the tasks, by kind name.
	Executors Executors
	// WorkDir holds each job's staging and scratch space.
	WorkDir string
	// Caps are the miner's limits on what one job may make it store.
	Caps StagingCaps
	// Devices lists the GPUs native jobs may use.
	Devices Devices
	// Fault makes this worker dishonest in the named way (Faults).
	Fault string
	// CheckEscrow checks an escrowed job's escrow on chain before it runs;
	// without it the worker runs no escrowed job.
	CheckEscrow func(ctx context.Context, o Offer, workers []peer.ID) error
	// Rescuer releases escrows whose submitter gave no verdict, RescueAfter
	// (default RescueAfter) past the deadline (rescue.go; Rescue).
	Rescuer     Rescuer
	RescueAfter time.Duration
}

// NewWorker builds a worker.
func NewWorker(key *identity.Key, streams Streams, book *Book, content Content, opts WorkerOptions, log *slog.Logger) *Worker {
	if opts.RescueAfter == 0 {
		opts.RescueAfter = RescueAfter
	}
	return &Worker{key: key, streams: streams, book: book, content: content, execs: opts.Executors, workDir: opts.WorkDir,
		log: log.With("component", "worker"), commitRetryMax: 30 * time.Second,
		devices: opts.Devices, fault: opts.Fault, escrow: opts.CheckEscrow, caps: opts.Caps,
		rescuer: opts.Rescuer, rescueAfter: opts.RescueAfter,
		running: map[string]context.CancelFunc{}, gpusBy: map[string][]string{}}
}

// now reads the book's clock (Book.Now).
func (w *Worker) now() time.Time { return w.book.Now() }

// Reserve takes a job slot for an accepted assignment before its run
// starts, so that Running counts it at once.
func (w *Worker) Reserve(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.running[id]; !ok {
		w.running[id] = func() {}
	}
}

// Run executes one assigned job to the end and reports its result. Every
// failure ends as a failed job with a reason, never a crashed daemon.
func (w *Worker) Run(parent context.Context, rec Record) {
	ctx, cancel := context.WithCancel(parent)
	w.mu.Lock()
	w.running[rec.ID] = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, rec.ID)
		w.mu.Unlock()
		cancel()
	}()
	o, err := OpenOffer(rec.Offer, w.now())
	if err != nil {
		w.finish(ctx, rec.ID, "", StateFailed, "offer no longer valid: "+err.Error())
		return
	}
	// Counted before the run, on disk: a run that kills the node is not
	// started again and again (maxRunStarts).
	started := func(r *Record) { r.Runs++ }
	id := rec.ID
	if rec.State != StateRunning {
		rec, err = w.book.Move(ctx, rec.ID, StateRunning, "", started)
	} else { // resumed after a restart
		rec, err = w.book.Update(ctx, rec.ID, started)
	}
	if err != nil {
		w.log.Warn("start job", "job", id, "err", err)
		return
	}
	go w.started(ctx, o) // best effort; never delays the run
	if w.fault == FaultNoShow {
		w.log.Warn("debug fault: not running the job and never reporting", "job", rec.ID)
		return
	}
	var result string
	runErr := w.awaitEscrow(ctx, o, rec)
	switch {
	case rec.Runs > maxRunStarts:
		runErr = fmt.Errorf("not run again: the node stopped during each of its %d runs of this job, which may be what stopped it", rec.Runs-1)
	case runErr != nil:
		runErr = fmt.Errorf("not run: the escrow does not secure it: %w", runErr)
	default:
		progress := w.reportStaging(ctx, o)
		result, runErr = w.execute(ctx, o, progress)
		progress.Close()
	}
	if errors.Is(runErr, executor.ErrClosed) {
		// The node closed its executors under the run: it is stopping,
		// and the job is not to blame. Nothing is reported, and the start
		// is not counted, so that a restart runs the job again.
		w.book.Update(context.Background(), rec.ID, func(r *Record) { r.Runs = max(0, r.Runs-1) })
		return
	}
	msg := CommitMsg{Job: rec.ID}
	var salt []byte
	if runErr != nil {
		msg.Error = runErr.Error()
		var pe *ProgramError
		if errors.As(runErr, &pe) {
			msg.Failure = pe.Signature
		}
		if ctx.Err() == nil {
			// Recorded before the failure leaves: the submitter's verdict
			// can arrive before the commit's reply, and this record must
			// keep its own run's reason, not the verdict's.
			w.finish(ctx, rec.ID, "", StateFailed, runErr.Error())
		}
	} else {
		salt = verify.NewSalt()
		msg.Commitment = verify.Commit(result, w.key.PeerID(), salt)
		if w.fault == FaultCopy {
			// With nothing to copy before the reveals (commitments are
			// sent to the submitter only), a copier commits to a guess and
			// reveals whatever it learns later; the reveal cannot match.
			msg.Commitment = verify.Commit("copied", w.key.PeerID(), verify.NewSalt())
		}
		// Saved before the commitment leaves, so a restarted worker can
		// still open it.
		if _, err := w.book.Update(ctx, rec.ID, func(r *Record) { r.Result, r.Salt = result, salt }); err != nil {
			w.log.Warn("record result", "job", rec.ID, "err", err)
			return
		}
	}
	err = w.commit(ctx, o, msg)
	if ctx.Err() != nil {
		if parent.Err() != nil {
			// The node is shutting down, not crashing: this start does
			// not count against the job.
			w.book.Update(context.Background(), rec.ID, func(r *Record) { r.Runs = max(0, r.Runs-1) })
		}
		return // cancelled (the market has recorded why) or shutting down
	}
	switch {
	case runErr != nil:
		// Recorded before the commit.
	case err != nil && o.Spec.Escrow:
		// The escrow still holds this worker's pay: if the submitter is
		// gone for good, the workers release it themselves (rescue.go).
		w.finish(ctx, rec.ID, result, StateVerifying, "commitment not delivered to the submitter ("+err.Error()+
			"); waiting for a verdict, or after the deadline for the workers to release the escrow")
	case err != nil:
		w.finish(ctx, rec.ID, result, StateFailed, "commitment not delivered to the submitter: "+err.Error())
	default:
		w.finish(ctx, rec.ID, result, StateVerifying, "result "+result+" committed")
	}
}

// started tells the submitter, best effort, that the job is running.
func (w *Worker) started(ctx context.Context, o Offer) {
	msg, err := wire.Seal(w.key, KindStarted, w.now(), StartedMsg{Job: o.ID.String()})
	if err != nil {
		return
	}
	if _, err := exchange(ctx, w.streams, o.Submitter, ProtocolStarted, msg, 1<<10); err != nil {
		w.log.Debug("started not delivered", "job", o.ID, "err", err)
	}
}

// Start serves the submitters' reveal requests, after clearing the
// scratch space a previous run of the node left (nothing runs yet, and a
// resumed job stages its inputs again).
func (w *Worker) Start() {
	if err := os.RemoveAll(w.workDir); err != nil {
		w.log.Warn("clear the work directory", "dir", w.workDir, "err", err)
	}
	w.streams.SetStreamHandler(ProtocolReveal, w.handleReveal)
}

// Close stops serving reveals.
func (w *Worker) Close() error {
	w.streams.RemoveStreamHandler(ProtocolReveal)
	return nil
}

// escrowWait bounds how long a worker waits for the submitter to fund an
// escrow after the assignment (a few slots on a healthy chain).
const escrowWait = 2 * time.Minute

// awaitEscrow checks the job's escrow until it is there or the wait ends.
func (w *Worker) awaitEscrow(ctx context.Context, o Offer, rec Record) error {
	if !o.Spec.Escrow {
		return nil
	}
	if w.escrow == nil {
		return fmt.Errorf("the job is paid from an escrow, and this node cannot check one (chain.settle is off)")
	}
	deadline := w.now().Add(escrowWait)
	for {
		err := w.escrow(ctx, o, rec.Workers)
		if err == nil || w.now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// handleReveal opens this worker's commitment for the job's submitter.
// Another worker of an escrowed job may ask only after the job's deadline,
// when no commitment can be sent any more (rescue.go); before, it must not
// learn the result, or it could pass it off as its own.
func (w *Worker) handleReveal(st network.Stream) {
	serve(st, 4<<10, func(from peer.ID, req []byte) ([]byte, error) {
		var r RevealRequest
		if err := openDirect(req, KindRevealRequest, from, w.now(), &r); err != nil {
			return nil, err
		}
		rec, err := w.book.Get(context.Background(), r.Job)
		if err != nil || rec.Role != RoleWorker {
			return nil, fmt.Errorf("reveal of %s: not a job of this worker", r.Job)
		}
		// Not OpenOffer: the record's offer was checked when it was made,
		// and a co-worker asks after the offer's deadline.
		o, err := RecordedOffer(rec.Offer)
		if err != nil {
			return nil, fmt.Errorf("reveal of %s: %w", r.Job, err)
		}
		coWorker := o.Spec.Escrow && slices.Contains(rec.Workers, from) && w.now().After(time.UnixMilli(o.Spec.Deadline))
		if o.Submitter != from && !coWorker {
			return nil, fmt.Errorf("reveal of %s asked by %s, not its submitter (nor, after the deadline, a co-worker of an escrowed job)", r.Job, from)
		}
		reveal := RevealMsg{Job: r.Job, Result: rec.Result, Salt: rec.Salt}
		if w.fault == FaultCopy {
			reveal.Result, reveal.Salt = rec.Result, verify.NewSalt()
		}
		if len(reveal.Salt) == 0 {
			return nil, fmt.Errorf("reveal of %s: nothing committed yet", r.Job)
		}
		return wire.Seal(w.key, KindReveal, w.now(), reveal)
	})
}

// Running is how many jobs the worker is running now.
func (w *Worker) Running() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running)
}

// allocateGPUs reserves n GPUs that match the job's needs and no other
// running job holds, so two jobs never share a GPU.
func (w *Worker) allocateGPUs(ctx context.Context, id string, need Resources) ([]string, error) {
	if need.GPUs == 0 {
		return nil, nil
	}
	if w.devices == nil {
		return nil, fmt.Errorf("this node has no GPUs to give")
	}
	devices := w.devices(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	held := map[string]bool{}
	for _, uuids := range w.gpusBy {
		for _, u := range uuids {
			held[u] = true
		}
	}
	var picked []string
	for _, d := range devices {
		if held[d.UUID] || d.UUID == "" || d.MemoryBytes < need.GPUMemoryBytes {
			continue
		}
		if need.GPUModel != "" && !strings.Contains(strings.ToLower(d.Name), strings.ToLower(need.GPUModel)) {
			continue
		}
		picked = append(picked, d.UUID)
		if uint32(len(picked)) == need.GPUs {
			w.gpusBy[id] = picked
			return picked, nil
		}
	}
	return nil, fmt.Errorf("%d matching GPU(s) free, the job needs %d", len(picked), need.GPUs)
}

func (w *Worker) releaseGPUs(id string) {
	w.mu.Lock()
	delete(w.gpusBy, id)
	w.mu.Unlock()
}

// commit delivers the commitment to the submitter, retrying with backoff
// until the job's deadline: a submitter that restarts or loses its
// connection for a while still gets the work it paid for, and one that
// does not arrive makes the submitter give the work to someone else.
func (w *Worker) commit(ctx context.Context, o Offer, msg CommitMsg) error {
	var err error
	deadline := time.UnixMilli(o.Spec.Deadline)
	wait := time.Second
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if w.now().Add(wait).After(deadline) {
				return fmt.Errorf("%w (gave up at the job's deadline after %d tries)", err, attempt)
			}
			w.log.Info("commitment not delivered, retrying", "job", msg.Job, "err", err, "in", wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, w.commitRetryMax)
		}
		var data, reply []byte
		if data, err = wire.Seal(w.key, KindCommit, w.now(), msg); err != nil {
			return err
		}
		if reply, err = exchange(ctx, w.streams, o.Submitter, ProtocolCommit, data, 4<<10); err != nil {
			continue
		}
		var ack AckMsg
		if err = openDirect(reply, KindAck, o.Submitter, w.now(), &ack); err != nil {
			continue
		}
		if ack.OK {
			return nil
		}
		// Refusals are final in the normal course (the submitter waits for
		// an assignment in flight before answering), but a retry costs
		// little and covers a submitter that was restarting.
		err = fmt.Errorf("submitter refused the commitment: %s", ack.Reason)
		if attempt >= 3 {
			return err
		}
	}
}

// Cancel stops a running job (its submitter withdrew it).
func (w *Worker) Cancel(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cancel, ok := w.running[id]; ok {
		cancel()
	}
}

func (w *Worker) finish(ctx context.Context, id, result string, to State, note string) {
	_, err := w.book.Move(ctx, id, to, note, func(r *Record) {
		r.Result = result
		if to == StateFailed {
			r.Reason = note
		}
	})
	if err != nil {
		w.log.Warn("record job end", "job", id, "err", err)
	}
}

// execute fetches, runs and imports; it returns the result CID.
func (w *Worker) execute(ctx context.Context, o Offer, progress *stagingReporter) (string, error) {
	s := o.Spec
	ex, ok := w.execs[s.Executor]
	if !ok {
		return "", fmt.Errorf("this node has no %s executor", s.Executor)
	}
	kind, err := kindOf(s.Executor)
	if err != nil {
		return "", err
	}
	kindSpec := s.ForExecutor()
	dir := filepath.Join(w.workDir, o.ID.String())
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(dir, "inputs"), 0o700); err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	outputCap := int64(s.Needs.MaxOutputBytes)
	if outputCap == 0 {
		outputCap = w.caps.OutputBytes
	}
	task := executor.Task{
		JobID: o.ID.String(), Seed: s.Seed, Args: s.Args, Env: s.Env,
		OutputDir: filepath.Join(dir, "output"),
		Limits: executor.Limits{
			MemoryBytes: s.Needs.MemoryBytes, Timeout: s.Needs.Timeout(), MaxOutputBytes: outputCap,
			CPUCores: s.Needs.CPUCores,
		},
	}
	fetchCtx, cancel := context.WithTimeout(ctx, s.Needs.Timeout()+fetchSlack)
	defer cancel()
	task.Started = progress.started
	if w.fault == FaultSlowStaging {
		w.log.Warn("debug fault: staging slowly", "job", o.ID, "for", SlowStaging)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(SlowStaging):
		}
	}
	staging := newStagingBudget(w.caps.InputBytes, o.Submitter, &progress.staged)
	staged := map[string]string{}
	holder, _ := ex.(moduleHolder)
	for _, c := range kind.Content(kindSpec) {
		// A module the executor holds compiled is not fetched and written
		// out again, but costs the budget what its file would have, so
		// that every worker's staging ends the same way.
		if holder != nil {
			if size, release, ok := holder.HoldModule(c.CID, kindSpec.Floats); ok {
				if staging.charge(size, c.MaxBytes) {
					defer release()
					continue
				}
				release() // over a limit: staging it says which
			}
		}
		path := filepath.Join(dir, c.File)
		if err := staging.get(fetchCtx, w.content, c.CID, path, c.MaxBytes); err != nil {
			return "", fmt.Errorf("fetch %s %s: %w", c.Field, c.CID, err)
		}
		staged[c.Field] = path
	}
	if err := kind.Prepare(kindSpec, staged, &task); err != nil {
		return "", err
	}
	// Kinds that cannot use GPUs refuse specs that need some (CheckSpec).
	gpus, err := w.allocateGPUs(ctx, o.ID.String(), s.Needs)
	if err != nil {
		return "", err
	}
	defer w.releaseGPUs(o.ID.String())
	task.GPUs = gpus
	for i, in := range s.Inputs {
		host := filepath.Join(dir, "inputs", fmt.Sprint(i))
		if err := staging.get(fetchCtx, w.content, in.CID, host, 0); err != nil {
			return "", fmt.Errorf("fetch input %s: %w", in.CID, err)
		}
		task.Inputs = append(task.Inputs, executor.Mount{Host: host, Guest: in.Path})
	}
	if w.fault == FaultWrongResult || w.fault == FaultCopy {
		w.log.Warn("debug fault: not running the job", "job", o.ID, "fault", w.fault)
		return w.garbage(ctx, task.OutputDir)
	}
	res, err := ex.Run(ctx, task)
	w.log.Info("task ran", "job", o.ID, "executor", s.Executor, "duration", res.Duration,
		"cpu_time", res.CPUTime, "peak_memory_bytes", res.PeakMemoryBytes, "output_bytes", res.OutputBytes, "err", err)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("%w: exit code %d", executor.ErrExit, res.ExitCode)
	}
	if err != nil {
		return "", programError(res, err)
	}
	if err := w.checkOutputFiles(res.OutputEntries); err != nil {
		return "", err
	}
	id, err := w.content.AddDir(ctx, task.OutputDir)
	if err != nil {
		return "", fmt.Errorf("import /output: %w", err)
	}
	return id, nil
}

// stagingBudget spends a miner's market.max_input over one job's module
// and inputs: each fetch may write what the ones before it left.
type stagingBudget struct {
	total, used int64          // total 0: no cap of the miner's own
	holder      peer.ID        // has all of the job's content: its submitter
	staged      *atomic.Uint64 // what the submitter is told is staged
}

func newStagingBudget(total int64, holder peer.ID, staged *atomic.Uint64) *stagingBudget {
	return &stagingBudget{total: total, holder: holder, staged: staged}
}

// limit is what the next fetch may write: what is left of the budget and
// at most limit (0: none); full when nothing is left.
func (b *stagingBudget) limit(limit int64) (int64, bool) {
	if b.total > 0 {
		left := b.total - b.used
		if left <= 0 {
			return 0, true
		}
		if limit == 0 || left < limit {
			limit = left
		}
	}
	return limit, false
}

// charge spends size bytes of content that needs no fetch (a module the
// executor holds), if a fetch of it within limit would have succeeded.
func (b *stagingBudget) charge(size, limit int64) bool {
	limit, full := b.limit(limit)
	if full || (limit > 0 && size > limit) {
		return false
	}
	b.used += size
	b.staged.Store(uint64(b.used))
	return true
}

// get fetches c to path within what is left and within limit (0: none).
func (b *stagingBudget) get(ctx context.Context, content Content, c, path string, limit int64) error {
	limit, full := b.limit(limit)
	if full {
		return fmt.Errorf("%w: the job's module and inputs already fill the %d bytes this miner stages per job (market.max_input)",
			executor.ErrBadTask, b.total)
	}
	if err := content.GetFrom(ctx, b.holder, c, path, limit); err != nil {
		if b.total > 0 && limit == b.total-b.used {
			return fmt.Errorf("%w (market.max_input on this miner is %d bytes per job)", err, b.total)
		}
		return err
	}
	usage, err := executor.DirUsage(path)
	if err != nil {
		return err
	}
	b.used += usage.Bytes
	b.staged.Store(uint64(b.used))
	return nil
}

// checkOutputFiles refuses an output of more files and directories than
// the miner accepts (market.max_output_files), before it is imported; the
// executor counted them.
func (w *Worker) checkOutputFiles(entries int64) error {
	if w.caps.OutputFiles > 0 && entries > int64(w.caps.OutputFiles) {
		return fmt.Errorf("%w: the job left %d files and directories under /output, more than the %d this miner accepts (market.max_output_files)",
			executor.ErrOutputLimit, entries, w.caps.OutputFiles)
	}
	return nil
}

// garbage imports a made-up output, as a cheating worker would return.
func (w *Worker) garbage(ctx context.Context, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "result.txt"), verify.NewSalt(), 0o600); err != nil {
		return "", err
	}
	return w.content.AddDir(ctx, dir)
}

// ProgramError is a run that failed because of the program itself: it
// exited non-zero, trapped, ran out of its time or memory, or is not a
// module at all. Every honest worker's run of the job fails the same way,
// so the workers agree on Signature (verify.Report.Failure) instead of
// dissenting.
type ProgramError struct {
	// Signature is what the runs are compared by: the failure without
	// what may differ between machines ("exit code 3", "trap: unreachable").
	Signature string
	Err       error
}

func (e *ProgramError) Error() string { return e.Err.Error() }
func (e *ProgramError) Unwrap() error { return e.Err }

// programError wraps a failed run's error as a ProgramError when the
// program is to blame, with the tail of its stderr for the submitter;
// any other error (the sandbox could not start, the run was cancelled)
// is returned as it is, the worker's own failure.
func programError(res executor.Result, err error) error {
	var sig string
	switch {
	case errors.Is(err, executor.ErrExit):
		sig = fmt.Sprintf("exit code %d", res.ExitCode)
	case errors.Is(err, executor.ErrTrap):
		msg := err.Error()
		if _, after, ok := strings.Cut(msg, executor.ErrTrap.Error()+": "); ok {
			msg = after
		}
		msg, _, _ = strings.Cut(msg, "\n")
		sig = "trap: " + msg
	case errors.Is(err, executor.ErrTimeout):
		sig = "timeout"
	case errors.Is(err, executor.ErrMemoryLimit):
		sig = "memory limit"
	case errors.Is(err, executor.ErrNotWASM):
		sig = "not WebAssembly"
	default:
		return fmt.Errorf("run: %w", err)
	}
	if len(sig) > maxFailureSignature {
		sig = sig[:maxFailureSignature]
	}
	full := fmt.Errorf("run: %w", err)
	if t := strings.TrimSpace(tail(res.Stderr)); t != "" {
		full = fmt.Errorf("run: %w; stderr ends: %s", err, t)
	}
	return &ProgramError{Signature: sig, Err: full}
}

func tail(b []byte) string {
	if len(b) > 300 {
		b = b[len(b)-300:]
	}
	return string(b)
}
