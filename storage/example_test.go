package storage_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"

	"github.com/vft-network/vft/storage"
)

// How the node wires the store: its own host and DHT are handed in, and
// the pebble datastore the store opened is shared with other components.
func Example() {
	ctx := context.Background()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		panic(err)
	}
	defer h.Close()
	kad, err := dht.New(h, dht.ProtocolPrefix("/vft"), dht.Mode(dht.ModeServer))
	if err != nil {
		panic(err)
	}
	defer kad.Close()

	st, err := storage.New(storage.DefaultConfig(), "/tmp/vft-example-repo", h, kad, slog.Default(), storage.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	var shared datastore.Batching = st.Datastore() // other components use other key prefixes

	c, err := st.Add(ctx, "input.bin", storage.AddOptions{Progress: func(done, total int64) {
		fmt.Printf("\r%d/%d bytes", done, total)
	}})
	if err != nil {
		panic(err)
	}
	_, _ = shared, c
}
