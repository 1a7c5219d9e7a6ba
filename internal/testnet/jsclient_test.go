package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/storage"
)

// jsReport is the last line interop/js/client.mjs prints.
type jsReport struct {
	PeerID   string         `json:"peer_id"`
	OK       bool           `json:"ok"`
	Error    string         `json:"error"`
	Seen     map[string]int `json:"seen"`
	Verified map[string]int `json:"verified"`
	Refused  []any          `json:"refused"`
	Vectors  struct {
		Count      int      `json:"count"`
		Mismatches []string `json:"mismatches"`
	} `json:"vectors"`
	Protocols          map[string]bool `json:"protocols"`
	HeartbeatPublished bool            `json:"heartbeat_published"`
	Offer              *struct {
		Job string `json:"job"`
	} `json:"offer"`
	Bids []struct {
		Worker string `json:"worker"`
		Price  uint64 `json:"price"`
	} `json:"bids"`
	CancelPublished bool           `json:"cancel_published"`
	Mesh            map[string]int `json:"mesh"`
	Rendezvous      struct {
		Namespace string `json:"namespace"`
		Key       string `json:"key"`
		Providers int    `json:"providers"`
	} `json:"rendezvous"`
}

// TestJSClient runs an independent implementation, written from
// docs/PROTOCOL.md with js-libp2p (interop/js), against real VFT nodes on
// loopback: it must decide every test vector as the Go code does, be
// grafted into the gossip mesh, verify the Go nodes' heartbeats, offer and
// cancel, and publish a heartbeat the Go nodes record and an offer the Go
// miners bid on.
func TestJSClient(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node (Node.js 20) is not installed: the JS interop client cannot run (apt-get install nodejs)")
	}
	if _, err := os.Stat(filepath.Join(root, "interop/js/node_modules/libp2p")); err != nil {
		t.Fatal("interop/js/node_modules is missing: run make interop-js-deps (npm ci --prefix interop/js); make test does")
	}
	const miners = 3
	nodes := New(t, miners+1, Options{Configure: func(i int, cfg *config.Config) {
		// Heartbeats often enough that the client hears one soon after it joins.
		cfg.Heartbeat.Interval.UnmarshalText([]byte("5s"))
		// A slot for the Go job and one for the client's.
		cfg.Market.MaxJobs = 2
		if i == miners {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A Go offer the client must verify: more workers than there are
	// miners, so it stays offered and is re-gossiped every bid window.
	// Submitted at once: after three heartbeat intervals a node refuses a
	// job needing more workers than the miners it knows.
	submitter := nodes[miners]
	goOffer, err := submitter.Market().Submit(ctx, wasmSpec(miners+1, 10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}

	var addr string
	for _, a := range nodes[0].Network().Addrs() {
		if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
			continue
		}
		if _, err := a.ValueForProtocol(ma.P_P2P); err != nil {
			a = a.Encapsulate(ma.StringCast("/p2p/" + nodes[0].Network().ID().String()))
		}
		addr = a.String()
		break
	}
	cmd := exec.CommandContext(ctx, nodeBin, "interop/js/client.mjs", "--bootstrap", addr, "--want-bids", "2",
		"--timeout", "120", "--rendezvous", nodes[0].Config().P2P.Rendezvous, "--wait-kinds", "heartbeat/2,job-offer/1,job-cancel/1,job-verdict/1")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// Once the Go nodes have recorded the client's heartbeat it is in the
	// mesh: cancel the Go job and run another to its verdict, so the
	// client sees a cancel and a verdict too.
	var jsPeer peer.ID
	emptyWASM := emptyModule(t)
	goCtx, cancelGo := context.WithCancel(ctx)
	defer cancelGo()
	recorded := make(chan peer.ID, 1)
	goroutineErr := make(chan error, 1)
	go func() {
		goroutineErr <- func() error {
			for goCtx.Err() == nil {
				for _, e := range nodes[1].Heartbeats().Nodes() {
					if e.Heartbeat.Version == "vft-interop-js/0.1" {
						recorded <- e.Peer
						if err := submitter.Market().Cancel(goCtx, goOffer.ID.String(), "interop test: the client has joined"); err != nil {
							return fmt.Errorf("cancel the Go offer: %w", err)
						}
						// And a job that runs to a verdict, for the client to check.
						module, err := submitter.Storage().Add(goCtx, emptyWASM, storage.AddOptions{})
						if err != nil {
							return err
						}
						spec := wasmSpec(1, 2*time.Minute)
						spec.Module = module.String()
						if _, err := submitter.Market().Submit(goCtx, spec); err != nil {
							return fmt.Errorf("submit the verdict job: %w", err)
						}
						return nil
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
			return nil
		}()
	}()
	runErr := cmd.Wait()
	cancelGo() // the goroutine is done if the client saw its verdict
	if err := <-goroutineErr; err != nil {
		t.Error(err)
	}
	t.Logf("client stderr:\n%s", stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep jsReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("client (%v) printed no report: %v\n%s", runErr, err, stdout.String())
	}
	t.Logf("client report: %s", lines[len(lines)-1])
	if runErr != nil || !rep.OK {
		t.Fatalf("client failed (%v): %s", runErr, rep.Error)
	}
	if len(rep.Vectors.Mismatches) > 0 || rep.Vectors.Count == 0 {
		t.Errorf("client decided %d vectors, mismatches: %v", rep.Vectors.Count, rep.Vectors.Mismatches)
	}
	for _, k := range []string{"heartbeat/2", "job-offer/1", "job-cancel/1", "job-verdict/1"} {
		if rep.Verified[k] == 0 {
			t.Errorf("client verified no %s from the Go nodes (seen %v)", k, rep.Seen)
		}
	}
	if len(rep.Refused) > 0 {
		t.Errorf("client refused Go messages: %v", rep.Refused)
	}
	// GossipSub: the client's gossipsub and the Go router agreed on a
	// meshsub version (PROTOCOL.md, GossipSub).
	meshsub := false
	for p := range rep.Protocols {
		meshsub = meshsub || strings.HasPrefix(p, "/meshsub/1.")
	}
	if !meshsub {
		t.Errorf("no meshsub stream between the client and the Go nodes: %v", rep.Protocols)
	}
	// The client found the network as PROTOCOL.md says: the providers of
	// CIDv1(raw, sha2-256(namespace)) on the /vft DHT.
	h, err := mh.Sum([]byte(rep.Rendezvous.Namespace), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	if want := cid.NewCidV1(cid.Raw, h).String(); rep.Rendezvous.Key != want {
		t.Errorf("client's rendezvous key %s, go-libp2p's routing discovery uses %s", rep.Rendezvous.Key, want)
	}
	if rep.Rendezvous.Providers < miners {
		t.Errorf("client found %d rendezvous providers, want the %d miners at least", rep.Rendezvous.Providers, miners)
	}
	// The Go nodes accepted and recorded the client's heartbeat.
	select {
	case jsPeer = <-recorded:
	default:
		t.Fatal("no Go node recorded the client's heartbeat")
	}
	if jsPeer.String() != rep.PeerID {
		t.Errorf("recorded heartbeat from %s, the client is %s", jsPeer, rep.PeerID)
	}
	// The Go miners acted on the client's offer: they bid on it over
	// /vft/bid/1, and the client acked.
	var minerIDs []string
	for _, nd := range nodes[:miners] {
		minerIDs = append(minerIDs, nd.Network().ID().String())
	}
	if len(rep.Bids) < 2 {
		t.Fatalf("client's offer %v got %d bids, want 2", rep.Offer, len(rep.Bids))
	}
	for _, b := range rep.Bids {
		if !slices.Contains(minerIDs, b.Worker) {
			t.Errorf("bid from %s, not one of the Go miners %v", b.Worker, minerIDs)
		}
	}
}

// emptyModule writes the smallest WASI program: a _start that returns at
// once (an empty /output), so a job runs to its verdict in a moment
// without compiling an example.
func emptyModule(t *testing.T) string {
	t.Helper()
	module := []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: func () -> ()
		0x03, 0x02, 0x01, 0x00, // functions: one of type 0
		0x05, 0x03, 0x01, 0x00, 0x01, // memory: one page
		0x07, 0x13, 0x02, // exports: _start, memory
		0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,
		0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00,
		0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: an empty body
	}
	path := filepath.Join(t.TempDir(), "empty.wasm")
	if err := os.WriteFile(path, module, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
