package testnet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/executor/wasm/wasmtest"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
	"github.com/vft-network/vft/storage"
)

// The main job, end to end on real nodes, for every example workload: a
// submitter adds the module and its inputs, offers the job with exact
// verification (k = 3, m = 2), three miners bid, fetch the inputs over
// bitswap, run the module in wazero, import /output and report; the
// submitter accepts the agreeing result, fetches it, and every file equals
// the example's expected output.
func TestJobEndToEnd(t *testing.T) {
	cases := []struct {
		example, input, expected string
		args                     []string
	}{
		{"wordcount", "testdata", "texts", nil},
		{"nninfer", "testdata", "blobs", nil},
		{"matmul", "testdata", "files", nil},
		{"qsim", "testdata/bell", "bell", nil},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 3, nil)
	submitter := nodes[3]
	for _, tc := range cases {
		t.Run(tc.example, func(t *testing.T) {
			dir := filepath.Join("../../examples", tc.example)
			spec := wasmSpec(3, 3*time.Minute)
			spec.Module, spec.Seed, spec.Needs.MemoryBytes = addModule(ctx, t, submitter, dir), 42, 256<<20
			spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, filepath.Join(dir, tc.input))}}
			if tc.args != nil {
				spec.Args = tc.args
			}
			offer, err := submitter.Market().Submit(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
			checkOutput(ctx, t, submitter, rec.Result, filepath.Join(dir, "expected", tc.expected))
			// Every worker computed the same result and learnt from the
			// submitter's verdict that it was accepted.
			if v := rec.Verdict; v == nil || len(v.Agreed) != 3 || len(v.Dissented) != 0 {
				t.Fatalf("verdict %+v, want 3 agreeing workers", rec.Verdict)
			}
			for _, miner := range nodes[:3] {
				w := waitState(ctx, t, miner, offer.ID.String(), job.StateDone)
				if w.Result != rec.Result || w.Verdict == nil || w.Verdict.Author != submitter.Network().ID().String() {
					t.Fatalf("worker %s: result %s, verdict %+v; want %s accepted by the submitter", miner.Network().ID(), w.Result, w.Verdict, rec.Result)
				}
			}
		})
	}
}

// A submitter that restarts while its job waits for workers loses
// nothing: after the restart it still offers the job, and once a miner
// joins, the job runs and is accepted.
func TestSubmitterRestartKeepsJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := Config(config.ModeLight)
	dir := filepath.Join(t.TempDir(), "submitter")
	submitter := StartIn(t, dir, cfg, node.Options{})
	spec := wasmSpec(1, 2*time.Minute)
	spec.Module, spec.Seed, spec.Needs.MemoryBytes = addModule(ctx, t, submitter, "../../examples/wordcount"), 42, 256<<20
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, "../../examples/wordcount/testdata")}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := submitter.Close(); err != nil {
		t.Fatal(err)
	}

	submitter = StartIn(t, dir, cfg, node.Options{})
	if r, err := submitter.Jobs().Get(ctx, offer.ID.String()); err != nil || r.State != job.StateOffered {
		t.Fatalf("after restart: %+v, %v", r, err)
	}
	minerCfg := Config(config.ModeMiner)
	BootstrapTo(&minerCfg, submitter)
	Start(t, minerCfg, "miner", node.Options{})
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	if rec.Result == "" {
		t.Fatal("done without a result")
	}
}

// A cancelled job stops on its worker: the submitter records it cancelled,
// the gossiped cancel reaches the worker, which kills the run.
func TestCancelStopsWorker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 1, nil)
	miner, submitter := nodes[0], nodes[1]
	spec := wasmSpec(1, 5*time.Minute)
	spec.Module, spec.Args, spec.Needs.MemoryBytes = addModule(ctx, t, submitter, "../../executor/wasm/testdata/badguest"), []string{"loop"}, 128<<20
	spec.Needs.TimeoutMS = uint64((10 * time.Minute).Milliseconds())
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	waitState(ctx, t, miner, id, job.StateRunning)
	if err := submitter.Market().Cancel(ctx, id, "wrong input"); err != nil {
		t.Fatal(err)
	}
	if r, _ := submitter.Jobs().Get(ctx, id); r.State != job.StateCancelled {
		t.Fatalf("submitter: %s", r.State)
	}
	w := waitState(ctx, t, miner, id, job.StateCancelled)
	if w.Reason != "cancelled by the submitter: wrong input" {
		t.Fatalf("worker reason %q", w.Reason)
	}
	if err := submitter.Market().Cancel(ctx, id, "again"); err == nil {
		t.Fatal("cancelled a job twice")
	}
}

// A worker that takes a job and never reports is replaced: when it misses
// the report deadline (job timeout + market.report_grace) the submitter
// assigns another miner, and the job completes. The no-show is the only
// miner until it has the job; the honest one joins after.
func TestWorkerNoShowIsReplaced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// 15 s: the report deadline leaves room for the honest miner's cold
	// Wasmtime compile of the module and its run.
	noShow, subCfg, submitter, spec := faultyMinerJob(ctx, t, job.FaultNoShow, 15_000)
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	first := waitWorkers(ctx, t, submitter, offer.ID.String(), 1).Workers[0]
	if first != noShow.Network().ID() {
		t.Fatalf("assigned %s, want the only miner %s", first, noShow.Network().ID())
	}
	honestCfg := Config(config.ModeMiner)
	honestCfg.P2P.Bootstrap = subCfg.P2P.Bootstrap
	honest := Start(t, honestCfg, "honest", node.Options{})

	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	if len(rec.Workers) != 1 || rec.Workers[0] != honest.Network().ID() {
		t.Fatalf("workers %v: want the honest miner %s instead of %s", rec.Workers, honest.Network().ID(), first)
	}
	noted := false
	for _, h := range rec.History {
		noted = noted || strings.Contains(h.Note, "missed the report deadline")
	}
	if !noted || !slices.Contains(rec.Verdict.Dissented, first.String()) {
		t.Fatalf("history or verdict does not say why the worker was replaced: %+v %+v", rec.History, rec.Verdict)
	}
}

// A miner that opts into native jobs runs a command under bubblewrap: no
// network, read-only system, only /output writable; the submitter gets the
// result like any other.
func TestNativeJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 1, func(i int, cfg *config.Config) {
		cfg.Market.Executors = []string{job.ExecutorWASM, job.ExecutorNative}
		cfg.Executor.Native.AllowWithoutCgroups = true // also on CI hosts without cgroups
	})
	submitter := nodes[1]
	spec := wasmSpec(1, 2*time.Minute)
	spec.Executor, spec.Module = job.ExecutorNative, ""
	spec.Command = []string{"/bin/sh", "-c", "echo sandboxed > /output/hello.txt; (getent hosts localhost >/dev/null && ls /sys/class/net | grep -vx lo) > /output/net.txt; true"}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	result, _ := cid.Decode(rec.Result)
	out := filepath.Join(t.TempDir(), "result")
	if _, err := submitter.Storage().Get(ctx, result, out, storage.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "hello.txt")); string(got) != "sandboxed\n" {
		t.Fatalf("hello.txt = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "net.txt")); len(bytes.TrimSpace(got)) != 0 {
		t.Fatalf("the sandbox sees network interfaces besides lo: %q", got)
	}
}

// A miner restarted in the middle of a job runs it again from its
// datastore record and reports, and the submitter accepts the result.
func TestMinerRestartMidJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	minerDir := filepath.Join(t.TempDir(), "miner")
	minerCfg := Config(config.ModeMiner)
	miner := StartIn(t, minerDir, minerCfg, node.Options{})
	subCfg := Config(config.ModeLight)
	BootstrapTo(&subCfg, miner)
	submitter := Start(t, subCfg, "submitter", node.Options{})
	spec := wasmSpec(1, 3*time.Minute)
	// A product big enough to take seconds in the sandbox.
	spec.Module, spec.Args, spec.Needs.MemoryBytes = addModule(ctx, t, submitter, "../../examples/matmul"), []string{"-n", "700", "-seed", "1"}, 256<<20
	spec.Needs.TimeoutMS = 120_000
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	waitState(ctx, t, miner, id, job.StateRunning)
	if err := miner.Close(); err != nil {
		t.Fatal(err)
	}

	BootstrapTo(&minerCfg, submitter)
	miner = StartIn(t, minerDir, minerCfg, node.Options{})
	rec := waitState(ctx, t, submitter, id, job.StateDone)
	w := waitState(ctx, t, miner, id, job.StateDone)
	if w.Result != rec.Result {
		t.Fatalf("restarted miner reported %s, accepted %s", w.Result, rec.Result)
	}
}

// checkOutput fetches a result and checks that every file in wantDir is in
// it with the same bytes.
func checkOutput(ctx context.Context, t *testing.T, nd *node.Node, result, wantDir string) {
	t.Helper()
	c, err := cid.Decode(result)
	if err != nil {
		t.Fatalf("result %q: %v", result, err)
	}
	out := filepath.Join(t.TempDir(), "result")
	if _, err := nd.Storage().Get(ctx, c, out, storage.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(wantDir)
	if len(files) == 0 {
		t.Fatalf("no expected files in %s", wantDir)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(out, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		exp, _ := os.ReadFile(filepath.Join(wantDir, f.Name()))
		if !bytes.Equal(got, exp) {
			t.Fatalf("%s differs from %s", f.Name(), wantDir)
		}
	}
}

// addModule builds a Go package for wasip1 and adds the module to nd's
// store, returning its CID.
func addModule(ctx context.Context, tb testing.TB, nd *node.Node, pkg string) string {
	tb.Helper()
	module, err := wasmtest.NewBuilder(tb.TempDir()).Build(pkg)
	if err != nil {
		tb.Fatal(err)
	}
	return addPath(ctx, tb, nd, module)
}

// addPath adds a file or directory to nd's store, returning its CID.
func addPath(ctx context.Context, tb testing.TB, nd *node.Node, path string) string {
	tb.Helper()
	c, err := nd.Storage().Add(ctx, path, storage.AddOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return c.String()
}

// jobNetwork starts miners miner nodes and one light submitter (the last
// node) and waits for the full mesh.
func jobNetwork(ctx context.Context, tb testing.TB, miners int, configure func(i int, cfg *config.Config)) []*node.Node {
	tb.Helper()
	nodes := New(tb, miners+1, Options{Configure: func(i int, cfg *config.Config) {
		if configure != nil {
			configure(i, cfg)
		}
		if i == miners {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		tb.Fatal(err)
	}
	return nodes
}

// A submitter that is down when its worker finishes still gets the
// result: the worker keeps trying to deliver its commitment until the
// job's deadline, not for a few seconds (issue 13, finding 11).
func TestWorkerCommitsAfterSubmitterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	miner := Start(t, Config(config.ModeMiner), "miner", node.Options{})
	subCfg := Config(config.ModeLight)
	// TCP only: a dial to the stopped submitter fails at once instead of
	// waiting out a QUIC handshake, so the worker's tries are quick.
	subCfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	BootstrapTo(&subCfg, miner)
	subDir := filepath.Join(t.TempDir(), "submitter")
	submitter := StartIn(t, subDir, subCfg, node.Options{})
	spec := wasmSpec(1, 4*time.Minute)
	// The miner holds the module, so the run does not need the submitter.
	spec.Module, spec.Args, spec.Needs.MemoryBytes = addModule(ctx, t, miner, "../../examples/matmul"), []string{"-n", "200", "-seed", "1"}, 256<<20
	spec.Needs.TimeoutMS = 120_000
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	waitState(ctx, t, miner, id, job.StateRunning)
	if err := submitter.Close(); err != nil {
		t.Fatal(err)
	}
	// The worker saves its result just before it tries to commit.
	for w, _ := miner.Jobs().Get(ctx, id); len(w.Salt) == 0; w, _ = miner.Jobs().Get(ctx, id) {
		select {
		case <-ctx.Done():
			t.Fatalf("the worker never finished the run: %s, %s", w.State, w.Reason)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Down for longer than the few seconds of retries a worker used to
	// allow itself.
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(20 * time.Second):
	}
	if w, _ := miner.Jobs().Get(ctx, id); w.State.Terminal() {
		t.Fatalf("the worker gave up while the submitter was down: %s, %s", w.State, w.Reason)
	}
	submitter = StartIn(t, subDir, subCfg, node.Options{})
	rec := waitState(ctx, t, submitter, id, job.StateDone)
	if w := waitState(ctx, t, miner, id, job.StateDone); w.Result != rec.Result || len(rec.Missed) > 0 {
		t.Fatalf("worker result %s, accepted %s, missed %v", w.Result, rec.Result, rec.Missed)
	}
}

// A worker whose staging (fetch, compile) takes longer than the job's
// timeout and the report grace together, as a large image over a slow link
// does, keeps the job while it says it is still staging: the submitter
// does not drop it as a no-show and hand the job to someone who would fare
// no better. (Before job-progress/1 the submitter dropped it at timeout +
// report grace after the assignment.)
func TestSlowStagingWorkerKept(t *testing.T) {
	defer func(was time.Duration) { job.ProgressInterval = was }(job.ProgressInterval)
	job.ProgressInterval = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Staging takes job.SlowStaging (10 s) and more: past the timeout (5 s)
	// and the testnet's report grace (3 s) together.
	slow, _, submitter, spec := faultyMinerJob(ctx, t, job.FaultSlowStaging, 5_000)
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	if len(rec.Workers) != 1 || rec.Workers[0] != slow.Network().ID() || len(rec.Missed) > 0 {
		t.Fatalf("workers %v, missed %v: want the slow-staging miner %s kept", rec.Workers, rec.Missed, slow.Network().ID())
	}
	staged := false
	for _, h := range rec.History {
		staged = staged || strings.Contains(h.Note, "staged") && strings.Contains(h.Note, "and started")
	}
	if !staged {
		t.Fatalf("history does not say the worker staged and started: %+v", rec.History)
	}
}

// faultyMinerJob starts a miner with a debug fault and a submitter that
// knows only it, and returns them with a k = 1 wordcount job of the given
// timeout (ms) for the submitter to offer.
func faultyMinerJob(ctx context.Context, t *testing.T, fault string, timeoutMS uint64) (miner *node.Node, subCfg config.Config, submitter *node.Node, spec job.Spec) {
	t.Helper()
	minerCfg := Config(config.ModeMiner)
	minerCfg.Debug.AllowFaults = true
	miner = Start(t, minerCfg, fault, node.Options{Fault: fault})
	subCfg = Config(config.ModeLight)
	BootstrapTo(&subCfg, miner)
	submitter = Start(t, subCfg, "submitter", node.Options{})
	spec = wasmSpec(1, 2*time.Minute)
	spec.Module, spec.Needs.MemoryBytes, spec.Needs.TimeoutMS = addModule(ctx, t, submitter, "../../examples/wordcount"), 128<<20, timeoutMS
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, "../../examples/wordcount/testdata/books")}}
	return miner, subCfg, submitter, spec
}
