package testnet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
)

// A file that is not WebAssembly is refused when it is submitted, naming
// its CID and saying how to build a module, and no miner is ever offered
// it (issue 14): it used to be offered, fetched and run on every worker,
// and fail k times with "not a valid WebAssembly binary". A module the
// submitter lacks is fetched and checked, or refused as uncheckable.
func TestSubmitRefusesNonWASMModule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 2, func(i int, cfg *config.Config) {
		if i == 2 { // the submitter: a module nobody has is given up on soon
			cfg.Storage.FetchTimeout = 3 * time.Second
		}
	})
	miners, submitter := nodes[:2], nodes[2]
	client := apiClient(t, submitter)

	notWASM := filepath.Join(t.TempDir(), "job.wasm")
	if err := os.WriteFile(notWASM, []byte("hello, this is a text file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := wasmSpec(2, 3*time.Minute)
	bad.Module = addPath(ctx, t, submitter, notWASM)
	_, err := client.SubmitJob(ctx, bad)
	if err == nil {
		t.Fatal("a text file submitted as a WASM module was offered")
	}
	for _, want := range []string{bad.Module, `not a WebAssembly module (starts with "hello, this is a")`, "GOOS=wasip1 GOARCH=wasm"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("submit error %q does not say %q", err, want)
		}
	}
	t.Logf("refused: %v", err)
	if recs, err := submitter.Jobs().List(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("the submitter recorded the refused job: %+v, %v", recs, err)
	}

	// A module the submitter cannot read cannot be checked: it says so
	// rather than offering it unchecked.
	missing := wasmSpec(2, 3*time.Minute)
	missing.Module = testCID("a module nobody has")
	_, err = client.SubmitJob(ctx, missing)
	if err == nil || !strings.Contains(err.Error(), "cannot check module "+missing.Module) {
		t.Fatalf("submitting a module nobody has: %v, want it to say the module cannot be checked", err)
	}
	t.Logf("refused: %v", err)

	// A real module offered afterwards reaches both miners and runs; the
	// refused ones never reached either. Its module is on a miner only:
	// the submitter fetches it to check it.
	good := wasmSpec(2, 3*time.Minute)
	good.Verify.Workers, good.Verify.Quorum = 2, 2
	good.Module, good.Needs.MemoryBytes = addModule(ctx, t, miners[0], "../../examples/wordcount"), 128<<20
	good.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, "../../examples/wordcount/testdata")}}
	id, err := client.SubmitJob(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	waitState(ctx, t, submitter, id, job.StateDone)
	for _, m := range miners {
		waitState(ctx, t, m, id, job.StateDone)
		recs, err := m.Jobs().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.ID != id {
				t.Fatalf("miner %s has job %s (%s: %s), which was never offered", m.Network().ID(), r.ID, r.State, r.Reason)
			}
		}
	}
}
