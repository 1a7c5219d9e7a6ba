package testnet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/job"
)

// A file that is not WebAssembly is refused when it is submitted, naming
// its CID and saying how to build a module, and no miner is ever offered
// it (issue 14): it used to be offered, fetched and run on every worker,
// and fail k times with "not a valid WebAssembly binary".
func TestSubmitRefusesNonWASMModule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 2, nil)
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
	if recs, err := submitter.Jobs().List(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("the submitter recorded the refused job: %+v, %v", recs, err)
	}

	// A real module offered afterwards reaches both miners and runs; the
	// refused one never reached either.
	good := wordcountJob(ctx, t, submitter)
	good.Verify.Workers, good.Verify.Quorum = 2, 2
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
