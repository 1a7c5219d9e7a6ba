package native

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vft-network/vft/executor"
)

// Each native task runs in a control group of its own, made for it and
// removed after it, which caps its memory (swap included), its CPU time per
// wall second and its number of processes, counts its peak memory and CPU
// time, and lets the executor kill every process in it, even one that left
// the sandbox's process group.
//
// cgroup v2 is used where its memory and cpu controllers are available. A
// daemon under systemd needs Delegate=yes (deploy/vft-miner.service has it):
// the daemon then moves itself into a leaf of its own cgroup ("vft-daemon"),
// because v2 lets only a cgroup without processes hand controllers to
// children. Hosts still on cgroup v1 (or hybrid, with the controllers on v1
// hierarchies) get the same limits from the v1 memory, cpu, cpuacct and pids
// hierarchies.
//
// A memory limit by cgroup counts memory really used. prlimit's address-space
// limit, the fallback without cgroups, also counts reservations, and CUDA
// reserves far more address space than any GPU has memory; so without
// cgroups a GPU task runs with no memory limit at all.

// cgroupTasksDir is the cgroup, under the daemon's own, that holds task cgroups.
const cgroupTasksDir = "vft-tasks"

// cgroupDaemonLeaf is where a v2 daemon moves itself to free its cgroup for
// task cgroups.
const cgroupDaemonLeaf = "vft-daemon"

// CgroupStatus says whether native tasks get cgroup limits on this host, and
// if not, why not and what to do.
type CgroupStatus struct {
	// Version is 2 or 1; 0 when tasks get no cgroup.
	Version int
	// Dir is the cgroup directory that holds the task cgroups (v2), or the
	// memory hierarchy's one (v1).
	Dir string
	// Reason and Fix explain a Version of 0.
	Reason, Fix string
}

// cgroups creates task cgroups. Its zero value (no hierarchies) creates none.
type cgroups struct {
	// v2 is the cgroup2 directory holding task cgroups; "" on v1.
	v2 string
	// v1 maps a v1 controller (memory, cpu, cpuacct, pids) to the directory
	// holding task cgroups in that hierarchy.
	v1 map[string]string
	// seq names task cgroups uniquely within this process.
	seq atomic.Uint64
}

func (c *cgroups) enabled() bool { return c != nil && (c.v2 != "" || c.v1["memory"] != "") }

// ProbeCgroups tells, without changing anything, whether a daemon started
// like this process would give native tasks cgroup limits (for vft doctor).
func ProbeCgroups() CgroupStatus {
	plan, err := planCgroups(readProcFiles())
	if err != nil {
		return CgroupStatus{Reason: err.Error(), Fix: cgroupFix}
	}
	if plan.v2 != "" {
		// Whether the daemon will be alone in its cgroup, as delegation needs,
		// cannot be told from here (doctor runs from a shell); writability can.
		if err := writable(plan.v2); err != nil {
			return CgroupStatus{Reason: err.Error(), Fix: cgroupFix}
		}
		return CgroupStatus{Version: 2, Dir: filepath.Join(plan.v2, cgroupTasksDir)}
	}
	return CgroupStatus{Version: 1, Dir: filepath.Join(plan.v1["memory"], cgroupTasksDir)}
}

const cgroupFix = "run the daemon as root or under systemd with Delegate=yes (deploy/vft-miner.service); " +
	"without cgroups, native tasks get only an address-space limit (none for GPU tasks) and no CPU limit"

func readProcFiles() (self, mountinfo []byte, err error) {
	if self, err = os.ReadFile("/proc/self/cgroup"); err != nil {
		return nil, nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	if mountinfo, err = os.ReadFile("/proc/self/mountinfo"); err != nil {
		return nil, nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	return self, mountinfo, nil
}

// setupCgroups finds this process's cgroups, delegates on v2 (moving the
// daemon into its leaf and enabling controllers), creates the directory of
// task cgroups and removes task cgroups a crashed daemon left behind.
func setupCgroups(self, mountinfo []byte, readErr error) (*cgroups, error) {
	plan, err := planCgroups(self, mountinfo, readErr)
	if err != nil {
		return nil, err
	}
	if plan.v2 != "" {
		dir, err := delegateV2(plan.v2)
		if err != nil {
			return nil, err
		}
		plan.v2 = dir
	} else {
		for ctrl, dir := range plan.v1 {
			tasks := filepath.Join(dir, cgroupTasksDir)
			if err := os.Mkdir(tasks, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				if ctrl == "memory" {
					return nil, fmt.Errorf("create %s: %w", tasks, err)
				}
				delete(plan.v1, ctrl) // an optional controller we may not use
				continue
			}
			plan.v1[ctrl] = tasks
		}
	}
	plan.removeLeftovers()
	return plan, nil
}

// planCgroups reads /proc/self/cgroup and /proc/self/mountinfo: the v2
// cgroup of this process where cgroup2 has the memory and cpu controllers,
// else its v1 cgroups.
func planCgroups(self, mountinfo []byte, readErr error) (*cgroups, error) {
	if readErr != nil {
		return nil, readErr
	}
	mounts := parseCgroupMounts(mountinfo)
	member := parseProcCgroup(self)
	if m, ok := mounts["cgroup2"]; ok {
		if p, ok := member[""]; ok {
			dir, err := m.dirOf(p)
			if err == nil {
				ctrls, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
				fields := strings.Fields(string(ctrls))
				if slices.Contains(fields, "memory") && slices.Contains(fields, "cpu") {
					return &cgroups{v2: dir}, nil
				}
			}
		}
	}
	plan := &cgroups{v1: map[string]string{}}
	for _, ctrl := range []string{"memory", "cpu", "cpuacct", "pids"} {
		m, ok := mounts[ctrl]
		if !ok {
			continue
		}
		p, ok := member[ctrl]
		if !ok {
			continue
		}
		if dir, err := m.dirOf(p); err == nil {
			plan.v1[ctrl] = dir
		}
	}
	if plan.v1["memory"] == "" {
		return nil, errors.New("no cgroup v2 with the memory and cpu controllers and no cgroup v1 memory hierarchy is mounted")
	}
	return plan, nil
}

// cgroupMount is one mounted cgroup hierarchy.
type cgroupMount struct {
	root       string // the cgroup shown at the mount point (not "/" in a container)
	mountPoint string
}

// dirOf is the directory of cgroup p (a path from /proc/self/cgroup).
func (m cgroupMount) dirOf(p string) (string, error) {
	rel, err := filepath.Rel(m.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("cgroup %s is outside the mounted %s", p, m.root)
	}
	return filepath.Join(m.mountPoint, rel), nil
}

// parseCgroupMounts maps "cgroup2" and each v1 controller to its mount.
func parseCgroupMounts(mountinfo []byte) map[string]cgroupMount {
	mounts := map[string]cgroupMount{}
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		m := cgroupMount{root: executor.UnescapeMountinfo(f[3]), mountPoint: executor.UnescapeMountinfo(f[4])}
		switch g[0] {
		case "cgroup2":
			if _, seen := mounts["cgroup2"]; !seen {
				mounts["cgroup2"] = m
			}
		case "cgroup":
			for _, opt := range strings.Split(g[2], ",") {
				if _, seen := mounts[opt]; !seen && opt != "rw" && opt != "ro" {
					mounts[opt] = m
				}
			}
		}
	}
	return mounts
}

// parseProcCgroup maps each v1 controller, and "" for v2, to this process's
// cgroup path.
func parseProcCgroup(self []byte) map[string]string {
	member := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		// 4:memory:/process_api/39e3  or  0::/system.slice/vft.service
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			member[ctrl] = parts[2]
		}
	}
	return member
}

func writable(dir string) error {
	if err := syscall.Access(filepath.Join(dir, "cgroup.subtree_control"), 2 /* W_OK */); err != nil {
		return fmt.Errorf("cgroup %s is not writable by this user: %w", dir, err)
	}
	return nil
}

// delegateV2 makes dir/vft-tasks a cgroup whose children can have memory,
// cpu and pids limits, and returns it. v2 lets a cgroup enable controllers
// for its children only while it has no processes of its own (the root
// excepted), so the daemon first moves itself into dir/vft-daemon; it
// refuses to move anyone else's processes.
func delegateV2(dir string) (string, error) {
	if enabled, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); !hasControllers(enabled) && !isRootCgroup(dir) {
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return "", fmt.Errorf("read %s: %w", dir, err)
		}
		if others := otherProcesses(procs, os.Getpid()); len(others) > 0 {
			return "", fmt.Errorf("cgroup %s holds other processes (%s) besides the daemon, so it cannot delegate controllers to task cgroups", dir, strings.Join(others, ", "))
		}
		leaf := filepath.Join(dir, cgroupDaemonLeaf)
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("create %s: %w", leaf, err)
		}
		if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return "", fmt.Errorf("move the daemon into %s: %w", leaf, err)
		}
	}
	if err := enableControllers(dir); err != nil {
		return "", err
	}
	tasks := filepath.Join(dir, cgroupTasksDir)
	if err := os.Mkdir(tasks, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create %s: %w", tasks, err)
	}
	return tasks, enableControllers(tasks)
}

func enableControllers(dir string) error {
	available, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("read controllers of %s: %w", dir, err)
	}
	var enable []string
	for _, c := range []string{"memory", "cpu", "pids"} {
		if slices.Contains(strings.Fields(string(available)), c) {
			enable = append(enable, "+"+c)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0); err != nil {
		return fmt.Errorf("enable %s for the children of %s: %w", strings.Join(enable, " "), dir, err)
	}
	return nil
}

func hasControllers(subtreeControl []byte) bool {
	f := strings.Fields(string(subtreeControl))
	return slices.Contains(f, "memory") && slices.Contains(f, "cpu")
}

// isRootCgroup: the root may enable controllers while it holds processes.
func isRootCgroup(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "cgroup.procs"))
	_, errParent := os.Stat(filepath.Join(filepath.Dir(dir), "cgroup.procs"))
	return err == nil && errParent != nil
}

func otherProcesses(procs []byte, self int) []string {
	var others []string
	for _, p := range strings.Fields(string(procs)) {
		if p != strconv.Itoa(self) {
			others = append(others, p)
		}
	}
	return others
}

// removeLeftovers removes the task cgroups of daemons that are gone (their
// tasks died with them: bwrap runs them with --die-with-parent). Other
// daemons on the host share the directory, so a cgroup is left alone while
// the daemon named in it lives.
func (c *cgroups) removeLeftovers() {
	for _, dir := range c.parents() {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			var pid, seq int
			if _, err := fmt.Sscanf(e.Name(), "task-%d-%d", &pid, &seq); err != nil || !e.IsDir() {
				continue
			}
			if syscall.Kill(pid, 0) == nil {
				continue
			}
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// parents are the directories task cgroups are made in: one on v2, one per
// v1 hierarchy (cpu and cpuacct are often one hierarchy, mounted as "cpu,cpuacct").
func (c *cgroups) parents() []string {
	if c.v2 != "" {
		return []string{c.v2}
	}
	var dirs []string
	for _, d := range c.v1 {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	return dirs
}

// cgroupLimits are what one task cgroup enforces.
type cgroupLimits struct {
	memoryBytes uint64
	cpuCores    uint32 // 0: no CPU cap
	processes   int
}

// cpuPeriod is the accounting window of the CPU cap: cores × period of CPU
// time per period.
const cpuPeriod = 100 * time.Millisecond

// taskCgroup is one task's cgroup (one directory per v1 hierarchy).
type taskCgroup struct {
	v2   string
	v1   map[string]string
	dirs []string
}

// create makes a task cgroup with limits l.
func (c *cgroups) create(l cgroupLimits) (*taskCgroup, error) {
	name := fmt.Sprintf("task-%d-%d", os.Getpid(), c.seq.Add(1))
	t := &taskCgroup{v1: map[string]string{}}
	for _, parent := range c.parents() {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.remove()
			return nil, fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		t.dirs = append(t.dirs, dir)
	}
	if c.v2 != "" {
		t.v2 = t.dirs[0]
	} else {
		for ctrl, parent := range c.v1 {
			t.v1[ctrl] = filepath.Join(parent, name)
		}
	}
	if err := t.limit(l); err != nil {
		t.remove()
		return nil, err
	}
	return t, nil
}

func (t *taskCgroup) limit(l cgroupLimits) error {
	mem := strconv.FormatUint(l.memoryBytes, 10)
	quota := strconv.FormatInt(int64(l.cpuCores)*cpuPeriod.Microseconds(), 10)
	period := strconv.FormatInt(cpuPeriod.Microseconds(), 10)
	var writes [][2]string // file, value: in order (v1 wants memsw after the memory limit)
	if t.v2 != "" {
		writes = append(writes, [2]string{"memory.max", mem}, [2]string{"memory.swap.max", "0"}, [2]string{"pids.max", strconv.Itoa(l.processes)})
		if l.cpuCores > 0 {
			writes = append(writes, [2]string{"cpu.max", quota + " " + period})
		}
		for _, w := range writes {
			if err := writeControl(t.v2, w[0], w[1]); err != nil && !optionalControl(w[0]) {
				return err
			}
		}
		return nil
	}
	if err := writeControl(t.v1["memory"], "memory.limit_in_bytes", mem); err != nil {
		return err
	}
	// Without swap accounting (the kernel's swapaccount=0) the file is absent,
	// and swap is not counted: the limit then holds for RAM only.
	_ = writeControl(t.v1["memory"], "memory.memsw.limit_in_bytes", mem)
	if dir := t.v1["pids"]; dir != "" {
		if err := writeControl(dir, "pids.max", strconv.Itoa(l.processes)); err != nil {
			return err
		}
	}
	if dir := t.v1["cpu"]; dir != "" && l.cpuCores > 0 {
		if err := writeControl(dir, "cpu.cfs_period_us", period); err != nil {
			return err
		}
		if err := writeControl(dir, "cpu.cfs_quota_us", quota); err != nil {
			return err
		}
	}
	return nil
}

// optionalControl: memory.swap.max is absent without swap accounting, pids.max without the pids controller.
func optionalControl(file string) bool { return file == "memory.swap.max" || file == "pids.max" }

func writeControl(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("set %s of cgroup %s to %s: %w", file, dir, value, err)
	}
	return nil
}

// procsFiles are the files a process writes its PID to, to join the task
// cgroup (one per v1 hierarchy).
func (t *taskCgroup) procsFiles() []string {
	files := make([]string, len(t.dirs))
	for i, d := range t.dirs {
		files[i] = filepath.Join(d, "cgroup.procs")
	}
	return files
}

// joinScript, run by /bin/sh with the procs files and then the command as
// arguments, moves the shell into the task cgroup and execs the command: so
// the sandbox and everything it starts are inside from their first
// instruction. (clone3's CLONE_INTO_CGROUP does this for v2 alone.)
const joinScript = `n=$1; shift
while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done
exec "$@"`

// wrap returns the command line that runs name with args inside t.
func (t *taskCgroup) wrap(name string, args []string) (string, []string) {
	files := t.procsFiles()
	out := append([]string{"-c", joinScript, "vft-cgroup", strconv.Itoa(len(files))}, files...)
	return "/bin/sh", append(append(out, name), args...)
}

// oomKilled tells whether the kernel killed a process of the task for
// reaching the memory limit.
func (t *taskCgroup) oomKilled() bool {
	if t.v2 != "" {
		return statValue(t.v2, "memory.events", "oom_kill") > 0
	}
	if kills := statValue(t.v1["memory"], "memory.oom_control", "oom_kill"); kills >= 0 {
		return kills > 0
	}
	// Kernels before 4.13 have no oom_kill counter; a charge refused at the
	// limit is the sign there.
	return readUint(t.v1["memory"], "memory.failcnt") > 0
}

// usage returns the task's peak memory and CPU time (zero where the kernel
// does not count them).
func (t *taskCgroup) usage() (peakBytes uint64, cpu time.Duration) {
	if t.v2 != "" {
		if v := statValue(t.v2, "cpu.stat", "usage_usec"); v > 0 {
			cpu = time.Duration(v) * time.Microsecond
		}
		return readUint(t.v2, "memory.peak"), cpu // memory.peak: Linux 5.19+
	}
	if dir := t.v1["cpuacct"]; dir != "" {
		cpu = time.Duration(readUint(dir, "cpuacct.usage"))
	}
	return readUint(t.v1["memory"], "memory.max_usage_in_bytes"), cpu
}

// kill stops every process in the task cgroup.
func (t *taskCgroup) kill() {
	if t.v2 != "" && os.WriteFile(filepath.Join(t.v2, "cgroup.kill"), []byte("1"), 0) == nil {
		return // Linux 5.14+
	}
	for range 50 {
		pids := t.pids()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (t *taskCgroup) pids() []int {
	var pids []int
	for _, f := range t.procsFiles() {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil && !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// remove kills what is left and removes the cgroup; a cgroup is removed
// once its last process is reaped, so it retries for a moment.
func (t *taskCgroup) remove() {
	t.kill()
	for _, dir := range t.dirs {
		for range 100 {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// statValue reads "key value" from a flat-keyed cgroup file; -1 if absent.
func statValue(dir, file, key string) int64 {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func readUint(dir, file string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}
