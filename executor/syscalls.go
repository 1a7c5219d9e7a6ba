package executor

// DeniedSyscalls are the system calls the process sandboxes (native's
// bubblewrap profile, oci's runtime-spec profile) make fail with EPERM.
// Jobs run real programs whose system calls are too varied for an allow
// list, but none needs namespaces, mounts, kernel modules, keyrings,
// tracing or BPF, where escapes and kernel exploits start.
var DeniedSyscalls = []string{
	// Namespaces and mounts: the sandbox is the task's only namespace.
	"unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
	"mount_setattr",
	// Other processes' memory and tracing.
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	// Kernel code, BPF, performance counters, keyrings.
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"bpf", "perf_event_open", "keyctl", "add_key", "request_key",
	"userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	// Host administration.
	"reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "vhangup",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"sethostname", "setdomainname", "iopl", "ioperm",
	"open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
}
