package verify

import (
	"context"
	"errors"
	"testing"

	"github.com/vft-network/vft/executor"
)

// capFetcher records the byte cap each Get was given and refuses, as the
// node's store refuses a result that declares more than the cap.
type capFetcher map[string]int64

var errRefused = errors.New("refused")

func (c capFetcher) Get(_ context.Context, cid, _ string, maxBytes int64) error {
	c[cid] = maxBytes
	return errRefused
}

// Issue #13 item 4: a result (or verifier module) that is a dedup bomb
// must be refused while fetching, at the comparison cap, not measured
// after it has filled the disk. Both matchers hand the cap to the store.
func TestMatchersPassCompareCapToFetcher(t *testing.T) {
	const limit = 4000
	tests := []struct {
		name  string
		match func(Fetcher) error
		cid   string
	}{
		{"tolerance result", func(f Fetcher) error {
			_, err := NewToleranceMatcher(f, t.TempDir(), 0, 0, limit).Match(context.Background(), "A", "B")
			return err
		}, "A"},
		{"custom verifier module", func(f Fetcher) error {
			_, err := NewCustomMatcher(f, nil, "V", t.TempDir(), limit, executor.Limits{}).Match(context.Background(), "A", "B")
			return err
		}, "V"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := capFetcher{}
			if err := tt.match(f); !errors.Is(err, errRefused) {
				t.Fatalf("Match = %v, want the fetcher's refusal", err)
			}
			if got := f[tt.cid]; got != limit {
				t.Fatalf("fetch of %s got cap %d, want %d", tt.cid, got, limit)
			}
		})
	}
}
