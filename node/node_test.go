package node

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/repo"
)

func testConfig() config.Config {
	cfg := config.Default(config.ModeMiner)
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.P2P.MDNS = false
	cfg.P2P.AllowPrivateAddrs = true
	cfg.P2P.NATPortMap = false
	cfg.API.Listen = "127.0.0.1:0"
	return cfg
}

// A component failing to start stops the ones already started: the repo
// lock is released and no api file is left, so the user can fix the
// problem and start again.
func TestStartRollsBack(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig()
	r, key, err := repo.Init(filepath.Join(t.TempDir(), "n"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.API.Listen = busy.Addr().String()
	nd, err := New(r, cfg, key, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(context.Background()); err == nil {
		t.Fatal("started with the API port in use")
	}
	if _, err := os.Stat(r.Path(repo.APIFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("failed start left an api file")
	}
	unlock, err := r.Lock()
	if err != nil {
		t.Fatalf("failed start kept the repo lock: %v", err)
	}
	unlock()

	cfg.API.Listen = "127.0.0.1:0"
	nd, err = New(r, cfg, key, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(context.Background()); err != nil {
		t.Fatalf("start after fixing the config: %v", err)
	}
	addr, err := r.APIAddr()
	if err != nil || addr != nd.APIAddr() {
		t.Fatalf("api file %q, %v; want %s", addr, err, nd.APIAddr())
	}
	if err := nd.Close(); err != nil {
		t.Fatal(err)
	}
	if err := nd.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.APIAddr(); !errors.Is(err, repo.ErrNoDaemon) {
		t.Fatalf("api file left after Close: %v", err)
	}
}

// Two nodes cannot share a repo.
func TestSecondNodeOnRepoRefused(t *testing.T) {
	cfg := testConfig()
	r, key, err := repo.Init(filepath.Join(t.TempDir(), "n"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := New(r, cfg, key, slog.New(slog.DiscardHandler), Options{})
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, _ := New(r, cfg, key, slog.New(slog.DiscardHandler), Options{})
	if err := second.Start(context.Background()); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("second node on the same repo: %v, want ErrLocked", err)
	}
}

// startTestNode starts a node with testConfig in a fresh repo, closed
// when the test ends.
func startTestNode(t *testing.T) *Node {
	t.Helper()
	nd := startedNode(t)
	t.Cleanup(func() { nd.Close() })
	return nd
}

// startedNode starts a node with testConfig in a fresh repo; the caller
// closes it.
func startedNode(t *testing.T) *Node {
	t.Helper()
	cfg := testConfig()
	r, key, err := repo.Init(filepath.Join(t.TempDir(), "n"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := New(r, cfg, key, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return nd
}

// A node that starts and stops leaves no goroutine of its own behind
// (go-libp2p keeps a few process-wide workers, created at first use).
func TestNoGoroutineLeak(t *testing.T) {
	run := func() {
		if err := startedNode(t).Close(); err != nil {
			t.Fatal(err)
		}
	}
	run() // warm up the libraries' process-wide goroutines
	ignore := goleak.IgnoreCurrent()
	run()
	goleak.VerifyNone(t, ignore)
}
