package job

import (
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
)

func TestCanRun(t *testing.T) {
	alice, _ := identity.Generate()
	gpuSpec := validSpec()
	gpuSpec.Executor, gpuSpec.Module, gpuSpec.Command = ExecutorNative, "", []string{"python3", "infer.py"}
	gpuSpec.Needs.GPUs, gpuSpec.Needs.GPUMemoryBytes, gpuSpec.Needs.GPUModel = 2, 40<<30, "H100"

	rig := Capacity{CPUCores: 32, MemoryBytes: 128 << 30, FreeSlots: 2, GPUs: []GPU{
		{Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30}, {Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30},
	}}
	open := Policy{MinPrice: 1000, Executors: []string{ExecutorWASM, ExecutorNative}}
	bigOutput := validSpec()
	bigOutput.Needs.MaxOutputBytes = 1 << 40
	cases := []struct {
		name   string
		spec   Spec
		cap    Capacity
		policy Policy
		want   string // "" = bids
	}{
		{"wasm job on a rig", validSpec(), rig, open, ""},
		{"gpu job on a rig", gpuSpec, rig, open, ""},
		{"executor not offered", gpuSpec, rig, Policy{MinPrice: 1000, Executors: []string{ExecutorWASM}}, "does not offer the native executor"},
		{"price below floor", validSpec(), rig, Policy{MinPrice: 9000, Executors: []string{ExecutorWASM}}, "asks at least 9000"},
		{"other mint", validSpec(), rig, Policy{Mint: "VFTmint", Executors: []string{ExecutorWASM}}, "paid in VFTmint, not SOL"},
		{"no slot", validSpec(), Capacity{CPUCores: 8, MemoryBytes: 8 << 30}, open, "no free job slot"},
		{"not enough memory", validSpec(), Capacity{CPUCores: 8, MemoryBytes: 100 << 20, FreeSlots: 1}, open, "has 100 MiB"},
		{"GPU too small", gpuSpec, Capacity{CPUCores: 8, MemoryBytes: 64 << 30, FreeSlots: 1, GPUs: []GPU{{Name: "NVIDIA H100 PCIe", MemoryBytes: 24 << 30}, {Name: "NVIDIA H100 PCIe", MemoryBytes: 24 << 30}}}, open, "has 0 matching GPU(s), the job needs 2 GPU(s) H100 with 40 GiB"},
		{"wrong GPU model", gpuSpec, Capacity{CPUCores: 8, MemoryBytes: 64 << 30, FreeSlots: 1, GPUs: []GPU{{Name: "RTX 4090", MemoryBytes: 48 << 30}, {Name: "RTX 4090", MemoryBytes: 48 << 30}}}, open, "0 matching"},
		{"submitter not allowed", validSpec(), rig, Policy{Executors: []string{ExecutorWASM}, Submitters: []peer.ID{"someone-else"}}, "allowed submitters"},
		{"output over the miner's cap", bigOutput, rig, Policy{Executors: []string{ExecutorWASM}, MaxOutputBytes: 10 << 30}, "accepts at most 10240 MiB of output, the job may write 1048576 MiB"},
		{"no escrow for a miner that requires one", validSpec(), rig, Policy{Executors: []string{ExecutorWASM}, RequireEscrow: true}, "only jobs paid from an escrow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			offer := Offer{Submitter: alice.PeerID(), Spec: tc.spec}
			d := CanRun(offer, tc.cap, tc.policy)
			if tc.want == "" {
				if d != nil {
					t.Fatalf("declined: %s", d)
				}
				return
			}
			if d == nil || !strings.Contains(d.Reason, tc.want) {
				t.Fatalf("CanRun = %v, want a decline saying %q", d, tc.want)
			}
		})
	}
}

func TestWaitingAndServing(t *testing.T) {
	spec := validSpec()
	spec.Verify.Workers, spec.Reward = 3, 500
	o := Offer{Spec: spec}
	slots := Capacity{CPUCores: 8, MemoryBytes: 8 << 30, FreeSlots: 1}
	wasm := Policy{MinPrice: 100, Executors: []string{ExecutorWASM}}
	busy := KnownNode{Capacity: Capacity{CPUCores: 8, MemoryBytes: 8 << 30}, Policy: wasm}
	dear := KnownNode{Capacity: slots, Policy: Policy{MinPrice: 9000, Executors: []string{ExecutorWASM}}}
	native := KnownNode{Capacity: slots, Policy: Policy{Executors: []string{ExecutorNative}}}
	ready := KnownNode{Capacity: slots, Policy: wasm}
	cases := []struct {
		name    string
		nodes   []KnownNode
		have    int
		bids    int
		want    []string
		serving int
	}{
		{"nobody known", nil, 0, 0, []string{"needs 3 worker(s), 0 bid(s)", "no miners known yet"}, 0},
		{"too few miners", []KnownNode{ready, ready}, 0, 2,
			[]string{"needs 3 worker(s), 2 bid(s)", "2 of 2 known miner(s) could run it now", "lower the redundancy", "gives up at "}, 2},
		{"the others say why", []KnownNode{ready, busy, dear, native}, 1, 0,
			[]string{"needs 3 workers, has 1", "1 of 4 known miner(s)", "1× has no free job slot", "1× asks at least 9000, the offer pays 500", "1× does not offer the wasm executor"}, 3},
		{"enough could run it", []KnownNode{ready, ready, ready}, 0, 1, []string{"3 of 3 known miner(s)", "waiting for their bids"}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Waiting(o, tc.nodes, tc.have, 3, tc.bids)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("Waiting() = %q, want it to say %q", got, w)
				}
			}
			if n := Serving(o, tc.nodes); n != tc.serving {
				t.Errorf("Serving() = %d, want %d (busy and dear miners serve; other executors do not)", n, tc.serving)
			}
		})
	}
}
