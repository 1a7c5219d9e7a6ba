package job

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/vft-network/vft/executor"
)

// ExecutorKind is an executor kind's say on its own jobs, implemented in
// the kind's package (executor/wasm, executor/native, ...): what its spec
// fields mean, what a worker fetches for it and how a task is built. job/
// keeps only the protocol; adding a kind is its package and one
// RegisterKind line in node/.
type ExecutorKind interface {
	// Name is the spec's executor value; runners (executor.Executor)
	// with the same Name run its tasks.
	Name() string
	// CheckSpec names the first bad field of s for this kind.
	CheckSpec(s executor.JobSpec) error
	// Content lists what a worker fetches before the run, besides the
	// inputs.
	Content(s executor.JobSpec) []executor.Content
	// Prepare fills the kind's part of t; staged maps each Content's
	// Field to where it was staged.
	Prepare(s executor.JobSpec, staged map[string]string, t *executor.Task) error
}

// kinds are the executor kinds this binary knows. The rules are a
// property of the binary, not of a node (every node checks every offer
// the gossip carries with them, before any market exists), so they are
// registered once at start, as image formats are in the standard library.
var kinds = struct {
	sync.RWMutex
	byName map[string]ExecutorKind
}{byName: map[string]ExecutorKind{}}

// RegisterKind adds an executor kind; registering a name twice replaces
// the first (tests register the same kinds from several places).
func RegisterKind(k ExecutorKind) {
	kinds.Lock()
	defer kinds.Unlock()
	kinds.byName[k.Name()] = k
}

// KindNames are the registered kinds, sorted.
func KindNames() []string {
	kinds.RLock()
	defer kinds.RUnlock()
	names := make([]string, 0, len(kinds.byName))
	for n := range kinds.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// kindOf is the registered kind of a spec's executor.
func kindOf(name string) (ExecutorKind, error) {
	kinds.RLock()
	k, ok := kinds.byName[name]
	kinds.RUnlock()
	if !ok {
		return nil, fmt.Errorf("executor %q is not one of %s", name, strings.Join(KindNames(), ", "))
	}
	return k, nil
}

// ForExecutor is what the spec's executor kind reads of it.
func (s Spec) ForExecutor() executor.JobSpec {
	return executor.JobSpec{Module: s.Module, Command: s.Command, Image: s.Image, Args: s.Args, Env: s.Env,
		GPUs: s.Needs.GPUs, MemoryBytes: s.Needs.MemoryBytes, Floats: s.Floats}
}
