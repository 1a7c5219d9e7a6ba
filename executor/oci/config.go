package oci

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/vft-network/vft/executor"
)

// specParams is everything the runtime config of one task depends on.
type specParams struct {
	Rootfs string
	// Args is the command; Env the whole environment (KEY=VALUE, sorted).
	Args []string
	Env  []string
	Cwd  string
	// InputSkeleton is a host directory holding an empty mount point for
	// every input, bound read-only at /input under the inputs.
	InputSkeleton string
	Inputs        []executor.Mount
	OutputDir     string
	Limits        executor.Limits
	TmpBytes      int64
	MaxProcesses  int64
	CgroupsPath   string
	// IDBase is the host id of the container's root in its user
	// namespace; 0 runs it without one.
	IDBase uint32
}

// defaultPath is PATH when neither the image nor the task sets one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maskedPaths and readonlyPaths are runc's defaults (`runc spec`): /proc
// and /sys files that tell about or change the host.
var (
	maskedPaths = []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// buildSpec returns the runtime config of a task: its own PID, network (no
// interface but lo), IPC, UTS, mount and cgroup namespaces, and a user
// namespace when IDBase is set; a read-only
// root; no capabilities and no new privileges; the seccomp deny list; the
// inputs read-only and the output directory writable; a size-bounded /tmp;
// memory, process and CPU limits.
func buildSpec(p specParams) *specs.Spec {
	ro := []string{"nosuid", "nodev", "noexec"}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: append(slices.Clone(ro), "ro")},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: append(slices.Clone(ro), "relatime", "ro")},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", fmt.Sprintf("size=%d", p.TmpBytes)}},
		{Destination: "/input", Type: "bind", Source: p.InputSkeleton, Options: []string{"rbind", "ro", "nosuid", "nodev"}},
	}
	// Shallow inputs first, so that deeper ones land on top of them.
	inputs := slices.Clone(p.Inputs)
	slices.SortStableFunc(inputs, func(a, b executor.Mount) int {
		return mountDepth(a.Guest) - mountDepth(b.Guest)
	})
	for _, m := range inputs {
		dest := "/input"
		if m.Guest != "." {
			dest = "/input/" + m.Guest
		}
		mounts = append(mounts, specs.Mount{Destination: dest, Type: "bind", Source: m.Host, Options: []string{"rbind", "ro", "nosuid", "nodev"}})
	}
	mounts = append(mounts, specs.Mount{Destination: "/output", Type: "bind", Source: p.OutputDir, Options: []string{"rbind", "rw", "nosuid", "nodev"}})

	memory := int64(min(p.Limits.MemoryBytes, 1<<62))
	resources := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		// Swap equal to the limit: no swap on top of the memory limit.
		Memory: &specs.LinuxMemory{Limit: &memory, Swap: &memory},
		Pids:   &specs.LinuxPids{Limit: &p.MaxProcesses},
	}
	if p.Limits.CPUCores > 0 {
		period := uint64(100_000)
		quota := int64(p.Limits.CPUCores) * int64(period)
		resources.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	spec := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User:            specs.User{UID: 0, GID: 0},
			Args:            p.Args,
			Env:             p.Env,
			Cwd:             p.Cwd,
			Capabilities:    &specs.LinuxCapabilities{Bounding: []string{}, Effective: []string{}, Permitted: []string{}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: p.Rootfs, Readonly: true},
		Hostname: "vft-task",
		Mounts:   mounts,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			Resources:     resources,
			CgroupsPath:   p.CgroupsPath,
			Seccomp:       seccompProfile(),
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
		},
	}
	if p.IDBase != 0 {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		ids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: p.IDBase, Size: IDRangeSize}}
		spec.Linux.UIDMappings, spec.Linux.GIDMappings = ids, slices.Clone(ids)
	}
	return spec
}

// mountDepth orders /input itself before its files and directories.
func mountDepth(guest string) int {
	if guest == "." {
		return -1
	}
	return strings.Count(guest, "/")
}

// namespaceCloneFlags are clone's flags that create namespaces; a clone
// with any of them fails with EPERM.
var namespaceCloneFlags = []uint64{unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC,
	unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWTIME}

func seccompProfile() *specs.LinuxSeccomp {
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: seccompArches(),
		Syscalls: []specs.LinuxSyscall{
			{Names: executor.DeniedSyscalls, Action: specs.ActErrno, ErrnoRet: &eperm},
			// clone3 passes its flags in memory, which seccomp cannot read:
			// ENOSYS makes the C library fall back to clone.
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
	// One rule per flag: rules are OR'ed, the conditions of one rule AND'ed.
	for _, flag := range namespaceCloneFlags {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{
			Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: flag, ValueTwo: flag, Op: specs.OpMaskedEqual}},
		})
	}
	return s
}

func seccompArches() []specs.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	default:
		return nil
	}
}

// taskEnv is the image's environment overridden by the task's, with a PATH
// where neither sets one, as sorted KEY=VALUE pairs.
func taskEnv(image []string, task map[string]string) []string {
	env := map[string]string{}
	for _, kv := range image {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	maps.Copy(env, task)
	if _, ok := env["PATH"]; !ok {
		env["PATH"] = defaultPath
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}
