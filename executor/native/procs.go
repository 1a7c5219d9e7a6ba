package native

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sandboxProcesses counts the processes in the PID namespace of the sandbox
// started as pid (bwrap, whose first child is the namespace's init), or 0
// if it has none yet. It is the process limit's watchdog: RLIMIT_NPROC does
// not bind a daemon run as root, and a host may lack the pids controller.
func sandboxProcesses(pid int) int {
	children, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", strconv.Itoa(pid), "children"))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(children))
	if len(fields) == 0 {
		return 0
	}
	ns, err := os.Readlink(filepath.Join("/proc", fields[0], "ns", "pid"))
	if err != nil {
		return 0
	}
	if own, err := os.Readlink("/proc/self/ns/pid"); err != nil || own == ns {
		return 0 // not yet in its own namespace
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, d := range entries {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		if l, err := os.Readlink(filepath.Join("/proc", d.Name(), "ns", "pid")); err == nil && l == ns {
			n++
		}
	}
	return n
}
