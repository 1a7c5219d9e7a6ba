package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// slowContent is a store whose pin takes several short-call bounds,
// reporting progress meanwhile, and whose pin list never answers.
type slowContent struct {
	fakeContent
	pinTakes time.Duration
}

func (s *slowContent) Pin(ctx context.Context, _ string, progress func(done, total int64)) error {
	end := time.Now().Add(s.pinTakes)
	for done := int64(0); time.Now().Before(end); done += 1 << 20 {
		progress(done, 64<<20)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func (s *slowContent) Pins(ctx context.Context) ([]string, error) {
	<-ctx.Done() // a stuck daemon: the client must give up on its own
	return nil, ctx.Err()
}

// A call that moves data runs as long as the data takes (`vft pin add` of
// a large DAG failed with "Client.Timeout exceeded" after 60 s), and shows
// progress; a short call to a stuck daemon still ends with an error that
// says so.
func TestClientBoundsOnlyShortCalls(t *testing.T) {
	const bound = 200 * time.Millisecond
	s, err := New(Config{Listen: "127.0.0.1:0"}, &fakeBackend{}, testToken, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.ServeContent(&slowContent{pinTakes: 4 * bound})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cl := NewClient(s.Addr(), testToken)
	cl.callTimeout = bound

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var updates int
	if err := cl.Pin(ctx, "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", func(done, total int64) { updates++ }); err != nil {
		t.Fatalf("a pin longer than the short-call bound failed: %v", err)
	}
	if updates == 0 {
		t.Fatal("the pin reported no progress")
	}

	_, err = cl.Pins(ctx)
	if err == nil || !strings.Contains(err.Error(), "did not answer within "+bound.String()) {
		t.Fatalf("a stuck short call gave %v, want an error saying the daemon did not answer within %s", err, bound)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatalf("a timed-out call reads as interrupted: %v", err)
	}
}
