package native

import (
	"context"
	"fmt"

	"github.com/vft-network/vft/executor"
)

// Doctor is what `vft doctor` checks on a miner that offers native jobs:
// whether tasks get cgroup limits, and that a sandbox starts as a task
// gets it. allowWithoutCgroups is executor.native.allow_without_cgroups.
func Doctor(ctx context.Context, allowWithoutCgroups bool) []executor.Check {
	return []executor.Check{cgroupCheck(allowWithoutCgroups), sandboxCheck(ctx)}
}

// Names of Doctor's checks, for a node that does not offer native jobs.
const (
	CheckCgroups = "cgroups for native jobs"
	CheckSandbox = "native sandbox"
)

func cgroupCheck(allowWithoutCgroups bool) executor.Check {
	st := ProbeCgroups()
	if st.Version == 0 {
		// Without cgroups the daemon refuses native jobs unless the operator opted in.
		if allowWithoutCgroups {
			return executor.Check{Name: CheckCgroups, Severity: executor.SeverityWarn, Detail: st.Reason + " (executor.native.allow_without_cgroups: rlimits only)", Fix: st.Fix}
		}
		return executor.Check{Name: CheckCgroups, Severity: executor.SeverityFail, Detail: st.Reason,
			Fix: st.Fix + "; or set executor.native.allow_without_cgroups = true"}
	}
	return executor.Check{Name: CheckCgroups, Severity: executor.SeverityOK, Detail: fmt.Sprintf("cgroup v%d, tasks under %s", st.Version, st.Dir)}
}

// sandboxCheck starts one native sandbox as a task gets it (seccomp
// profile, no nested user namespaces, bounded /tmp and /work), which needs
// bubblewrap 0.8 or later and user namespaces.
func sandboxCheck(ctx context.Context) executor.Check {
	// Cgroups have their own line.
	ex, err := New(Config{AllowWithoutCgroups: true, NoCgroups: true}, nil)
	if err == nil {
		defer ex.Close()
		err = ex.Check(ctx)
	}
	if err != nil {
		return executor.Check{Name: CheckSandbox, Severity: executor.SeverityFail, Detail: err.Error(), Fix: "install bubblewrap 0.8 or later (apt-get install bubblewrap), or remove native from market.executors"}
	}
	return executor.Check{Name: CheckSandbox, Severity: executor.SeverityOK, Detail: "seccomp profile, no nested user namespaces, bounded /tmp and /work"}
}
