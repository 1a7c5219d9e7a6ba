package testnet

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/executor/oci"
	"github.com/vft-network/vft/executor/oci/ocitest"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
	"github.com/vft-network/vft/storage"
)

// TestContainerJob: an image is content. The submitter adds a busybox
// image layout; three miners that offer oci fetch it by CID, unpack it,
// run the job's command in a container and agree on the result; a
// second job with the same image and an input given by CID reuses the
// unpacked image. Miners that do not offer oci do not bid, and the
// waiting reason says so.
func TestContainerJob(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("container jobs need root (CI runs as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 3, func(i int, cfg *config.Config) {
		cfg.Market.Executors = []string{job.ExecutorWASM, oci.Name}
		cfg.Market.MaxJobs = 2
		cfg.Heartbeat.Interval.UnmarshalText([]byte("5s")) // heartbeats are checked below
	})
	submitter := nodes[3]
	image := addPath(ctx, t, submitter, ocitest.BusyboxLayout(t))
	data := addPath(ctx, t, submitter, writeTemp(t, "words.txt", "to be or not to be\n"))

	run := func(command string) job.Record {
		t.Helper()
		spec := wasmSpec(3, 3*time.Minute)
		spec.Executor, spec.Module, spec.Image = oci.Name, "", image
		spec.Command = []string{"sh", "-c", command}
		spec.Inputs = []job.Input{{CID: data, Path: "words.txt"}}
		offer, err := submitter.Market().Submit(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	}
	// The miners' heartbeats say which OCI runtime runs their containers.
	for named := 0; named < 3; {
		named = 0
		for _, e := range submitter.Heartbeats().Nodes() {
			if slices.Contains(e.Heartbeat.Executors, oci.Name) && slices.Contains([]string{"runc", "crun"}, e.Heartbeat.OCIRuntime) {
				named++
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of the 3 miners' heartbeats name their OCI runtime: %+v", named, submitter.Heartbeats().Nodes())
		case <-time.After(100 * time.Millisecond):
		}
	}
	rec := run("tr a-z A-Z < /input/words.txt > /output/upper.txt")
	if len(rec.Verdict.Agreed) != 3 {
		t.Fatalf("verdict %+v: want the 3 containers to agree", rec.Verdict)
	}
	result, _ := cid.Decode(rec.Result)
	out := filepath.Join(t.TempDir(), "result")
	if _, err := submitter.Storage().Get(ctx, result, out, storage.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "upper.txt")); string(got) != "TO BE OR NOT TO BE\n" {
		t.Fatalf("upper.txt = %q", got)
	}

	// The same image again: every miner already holds its blocks and its
	// unpacked root file system (one per image in <repo>/oci-rootfs),
	// and runs the second job in that very directory.
	rootfsOf := func(miner *node.Node) os.FileInfo {
		t.Helper()
		dirs, err := filepath.Glob(filepath.Join(miner.RepoPath("oci-rootfs"), "[0-9a-f]*", "rootfs"))
		if err != nil || len(dirs) != 1 {
			t.Fatalf("miner %s holds unpacked images %v (%v), want one", miner.Key().PeerID(), dirs, err)
		}
		fi, err := os.Stat(dirs[0])
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	before := make([]os.FileInfo, 3)
	for i, miner := range nodes[:3] {
		before[i] = rootfsOf(miner)
	}
	rec = run("wc -w < /input/words.txt > /output/count.txt")
	if rec.State != job.StateDone {
		t.Fatalf("second job: %s %s", rec.State, rec.Reason)
	}
	for i, miner := range nodes[:3] {
		if !os.SameFile(before[i], rootfsOf(miner)) {
			t.Fatalf("miner %s unpacked the image again for the second job", miner.Key().PeerID())
		}
	}
}

func writeTemp(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
