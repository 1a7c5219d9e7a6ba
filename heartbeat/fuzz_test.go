package heartbeat

import (
	"context"
	"testing"
	"time"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/wire"
)

// FuzzValidate: no input panics the heartbeat validator; what it accepts
// from alice is recorded as alice's, and the same bytes are never accepted
// twice (a replay is ignored or rejected).
func FuzzValidate(f *testing.F) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	alice, err := identity.Generate()
	if err != nil {
		f.Fatal(err)
	}
	gpu := sample
	gpu.GPUs = []GPU{{Name: "RTX 4090", MemoryBytes: 24 << 30, ComputeCapability: "8.9", UtilPercent: 3}}
	gpu.NetworkSize = 4000
	for _, hb := range []Heartbeat{sample, gpu, {}} {
		data, err := wire.Seal(alice, Kind, t0, hb)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("not cbor"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newService(t, &clock{t0})
		ctx := context.Background()
		if err := s.Validate(ctx, alice.PeerID(), data); err != nil {
			return
		}
		nodes := s.Nodes()
		if len(nodes) != 1 || nodes[0].Peer != alice.PeerID() {
			t.Fatalf("accepted heartbeat recorded as %+v", nodes)
		}
		if err := s.Validate(ctx, alice.PeerID(), data); err == nil {
			t.Fatal("the same heartbeat was accepted twice")
		}
	})
}
