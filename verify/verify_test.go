package verify

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// prefixMatcher treats results as the same answer when they share the part
// before "~": "x~1" and "x~2" agree, like two outputs within tolerance.
type prefixMatcher struct{ err error }

func (m prefixMatcher) Match(_ context.Context, a, b string) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	return strings.Split(a, "~")[0] == strings.Split(b, "~")[0], nil
}

func ok(w, cid string) Report     { return Report{Worker: peer.ID(w), Result: cid} }
func failed(w, why string) Report { return Report{Worker: peer.ID(w), Failed: why} }

// crashed is a run that failed because of the program: why is its
// signature, the same on every honest worker.
func crashed(w, why string) Report {
	return Report{Worker: peer.ID(w), Failed: why + ": details", Failure: why}
}

func ids(s ...string) []peer.ID {
	var out []peer.ID
	for _, x := range s {
		out = append(out, peer.ID(x))
	}
	return out
}

func TestDecide(t *testing.T) {
	const exact = 2 // k=3 m=2
	tests := []struct {
		name      string
		quorum    int
		reports   []Report
		expected  int
		match     Matcher
		done      bool
		accepted  string
		agreed    []peer.ID
		dissented []peer.ID
		failure   string
	}{
		{"all agree", exact, []Report{ok("a", "X"), ok("b", "X"), ok("c", "X")}, 3, nil,
			true, "X", ids("a", "b", "c"), nil, ""},
		{"two of three", exact, []Report{ok("a", "X"), ok("b", "Y"), ok("c", "X")}, 3, nil,
			true, "X", ids("a", "c"), ids("b"), ""},
		// Rejected: differing results prove nothing about each other.
		{"all differ", exact, []Report{ok("a", "X"), ok("b", "Y"), ok("c", "Z")}, 3, nil,
			true, "", nil, nil, ""},
		{"failure is a dissent", exact, []Report{ok("a", "X"), failed("b", "trap"), ok("c", "X")}, 3, nil,
			true, "X", ids("a", "c"), ids("b"), ""},
		{"failed reveal with a result is still a dissent", exact,
			[]Report{ok("a", "X"), {Worker: "b", Result: "X", Failed: "bad reveal"}, ok("c", "X")}, 3, nil,
			true, "X", ids("a", "c"), ids("b"), ""},
		{"failures leave no quorum", exact, []Report{ok("a", "X"), failed("b", "trap"), failed("c", "timeout")}, 3, nil,
			true, "", nil, ids("b", "c"), ""},
		{"early decision before all reports", exact, []Report{ok("a", "X"), ok("b", "X")}, 3, nil,
			true, "X", ids("a", "b"), nil, ""},
		{"undecided while a quorum is still possible", exact, []Report{ok("a", "X"), ok("b", "Y")}, 3, nil,
			false, "", nil, nil, ""},
		{"nil matcher: near results differ", exact, []Report{ok("a", "X~1"), ok("b", "X~2"), ok("c", "Y")}, 3, nil,
			true, "", nil, nil, ""},
		{"matcher: near results agree", exact, []Report{ok("a", "X~1"), ok("b", "X~2"), ok("c", "Y")}, 3, prefixMatcher{},
			true, "X~1", ids("a", "b"), ids("c"), ""},
		{"spot: one worker and one verifier agree", SpotCheckQuorum,
			[]Report{ok("w", "X"), ok("v", "X")}, 2, nil, true, "X", ids("w", "v"), nil, ""},
		// A program that fails the same way everywhere is not dissent.
		{"agreed failure", exact, []Report{crashed("a", "exit code 3"), crashed("b", "exit code 3"), crashed("c", "exit code 3")}, 3, nil,
			true, "", nil, nil, "exit code 3"},
		{"agreed failure decided early", exact, []Report{crashed("a", "exit code 3"), crashed("b", "exit code 3")}, 3, nil,
			true, "", nil, nil, "exit code 3"},
		{"one worker's own failure beside an agreed failure is a dissent", exact,
			[]Report{crashed("a", "trap: unreachable"), failed("b", "fetch input: timeout"), crashed("c", "trap: unreachable")}, 3, nil,
			true, "", nil, ids("b"), "trap: unreachable"},
		{"a result beside an agreed failure proves nothing either way", exact,
			[]Report{crashed("a", "exit code 1"), ok("b", "X"), crashed("c", "exit code 1")}, 3, nil,
			true, "", nil, nil, "exit code 1"},
		{"different failures do not agree", exact, []Report{crashed("a", "exit code 1"), crashed("b", "exit code 2"), ok("c", "X")}, 3, nil,
			true, "", nil, ids("a", "b"), ""},
		{"a result quorum outranks failures", exact, []Report{crashed("a", "exit code 1"), ok("b", "X"), ok("c", "X")}, 3, nil,
			true, "X", ids("b", "c"), ids("a"), ""},
		{"k = 1: the one worker's failure is the job's", 1, []Report{crashed("a", "exit code 3")}, 1, nil,
			true, "", nil, nil, "exit code 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Decide(context.Background(), tt.quorum, tt.reports, tt.expected, tt.match)
			if err != nil {
				t.Fatal(err)
			}
			if out.Done != tt.done || out.Accepted != tt.accepted {
				t.Fatalf("Done=%v Accepted=%q, want %v %q (%s)", out.Done, out.Accepted, tt.done, tt.accepted, out.Reason)
			}
			if !slices.Equal(out.Agreed, tt.agreed) || !slices.Equal(out.Dissented, tt.dissented) {
				t.Fatalf("Agreed=%v Dissented=%v, want %v %v", out.Agreed, out.Dissented, tt.agreed, tt.dissented)
			}
			if out.Failure != tt.failure {
				t.Fatalf("Failure = %q, want %q (%s)", out.Failure, tt.failure, out.Reason)
			}
		})
	}
}

func TestDecideMatcherError(t *testing.T) {
	boom := errors.New("fetch failed")
	_, err := Decide(context.Background(), 2,
		[]Report{ok("a", "X"), ok("b", "Y")}, 2, prefixMatcher{err: boom})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "X") || !strings.Contains(err.Error(), "Y") {
		t.Fatalf("err = %v, want the matcher's error naming both results", err)
	}
}
