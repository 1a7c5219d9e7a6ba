package job

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestWorkerReportDeadline(t *testing.T) {
	const timeout, grace = time.Minute, 2 * time.Minute
	assigned := time.Unix(1_000_000, 0)
	base := assigned.Add(timeout + grace)
	limit := assigned.Add(stagingLimit(timeout) + timeout + grace)
	w := peer.ID("worker")
	staging := ProgressMsg{Job: "j", Stage: StageStaging}
	running := ProgressMsg{Job: "j", Stage: StageRunning}
	type said struct {
		msg ProgressMsg
		at  time.Duration // after the assignment
	}
	for _, tc := range []struct {
		name string
		said []said
		want time.Time
	}{
		{"silent worker: timeout + grace", nil, base},
		{"early staging word keeps the base", []said{{staging, time.Second}}, base},
		{"still staging late: one grace after its last word", []said{{staging, 5 * time.Minute}}, assigned.Add(7 * time.Minute)},
		{"running: timeout + grace from then", []said{{staging, 4 * time.Minute}, {running, 6 * time.Minute}}, assigned.Add(9 * time.Minute)},
		{"staging after running does not move the clock", []said{{running, 6 * time.Minute}, {staging, 8 * time.Minute}}, assigned.Add(9 * time.Minute)},
		{"staging forever stops at the limit", []said{{staging, 30 * time.Minute}}, limit},
		{"running late stops at the limit", []said{{running, 30 * time.Minute}}, limit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newWorkerProgress()
			for _, s := range tc.said {
				p.record("j", w, s.msg, assigned.Add(s.at))
			}
			if got := p.deadline("j", w, assigned, timeout, grace); !got.Equal(tc.want) {
				t.Fatalf("deadline %v after the assignment, want %v", got.Sub(assigned), tc.want.Sub(assigned))
			}
		})
	}
}

// Words closer than progressMinGap are ignored, except a first "running",
// which moves the deadline.
func TestProgressTooSoonIgnored(t *testing.T) {
	p := newWorkerProgress()
	at := time.Unix(1_000_000, 0)
	w := peer.ID("worker")
	if ok, _ := p.record("j", w, ProgressMsg{Stage: StageStaging}, at); !ok {
		t.Fatal("first word ignored")
	}
	if ok, _ := p.record("j", w, ProgressMsg{Stage: StageStaging}, at.Add(100*time.Millisecond)); ok {
		t.Fatal("a word 100 ms after the last was taken")
	}
	if ok, first := p.record("j", w, ProgressMsg{Stage: StageRunning}, at.Add(200*time.Millisecond)); !ok || !first {
		t.Fatalf("first running: ok %v first %v", ok, first)
	}
	if _, first := p.record("j", w, ProgressMsg{Stage: StageRunning}, at.Add(5*time.Second)); first {
		t.Fatal("a second running counted as the first")
	}
	p.forget("j", w)
	if d := p.deadline("j", w, at, time.Minute, time.Minute); !d.Equal(at.Add(2 * time.Minute)) {
		t.Fatalf("forgotten worker's deadline %v", d.Sub(at))
	}
}
