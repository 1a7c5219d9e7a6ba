package testnet

// Content attacks on a miner's disk: inputs over its caps and dedup bombs.

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
)

// A job whose inputs are larger than the miner stages per job
// (market.max_input) fails on that miner with a reason that names the
// cap, instead of filling its disk.
func TestMinerInputCap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 1, func(i int, cfg *config.Config) { cfg.Market.MaxInput = 8 << 20 })
	submitter := nodes[1]
	big := filepath.Join(t.TempDir(), "big.bin")
	data := make([]byte, 16<<20)
	rand.Read(data)
	if err := os.WriteFile(big, data, 0o600); err != nil {
		t.Fatal(err)
	}
	spec := wordcountJob(ctx, t, submitter)
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, big), Path: "big.bin"}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	// The worker's record; the submitter goes on to look for other
	// miners (issue 14 is about what it then tells its user).
	rec := waitEnd(ctx, t, nodes[0], offer.ID.String())
	if rec.State != job.StateFailed || !strings.Contains(rec.Reason, "market.max_input") {
		t.Fatalf("job %s on the miner: %q; want a failure naming market.max_input", rec.State, rec.Reason)
	}
}

// putBomb stores, in nd's blockstore, a UnixFS file of 1 TiB made of three
// blocks: a 1 MiB leaf linked 1024 times, that node linked 1024 times.
func putBomb(ctx context.Context, t testing.TB, nd *node.Node) cid.Cid {
	t.Helper()
	put := func(n ipld.Node) cid.Cid {
		if err := nd.Storage().DAG().Add(ctx, n); err != nil {
			t.Fatal(err)
		}
		return n.Cid()
	}
	c := put(merkledag.NewRawNode(bytes.Repeat([]byte{'A'}, 1<<20)))
	size := uint64(1 << 20)
	for range 2 {
		fsn := ft.NewFSNode(ft.TFile)
		pn := new(merkledag.ProtoNode)
		pn.SetCidBuilder(merkledag.V1CidPrefix())
		for range 1024 {
			fsn.AddBlockSize(size)
			if err := pn.AddRawLink("", &ipld.Link{Cid: c, Size: size}); err != nil {
				t.Fatal(err)
			}
		}
		data, err := fsn.GetBytes()
		if err != nil {
			t.Fatal(err)
		}
		pn.SetData(data)
		c = put(pn)
		size *= 1024
	}
	return c
}

// A submitter that builds a dedup bomb (three blocks declaring a 1 TiB
// input) makes the worker refuse the job before writing anything, and
// the miner goes on to run an honest job.
func TestBombInputRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 1, nil)
	miner, submitter := nodes[0], nodes[1]
	spec := wordcountJob(ctx, t, submitter)
	honest := spec
	spec.Inputs = []job.Input{{CID: putBomb(ctx, t, submitter).String(), Path: "bomb.bin"}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitEnd(ctx, t, miner, offer.ID.String())
	if rec.State != job.StateFailed || !strings.Contains(rec.Reason, "declares 1099511627776 bytes") {
		t.Fatalf("bomb job on the miner: %s, %q; want a refusal naming the declared size", rec.State, rec.Reason)
	}
	honest.Nonce = []byte("after the bomb")
	o, err := submitter.Market().Submit(ctx, honest)
	if err != nil {
		t.Fatal(err)
	}
	done := waitState(ctx, t, submitter, o.ID.String(), job.StateDone)
	checkOutput(ctx, t, submitter, done.Result, "../../examples/wordcount/expected/texts")
}
