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
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/identity"
)

// Native jobs get GPUs that match their needs, and two running jobs never
// share one.
func TestAllocateGPUs(t *testing.T) {
	devices := []Device{
		{UUID: "GPU-a", Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30},
		{UUID: "GPU-b", Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30},
		{UUID: "GPU-c", Name: "NVIDIA GeForce RTX 4090", MemoryBytes: 24 << 30},
	}
	w := NewWorker(nil, nil, nil, nil, WorkerOptions{WorkDir: t.TempDir(),
		Devices: func(context.Context) []Device { return devices }}, slog.New(slog.DiscardHandler))
	ctx := context.Background()

	got, err := w.allocateGPUs(ctx, "job1", Resources{GPUs: 2, GPUModel: "h100"})
	if err != nil || len(got) != 2 || got[0] != "GPU-a" || got[1] != "GPU-b" {
		t.Fatalf("job1 got %v, %v", got, err)
	}
	if _, err := w.allocateGPUs(ctx, "job2", Resources{GPUs: 1, GPUModel: "H100"}); err == nil || !strings.Contains(err.Error(), "0 matching GPU(s) free") {
		t.Fatalf("job2 took a GPU job1 holds: %v", err)
	}
	if got, err := w.allocateGPUs(ctx, "job3", Resources{GPUs: 1, GPUMemoryBytes: 16 << 30}); err != nil || got[0] != "GPU-c" {
		t.Fatalf("job3 got %v, %v", got, err)
	}
	w.releaseGPUs("job1")
	if got, err := w.allocateGPUs(ctx, "job2", Resources{GPUs: 1, GPUModel: "H100"}); err != nil || got[0] != "GPU-a" {
		t.Fatalf("after release, job2 got %v, %v", got, err)
	}
	if got, err := w.allocateGPUs(ctx, "cpu-job", Resources{}); err != nil || got != nil {
		t.Fatalf("a job without GPUs got %v, %v", got, err)
	}
}

// failingStreams is a host whose every stream fails: the submitter is gone.
type failingStreams struct{ id peer.ID }

func (f failingStreams) ID() peer.ID                                       { return f.id }
func (failingStreams) SetStreamHandler(protocol.ID, network.StreamHandler) {}
func (failingStreams) RemoveStreamHandler(protocol.ID)                     {}
func (failingStreams) NewStream(context.Context, peer.ID, ...protocol.ID) (network.Stream, error) {
	return nil, errors.New("submitter unreachable")
}

// countingContent counts the fetches a run starts with.
type countingContent struct{ gets atomic.Int32 }

func (c *countingContent) GetFrom(context.Context, peer.ID, string, string, int64) error {
	c.gets.Add(1)
	return errors.New("not found")
}
func (c *countingContent) AddDir(context.Context, string) (string, error) {
	return "", errors.New("no")
}

// A job the node was running each time it stopped is not run a third
// time: a job that crashes its worker would otherwise crash it on every
// restart until the deadline (issue 13, finding 1). A node stopped once
// runs the job again.
func TestRunsThatStopTheNodeAreNotRepeated(t *testing.T) {
	for _, tc := range []struct {
		runsBefore int
		wantRun    bool
	}{{0, true}, {1, true}, {2, false}} {
		t.Run(fmt.Sprint(tc.runsBefore, " runs before"), func(t *testing.T) {
			ctx := context.Background()
			submitter, _ := identity.Generate()
			workerKey, _ := identity.Generate()
			spec := validSpec()
			spec.Verify = VerificationPolicy{Mode: VerifyExact, Workers: 1, Quorum: 1}
			spec.Deadline = time.Now().Add(2 * time.Second).UnixMilli()
			o, err := NewOffer(submitter, spec, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			book := NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), time.Now)
			id := o.ID.String()
			if _, err := book.Create(ctx, id, RoleWorker, o.Raw, StateAssigned, nil); err != nil {
				t.Fatal(err)
			}
			rec, err := book.Move(ctx, id, StateRunning, "", func(r *Record) { r.Runs = tc.runsBefore })
			if err != nil {
				t.Fatal(err)
			}
			content := &countingContent{}
			w := NewWorker(workerKey, failingStreams{workerKey.PeerID()}, book, content,
				WorkerOptions{Executors: Executors{ExecutorWASM: nil}, WorkDir: t.TempDir()}, slog.New(slog.DiscardHandler))
			w.Run(ctx, rec)

			got, _ := book.Get(ctx, id)
			ran := content.gets.Load() > 0
			if ran != tc.wantRun {
				t.Fatalf("after %d runs the job ran again: %v, want %v (%s: %s)", tc.runsBefore, ran, tc.wantRun, got.State, got.Reason)
			}
			if !tc.wantRun && (got.State != StateFailed || !strings.Contains(got.Reason, "not run again")) {
				t.Fatalf("job %s: %q", got.State, got.Reason)
			}
		})
	}
}

// Empty files and directories cost no bytes, so the output's byte budget
// does not stop a job that leaves millions of them; the miner's file cap
// does, before anything is imported (issue 13, finding 5).
func TestOutputFileCap(t *testing.T) {
	dir := t.TempDir()
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w := NewWorker(nil, nil, nil, nil, WorkerOptions{WorkDir: t.TempDir(), Caps: StagingCaps{OutputFiles: 10}}, slog.New(slog.DiscardHandler))
	entries := func() int64 {
		u, err := executor.DirUsage(dir)
		if err != nil {
			t.Fatal(err)
		}
		return u.Entries
	}
	if err := w.checkOutputFiles(entries()); err != nil {
		t.Fatalf("10 files under a cap of 10: %v", err)
	}
	os.Mkdir(filepath.Join(dir, "empty"), 0o700)
	err := w.checkOutputFiles(entries())
	if !errors.Is(err, executor.ErrOutputLimit) || !strings.Contains(err.Error(), "left 11 files and directories") {
		t.Fatalf("11 entries under a cap of 10: %v", err)
	}
}

// The program's own failures carry a signature the workers agree on; a
// worker's own trouble does not.
func TestProgramError(t *testing.T) {
	cases := []struct {
		name      string
		res       executor.Result
		err       error
		signature string // "": the worker's own failure
		says      string
	}{
		{"exit code", executor.Result{ExitCode: 3, Stderr: []byte("leaving with 3\n")}, fmt.Errorf("%w: exit code 3", executor.ErrExit), "exit code 3", "stderr ends: leaving with 3"},
		{"trap", executor.Result{}, fmt.Errorf("%w: unreachable\nwasm stack trace: ...", executor.ErrTrap), "trap: unreachable", "unreachable"},
		{"timeout", executor.Result{}, fmt.Errorf("%w: killed after 1s", executor.ErrTimeout), "timeout", "killed after 1s"},
		{"memory", executor.Result{}, fmt.Errorf("%w: asked for more", executor.ErrMemoryLimit), "memory limit", "asked for more"},
		{"sandbox trouble", executor.Result{}, fmt.Errorf("%w: bwrap missing", executor.ErrBadTask), "", "bwrap missing"},
		{"interrupted", executor.Result{}, errors.New("run interrupted: context canceled"), "", "interrupted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := programError(tc.res, tc.err)
			var pe *ProgramError
			if got := errors.As(err, &pe); got != (tc.signature != "") || (got && pe.Signature != tc.signature) {
				t.Fatalf("programError() = %#v, want signature %q", err, tc.signature)
			}
			if !strings.Contains(err.Error(), tc.says) || !errors.Is(err, tc.err) {
				t.Fatalf("error %q does not wrap %v or say %q", err, tc.err, tc.says)
			}
		})
	}
}

// A node that stops closes its executors, and a run they cut short is the
// node's doing, not the job's: the worker tells the submitter nothing and
// runs the job again after a restart. Reporting it as a failed run made
// the submitter write the miner off, and a restarted miner's good result
// was then ignored (TestMinerRestartMidJob hung in verifying).
func TestRunCutByClosingExecutorIsNotReported(t *testing.T) {
	ctx := context.Background()
	submitter, workerKey, book, rec := assignedJob(t, time.Hour)
	id := rec.ID
	streams := &recordingStreams{id: workerKey.PeerID()}
	content := &writingContent{}
	w := NewWorker(workerKey, streams, book, content,
		WorkerOptions{Executors: Executors{ExecutorWASM: closingExecutor{}}, WorkDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	w.Run(ctx, rec)

	if got := streams.opened(ProtocolCommit); got != 0 {
		t.Fatalf("the worker sent %d commit(s) for a run its own shutdown cut", got)
	}
	// The module and the input came from their submitter first.
	if len(content.holders) != 2 || content.holders[0] != submitter.PeerID() || content.holders[1] != submitter.PeerID() {
		t.Errorf("content asked first from %v, want the submitter %s for each", content.holders, submitter.PeerID())
	}
	got, _ := book.Get(ctx, id)
	if got.State != StateRunning || got.Runs != 0 {
		t.Fatalf("after a shutdown the job is %s after %d counted runs (%s), want running, 0: a restart must run it again", got.State, got.Runs, got.Reason)
	}
}

// assignedJob is a k = 1 job assigned to a new worker, due in deadline.
func assignedJob(t *testing.T, deadline time.Duration) (submitter, worker *identity.Key, book *Book, rec Record) {
	t.Helper()
	submitter, _ = identity.Generate()
	worker, _ = identity.Generate()
	spec := validSpec()
	spec.Verify = VerificationPolicy{Mode: VerifyExact, Workers: 1, Quorum: 1}
	spec.Deadline = time.Now().Add(deadline).UnixMilli()
	o, err := NewOffer(submitter, spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	book = NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), time.Now)
	rec, err = book.Create(context.Background(), o.ID.String(), RoleWorker, o.Raw, StateAssigned, nil)
	if err != nil {
		t.Fatal(err)
	}
	return submitter, worker, book, rec
}

// closingExecutor is an executor closed under its run.
type closingExecutor struct{}

func (closingExecutor) Name() string { return ExecutorWASM }
func (closingExecutor) Run(context.Context, executor.Task) (executor.Result, error) {
	return executor.Result{}, executor.RunError(errors.New("wasm: module closed with exit_code(137)"), true, "job")
}
func (closingExecutor) Close() error { return nil }

// writingContent has every CID, as an empty file, and records whom each
// fetch asked first.
type writingContent struct{ holders []peer.ID }

func (c *writingContent) GetFrom(_ context.Context, holder peer.ID, _, path string, _ int64) error {
	c.holders = append(c.holders, holder)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, nil, 0o600)
}
func (*writingContent) AddDir(context.Context, string) (string, error) { return "", errors.New("no") }

// recordingStreams counts the streams opened per protocol, and fails them.
type recordingStreams struct {
	id     peer.ID
	onOpen func(protocol.ID) // called before each stream is refused
	mu     sync.Mutex
	opens  map[protocol.ID]int
}

func (r *recordingStreams) ID() peer.ID                                       { return r.id }
func (*recordingStreams) SetStreamHandler(protocol.ID, network.StreamHandler) {}
func (*recordingStreams) RemoveStreamHandler(protocol.ID)                     {}
func (r *recordingStreams) NewStream(_ context.Context, _ peer.ID, ps ...protocol.ID) (network.Stream, error) {
	if r.onOpen != nil {
		for _, p := range ps {
			r.onOpen(p)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opens == nil {
		r.opens = map[protocol.ID]int{}
	}
	for _, p := range ps {
		r.opens[p]++
	}
	return nil, errors.New("submitter unreachable")
}

func (r *recordingStreams) opened(p protocol.ID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opens[p]
}

// A failed run is recorded with its own reason before the failure is sent:
// the submitter's verdict can come back before the commit's reply, and the
// worker's record then said "this worker's result was not accepted"
// instead of the program's exit code (TestAgreedFailureEndsJob, in CI).
func TestFailedRunRecordedBeforeItsCommit(t *testing.T) {
	ctx := context.Background()
	_, workerKey, book, rec := assignedJob(t, 2*time.Second) // the unreachable submitter is given up on soon
	id := rec.ID
	var atCommit Record
	streams := &recordingStreams{id: workerKey.PeerID(), onOpen: func(p protocol.ID) {
		if p == ProtocolCommit && atCommit.ID == "" {
			atCommit, _ = book.Get(ctx, id)
		}
	}}
	w := NewWorker(workerKey, streams, book, &writingContent{},
		WorkerOptions{Executors: Executors{ExecutorWASM: exitingExecutor{}}, WorkDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	w.Run(ctx, rec)

	if atCommit.ID == "" {
		t.Fatal("the failed run was never sent to the submitter")
	}
	if atCommit.State != StateFailed || !strings.Contains(atCommit.Reason, "exit code 3") {
		t.Fatalf("when its failure left, the worker's record was %s %q, want failed with the exit code", atCommit.State, atCommit.Reason)
	}
	if got, _ := book.Get(ctx, id); got.State != StateFailed || !strings.Contains(got.Reason, "exit code 3") {
		t.Fatalf("the job ended %s %q", got.State, got.Reason)
	}
}

// exitingExecutor runs a program that exits 3.
type exitingExecutor struct{}

func (exitingExecutor) Name() string { return ExecutorWASM }
func (exitingExecutor) Run(context.Context, executor.Task) (executor.Result, error) {
	return executor.Result{ExitCode: 3}, fmt.Errorf("%w: exit code 3", executor.ErrExit)
}
func (exitingExecutor) Close() error { return nil }

// A module the executor holds compiled is not fetched again, but costs
// the staging budget what its file would: the input's fetch may write
// what is left. One that would not fit (here over the miner's budget) is
// fetched as usual, so that its staging fails as on a miner that does not
// hold it.
func TestHeldModuleIsNotStaged(t *testing.T) {
	for _, tc := range []struct {
		name       string
		held       bool
		size       int64
		wantFetch  []string // CIDs fetched, in order
		inputLimit int64
	}{
		{"held", true, 3 << 20, []string{fakeCID("data")}, 64<<20 - 3<<20},
		{"held, over the staging limit", true, 300 << 20, []string{fakeCID("module"), fakeCID("data")}, 0},
		{"not held", false, 0, []string{fakeCID("module"), fakeCID("data")}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Due soon: a worker whose staging failed gives up reporting it
			// to the unreachable submitter then.
			_, workerKey, book, rec := assignedJob(t, 2*time.Second)
			content := &limitContent{}
			ex := &holdingExecutor{held: tc.held, size: tc.size}
			w := NewWorker(workerKey, &recordingStreams{id: workerKey.PeerID()}, book, content,
				WorkerOptions{Executors: Executors{ExecutorWASM: ex}, WorkDir: t.TempDir(), Caps: StagingCaps{InputBytes: 64 << 20}},
				slog.New(slog.DiscardHandler))
			w.Run(context.Background(), rec)

			if !slices.Equal(content.cids, tc.wantFetch) {
				t.Fatalf("fetched %v, want %v", content.cids, tc.wantFetch)
			}
			if ex.pins != 0 {
				t.Errorf("%d pins left after the run", ex.pins)
			}
			if ex.task == nil {
				t.Fatal("the executor never ran the task")
			}
			if tc.wantFetch[0] == fakeCID("module") {
				if ex.task.ModulePath == "" {
					t.Errorf("the module was fetched but the task names no file")
				}
				return
			}
			if ex.task.ModulePath != "" || ex.task.ModuleID != fakeCID("module") {
				t.Errorf("task module %q, id %q; want no file and the module's CID", ex.task.ModulePath, ex.task.ModuleID)
			}
			if content.limits[0] != tc.inputLimit {
				t.Errorf("the input's fetch could write %d bytes, want %d (the budget less the held module)", content.limits[0], tc.inputLimit)
			}
		})
	}
}

// holdingExecutor holds one module of size bytes, or none, and records
// the task it is given, then stops as at a shutdown.
type holdingExecutor struct {
	held bool
	size int64
	pins int
	task *executor.Task
}

func (*holdingExecutor) Name() string { return ExecutorWASM }
func (e *holdingExecutor) HoldModule(id, _ string) (int64, func(), bool) {
	if !e.held || id != fakeCID("module") {
		return 0, nil, false
	}
	e.pins++
	return e.size, func() { e.pins-- }, true
}
func (e *holdingExecutor) Run(_ context.Context, t executor.Task) (executor.Result, error) {
	e.task = &t
	return executor.Result{}, executor.RunError(errors.New("wasm: module closed with exit_code(137)"), true, "job")
}
func (*holdingExecutor) Close() error { return nil }

// limitContent has every CID, as an empty file, and records each fetch's
// CID and byte limit.
type limitContent struct {
	cids   []string
	limits []int64
}

func (c *limitContent) GetFrom(_ context.Context, _ peer.ID, id, path string, maxBytes int64) error {
	c.cids, c.limits = append(c.cids, id), append(c.limits, maxBytes)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, nil, 0o600)
}
func (*limitContent) AddDir(context.Context, string) (string, error) { return "", errors.New("no") }
