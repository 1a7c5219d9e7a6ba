// Package noop is an executor that runs nothing. Protocol tests use it to
// script what a worker "computes": fixed output files, an error, a delay, or
// a function of the task.
package noop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vft-network/vft/executor"
)

// Config scripts the executor. Every field is optional.
type Config struct {
	// Files are written into Task.OutputDir (name relative to it -> content).
	Files map[string][]byte
	// Stdout is returned as Result.Stdout.
	Stdout []byte
	// ExitCode is returned as Result.ExitCode.
	ExitCode int
	// Err, when set, is returned by Run after Delay (and after writing Files).
	Err error
	// Delay is how long Run takes; it ends early with executor.ErrTimeout
	// if the context ends or the task's timeout passes first.
	Delay time.Duration
	// Hook, when set, replaces all of the above: it is called with the task
	// and its output directory already prepared.
	Hook func(ctx context.Context, t executor.Task) (executor.Result, error)
}

// Executor is a scriptable executor.Executor.
type Executor struct {
	cfg    Config
	runs   atomic.Int64
	mu     sync.Mutex
	tasks  []executor.Task
	closed atomic.Bool
}

var _ executor.Executor = (*Executor)(nil)

// New returns a noop executor that behaves as cfg says.
func New(cfg Config) *Executor { return &Executor{cfg: cfg} }

// Name implements executor.Executor.
func (*Executor) Name() string { return "noop" }

// Runs reports how many times Run was called.
func (e *Executor) Runs() int { return int(e.runs.Load()) }

// Tasks returns a copy of the tasks Run was given, in order.
func (e *Executor) Tasks() []executor.Task {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]executor.Task(nil), e.tasks...)
}

// Run implements executor.Executor.
func (e *Executor) Run(ctx context.Context, t executor.Task) (executor.Result, error) {
	if e.closed.Load() {
		return executor.Result{}, executor.ErrClosed
	}
	e.runs.Add(1)
	e.mu.Lock()
	e.tasks = append(e.tasks, t)
	e.mu.Unlock()

	start := time.Now()
	if _, err := executor.CheckMounts(t.Inputs); err != nil {
		return executor.Result{}, err
	}
	out, err := executor.PrepareOutputDir(t.OutputDir)
	if err != nil {
		return executor.Result{}, err
	}
	t.OutputDir = out
	t.NotifyStarted()
	if e.cfg.Hook != nil {
		return e.cfg.Hook(ctx, t)
	}
	if t.Limits.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Limits.Timeout)
		defer cancel()
	}
	if e.cfg.Delay > 0 {
		timer := time.NewTimer(e.cfg.Delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return executor.Result{Duration: time.Since(start)},
				fmt.Errorf("%w: job %s: %v", executor.ErrTimeout, t.JobID, ctx.Err())
		}
	}
	res := executor.Result{ExitCode: e.cfg.ExitCode, Stdout: append([]byte(nil), e.cfg.Stdout...)}
	for name, data := range e.cfg.Files {
		p := filepath.Join(out, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return res, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return res, err
		}
		res.OutputBytes += int64(len(data))
	}
	res.Duration = time.Since(start)
	return res, e.cfg.Err
}

// Close implements executor.Executor.
func (e *Executor) Close() error {
	e.closed.Store(true)
	return nil
}
