package noop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vft-network/vft/executor"
)

func TestRun(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		cfg     Config
		task    executor.Task
		wantErr error
		want    map[string]string
	}{
		{name: "files", cfg: Config{Files: map[string][]byte{"a.txt": []byte("A"), "d/b.txt": []byte("BB")}},
			want: map[string]string{"a.txt": "A", "d/b.txt": "BB"}},
		{name: "error", cfg: Config{Err: boom}, wantErr: boom},
		{name: "timeout", cfg: Config{Delay: time.Minute},
			task: executor.Task{Limits: executor.Limits{Timeout: 10 * time.Millisecond}}, wantErr: executor.ErrTimeout},
		{name: "bad mount", task: executor.Task{Inputs: []executor.Mount{{Host: ".", Guest: "../x"}}}, wantErr: executor.ErrBadMount},
		{name: "hook", cfg: Config{Hook: func(_ context.Context, t executor.Task) (executor.Result, error) {
			return executor.Result{}, os.WriteFile(filepath.Join(t.OutputDir, "job"), []byte(t.JobID), 0o644)
		}}, task: executor.Task{JobID: "j1"}, want: map[string]string{"job": "j1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(tt.cfg)
			defer e.Close()
			tt.task.OutputDir = filepath.Join(t.TempDir(), "out")
			_, err := e.Run(context.Background(), tt.task)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run error = %v, want %v", err, tt.wantErr)
			}
			for name, want := range tt.want {
				got, err := os.ReadFile(filepath.Join(tt.task.OutputDir, name))
				if err != nil || string(got) != want {
					t.Errorf("%s = %q, %v; want %q", name, got, err, want)
				}
			}
			if e.Runs() != 1 || e.Tasks()[0].JobID != tt.task.JobID {
				t.Errorf("recorded %d runs, tasks %+v", e.Runs(), e.Tasks())
			}
		})
	}
}

func TestClosed(t *testing.T) {
	e := New(Config{})
	e.Close()
	e.Close()
	if _, err := e.Run(context.Background(), executor.Task{OutputDir: t.TempDir()}); !errors.Is(err, executor.ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
}

func TestStartedOnce(t *testing.T) {
	e := New(Config{})
	defer e.Close()
	started := 0
	_, err := e.Run(context.Background(), executor.Task{OutputDir: filepath.Join(t.TempDir(), "out"), Started: func() { started++ }})
	if err != nil || started != 1 {
		t.Fatalf("Run: %v; Started called %d times, want 1", err, started)
	}
}
