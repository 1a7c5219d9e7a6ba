package testnet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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

// The main job, end to end on real nodes: a submitter adds the wordcount
// module and a directory of texts, offers the job with exact verification
// (k = 3, m = 2), three miners bid, fetch the inputs over bitswap, run the
// module in wazero, import /output and report; the submitter accepts the
// agreeing result and fetches it, and it matches the expected counts.
func TestJobEndToEnd(t *testing.T) {
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	nodes := New(t, 4, Options{Configure: func(i int, cfg *config.Config) {
		cfg.Heartbeat.Interval.UnmarshalText([]byte("5s"))
		if i == 3 {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	submitter := nodes[3]
	store := submitter.Storage()
	moduleCID, err := store.Add(ctx, module, storage.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inputCID, err := store.Add(ctx, "../../examples/wordcount/testdata", storage.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := wasmSpec(3, 2*time.Minute)
	spec.Module = moduleCID.String()
	spec.Inputs = []job.Input{{CID: inputCID.String(), Path: ""}}
	spec.Seed = 42
	spec.Needs.MemoryBytes = 256 << 20
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	t.Logf("job %s done: %s", offer.ID, rec.History[len(rec.History)-1].Note)

	result, err := cid.Decode(rec.Result)
	if err != nil {
		t.Fatalf("result %q: %v", rec.Result, err)
	}
	out := filepath.Join(t.TempDir(), "result")
	if _, err := store.Get(ctx, result, out, storage.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "counts.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile("../../examples/wordcount/expected/texts/counts.tsv")
	if !bytes.Equal(got, want) {
		t.Fatalf("counts.tsv differs from the expected output:\n%s", got)
	}
	// Every worker computed the same result (the third may report after
	// the job was already accepted).
	for _, miner := range nodes[:3] {
		w := waitState(ctx, t, miner, offer.ID.String(), job.StateVerifying)
		if w.Result != rec.Result {
			t.Fatalf("worker %s computed %s, want %s", miner.Network().ID(), w.Result, rec.Result)
		}
	}
}

// A submitter that restarts while its job waits for workers loses
// nothing: after the restart it still offers the job, and once a miner
// joins, the job runs and is accepted.
func TestSubmitterRestartKeepsJob(t *testing.T) {
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := Config(config.ModeLight)
	dir := filepath.Join(t.TempDir(), "submitter")
	submitter := StartIn(t, dir, cfg, node.Options{})
	moduleCID, err := submitter.Storage().Add(ctx, module, storage.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inputCID, err := submitter.Storage().Add(ctx, "../../examples/wordcount/testdata", storage.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := wasmSpec(1, 2*time.Minute)
	spec.Module, spec.Seed, spec.Needs.MemoryBytes = moduleCID.String(), 42, 256<<20
	spec.Inputs = []job.Input{{CID: inputCID.String()}}
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
	for _, a := range submitter.Network().Addrs() {
		minerCfg.P2P.Bootstrap = append(minerCfg.P2P.Bootstrap, a.String())
	}
	Start(t, minerCfg, "miner", node.Options{})
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	if rec.Result == "" {
		t.Fatal("done without a result")
	}
}

// A cancelled job stops on its worker: the submitter records it cancelled,
// the gossiped cancel reaches the worker, which kills the run.
func TestCancelStopsWorker(t *testing.T) {
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../executor/wasm/testdata/badguest")
	if err != nil {
		t.Fatal(err)
	}
	nodes := New(t, 2, Options{Configure: func(i int, cfg *config.Config) {
		if i == 1 {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	miner, submitter := nodes[0], nodes[1]
	moduleCID, err := submitter.Storage().Add(ctx, module, storage.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := wasmSpec(1, 5*time.Minute)
	spec.Module, spec.Args, spec.Needs.MemoryBytes = moduleCID.String(), []string{"loop"}, 128<<20
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

// A worker that disappears after taking a job is replaced: when it misses
// the report deadline (job timeout + market.report_grace) the submitter
// assigns another miner, and the job completes.
func TestWorkerNoShowIsReplaced(t *testing.T) {
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	nodes := New(t, 3, Options{Configure: func(i int, cfg *config.Config) {
		if i == 2 {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	submitter := nodes[2]
	moduleCID, err := submitter.Storage().Add(ctx, module, storage.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inputCID, err := submitter.Storage().Add(ctx, "../../examples/wordcount/testdata/books", storage.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := wasmSpec(1, 2*time.Minute)
	spec.Module, spec.Needs.MemoryBytes, spec.Needs.TimeoutMS = moduleCID.String(), 128<<20, 5000
	spec.Inputs = []job.Input{{CID: inputCID.String()}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	// Stop whichever miner was chosen the moment it is assigned, before
	// it can report.
	first := waitState(ctx, t, submitter, offer.ID.String(), job.StateAssigned).Workers[0]
	for _, nd := range nodes[:2] {
		if nd.Network().ID() == first {
			nd.Close()
		}
	}
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	if len(rec.Workers) != 1 || rec.Workers[0] == first {
		t.Fatalf("workers %v: want the other miner instead of %s", rec.Workers, first)
	}
	noted := false
	for _, h := range rec.History {
		noted = noted || strings.Contains(h.Note, "missed the report deadline")
	}
	if !noted {
		t.Fatalf("history does not say why the worker was replaced: %+v", rec.History)
	}
}
