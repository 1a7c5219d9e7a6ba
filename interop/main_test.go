package interop

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/vft-network/vft/interop/internal/kubo"
)

// ipfsBin is the kubo binary built once for the whole run; buildErr says
// why there is none.
var (
	ipfsBin  string
	buildErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	start := time.Now()
	ipfsBin, buildErr = kubo.Build(ctx, ".")
	cancel()
	if buildErr == nil && testing.Verbose() {
		fmt.Fprintf(os.Stderr, "interop: kubo %s at %s (ready in %s)\n", kubo.Version, ipfsBin, time.Since(start).Round(time.Millisecond))
	}
	os.Exit(m.Run())
}

// requireKubo fails the test (never skips it) when kubo could not be built:
// these tests exist to prove interoperability with kubo.
func requireKubo(t testing.TB) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("kubo %s could not be built, so interoperability is unproven: %v", kubo.Version, buildErr)
	}
	return ipfsBin
}

// newKuboRepo initialises a loopback-only kubo repo in a temp dir.
func newKuboRepo(t testing.TB, profiles ...string) *kubo.Repo {
	t.Helper()
	bin := requireKubo(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := kubo.Init(ctx, bin, t.TempDir(), profiles...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startKubo initialises a repo and runs `ipfs daemon` on it until the test ends.
func startKubo(t testing.TB, profiles ...string) (*kubo.Daemon, kubo.Identity) {
	t.Helper()
	r := newKuboRepo(t, profiles...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := r.StartDaemon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Before stopping: every socket the daemon has is loopback only.
		requireLoopbackSockets(t, "ipfs daemon", d.Pid())
		d.Stop()
		if t.Failed() {
			t.Logf("ipfs daemon log:\n%s", d.Log())
		}
	})
	id, err := r.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := id.LoopbackAddr(); err != nil {
		t.Fatal(err)
	}
	return d, id
}

// ipfs runs an ipfs command on r and returns its trimmed stdout.
func ipfs(t testing.TB, r *kubo.Repo, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := r.Run(ctx, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(trimSpace(out))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// requireLoopbackSockets fails the test if process pid has a TCP or UDP
// socket bound to, or connected to, anything but 127.0.0.1 / ::1.
func requireLoopbackSockets(t testing.TB, what string, pid int) {
	t.Helper()
	bad, err := kubo.NonLoopbackSockets(pid)
	if err != nil {
		t.Errorf("list sockets of %s (pid %d): %v", what, pid, err)
		return
	}
	if len(bad) > 0 {
		t.Errorf("%s (pid %d) has sockets beyond loopback: %v", what, pid, bad)
	}
}
