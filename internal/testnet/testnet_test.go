package testnet

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/p2p"
)

// Eight nodes that each know only node 0 find all the others through the
// DHT rendezvous, and a gossip message from one reaches every other.
func TestMeshDiscoveryAndGossip(t *testing.T) {
	nodes := New(t, 8, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	took, err := WaitFullMesh(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("8 nodes fully connected after %s", took)

	const topicName = "/vft/1/test"
	topics := make([]*p2p.Topic, len(nodes))
	for i, nd := range nodes {
		tp, err := nd.Network().Join(topicName, func(context.Context, peer.ID, []byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		topics[i] = tp
		t.Cleanup(func() { tp.Close() })
	}
	waitTopicMesh(ctx, t, topics, 3)
	msg := []byte(fmt.Sprintf("hello from %s", nodes[3].Network().ID()))
	if err := topics[3].Publish(ctx, msg); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, tp := range topics {
		if i == 3 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := tp.Next(ctx)
			if err != nil {
				t.Errorf("node %d: no message: %v", i, err)
				return
			}
			if string(got.Data) != string(msg) || got.From != nodes[3].Network().ID() {
				t.Errorf("node %d got %q from %s", i, got.Data, got.From)
			}
		}()
	}
	wg.Wait()
}

// A validator's rejection stops a message at the first hop: no subscriber
// sees it, while a valid one still arrives.
func TestValidatorRejectsBeforeDelivery(t *testing.T) {
	nodes := New(t, 3, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	reject := func(_ context.Context, _ peer.ID, data []byte) error {
		if string(data) == "forged" {
			return fmt.Errorf("bad signature")
		}
		return nil
	}
	var topics []*p2p.Topic
	for _, nd := range nodes {
		tp, err := nd.Network().Join("/vft/1/test", reject)
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, tp)
		t.Cleanup(func() { tp.Close() })
	}
	waitTopicMesh(ctx, t, topics, 2)
	// Node 0's own publish skips local validation, so the forged message
	// leaves it and must be stopped by the receivers' validators.
	if err := topics[0].Publish(ctx, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	if err := topics[0].Publish(ctx, []byte("genuine")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		got, err := topics[i].Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Data) != "genuine" {
			t.Fatalf("node %d received %q, want only the genuine message", i, got.Data)
		}
	}
}

func TestJoinRequiresPrefixAndValidator(t *testing.T) {
	nodes := New(t, 1, Options{})
	if _, err := nodes[0].Network().Join("/other/topic", func(context.Context, peer.ID, []byte) error { return nil }); err == nil {
		t.Error("joined a topic outside /vft/")
	}
	if _, err := nodes[0].Network().Join("/vft/1/x", nil); err == nil {
		t.Error("joined a topic without a validator")
	}
}

// waitTopicMesh waits until every node knows at least min subscribers of
// the topic, then two GossipSub heartbeats (1 s each) so the nodes GRAFT
// their meshes: these tests are about delivery in a formed network, not
// about a message sent in the instant the last node joined (which was seen
// not to arrive at all in some runs; see the closing notes).
func waitTopicMesh(ctx context.Context, t *testing.T, topics []*p2p.Topic, min int) {
	t.Helper()
	for i, tp := range topics {
		for len(tp.Peers()) < min {
			select {
			case <-ctx.Done():
				t.Fatalf("node %d sees %d topic peers", i, len(tp.Peers()))
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	time.Sleep(2 * time.Second)
}
