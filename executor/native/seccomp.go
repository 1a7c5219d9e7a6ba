package native

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/vft-network/vft/executor"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The seccomp profile of native tasks is a deny list: a task runs real
// programs (Python, CUDA) whose system calls are too many and too varied for
// an allow list, but nothing a job needs touches the kernel's namespaces,
// mounts, modules, keyrings, tracing or BPF, which is where sandbox escapes
// and kernel exploits start. A denied call returns EPERM, so a program that
// merely probes (a runtime checking for userfaultfd) carries on.

// namespaceCloneFlags are clone's flags that create namespaces.
const namespaceCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWTIME

// seccompPolicy is the task profile.
func seccompPolicy() seccomp.Policy {
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: executor.DeniedSyscalls},
			{Action: seccomp.ActionErrno, NamesWithCondtions: []seccomp.NameWithConditions{{
				Name: "clone",
				Conditions: seccomp.ArgumentConditions{{
					Argument: 0, Operation: seccomp.BitsSet, Value: namespaceCloneFlags}},
			}}},
			// clone3 passes its flags in memory, which seccomp cannot read: ENOSYS
			// makes the C library fall back to clone, whose flags it can.
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
		},
	}
}

var seccompProgram = sync.OnceValues(func() ([]byte, error) {
	policy := seccompPolicy()
	insns, err := policy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("assemble the seccomp profile: %w", err)
	}
	raw, err := bpf.Assemble(insns)
	if err != nil {
		return nil, fmt.Errorf("assemble the seccomp profile: %w", err)
	}
	// bwrap --seccomp reads an array of struct sock_filter in the host's
	// byte order: u16 code, u8 jt, u8 jf, u32 k.
	out := make([]byte, 0, 8*len(raw))
	for _, in := range raw {
		out = binary.NativeEndian.AppendUint16(out, in.Op)
		out = append(out, in.Jt, in.Jf)
		out = binary.NativeEndian.AppendUint32(out, in.K)
	}
	return out, nil
})

// seccompFile returns a pipe's read end holding the compiled profile, for
// bwrap's --seccomp FD. The profile is a few hundred bytes, far below a
// pipe's buffer, so it is written in full before bwrap starts.
func seccompFile() (*os.File, error) {
	prog, err := seccompProgram()
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("seccomp profile pipe: %w", err)
	}
	_, err = w.Write(prog)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("write the seccomp profile: %w", err)
	}
	return r, nil
}
