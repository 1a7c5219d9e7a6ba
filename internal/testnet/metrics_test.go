package testnet

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
)

// After a job runs, /metrics on both sides counts its transitions and
// times its stages: the submitter's offered and assigned stages, the
// worker's run with its executor.
func TestJobMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 1, nil)
	miner, submitter := nodes[0], nodes[1]
	spec := wasmSpec(1, 2*time.Minute)
	spec.Module, spec.Needs.MemoryBytes = addModule(ctx, t, submitter, "../../examples/wordcount"), 128<<20
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, "../../examples/wordcount/testdata/books")}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	waitState(ctx, t, miner, offer.ID.String(), job.StateDone) // from the submitter's verdict

	for _, tc := range []struct {
		nd   *node.Node
		want []string
	}{
		{submitter, []string{
			`vft_jobs_total{role="submitter",state="offered"} 1`,
			`vft_jobs_total{role="submitter",state="done"} 1`,
			`vft_job_stage_seconds_count{role="submitter",stage="offered"} 1`,
			`vft_job_stage_seconds_count{role="submitter",stage="verifying"} 1`,
		}},
		{miner, []string{
			`vft_jobs_total{role="worker",state="running"} 1`,
			`vft_jobs_total{role="worker",state="verifying"} 1`,
			`vft_jobs_total{role="worker",state="done"} 1`,
			`vft_job_stage_seconds_count{role="worker",stage="running"} 1`,
			`vft_executor_seconds_count{executor="wasm",outcome="ok"} 1`,
			`libp2p_rcmgr_`, // libp2p's resource manager: streams, connections, memory
			`vft_p2p_bytes_total{direction="in"}`,
			// The module and input come from the submitter in a
			// whole-DAG stream (storage.CARProtocol, or CARMultiProtocol
			// when the miner has other peers to ask), not over bitswap.
			`vft_p2p_protocol_bytes_total{direction="in",protocol="/vft/car/`,
		}},
	} {
		body := scrape(ctx, t, tc.nd)
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s /metrics lacks %s:\n%s", tc.nd.Network().ID(), w, grep(body, "vft_"))
			}
		}
	}
}

func scrape(ctx context.Context, t *testing.T, nd *node.Node) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+nd.APIAddr()+"/metrics", nil)
	token, err := nd.APIToken()
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token) // like Prometheus' credentials_file
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

// grep keeps the lines of text that contain s, to show what was there.
func grep(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
