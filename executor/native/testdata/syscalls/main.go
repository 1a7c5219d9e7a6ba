// Command syscalls tries the system calls a sandbox escape or kernel exploit
// starts with and prints, one per line, "name: ok" or "name: <errno>".
package main

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	// A new user namespace in a child (unshare(2) would refuse a
	// multi-threaded Go program anyway); `unshare -U` tests the other way.
	_, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}})
	report("clone(CLONE_NEWUSER)", err)
	desc, _ := unix.BytePtrFromString("vft-test")
	payload := []byte("x")
	_, _, errno := unix.Syscall6(unix.SYS_ADD_KEY, uintptr(unsafe.Pointer(typeUser())), uintptr(unsafe.Pointer(desc)),
		uintptr(unsafe.Pointer(&payload[0])), 1, processKeyring, 0)
	report("add_key", errnoErr(errno))
	_, _, errno = unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&[120]byte{})), 0)
	report("io_uring_setup", errnoErr(errno))
}

// processKeyring is KEY_SPEC_PROCESS_KEYRING (-2) as a system call argument.
var processKeyring = uintptr(0xfffffffe)

func typeUser() *byte {
	p, _ := unix.BytePtrFromString("user")
	return p
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func report(name string, err error) {
	if err == nil {
		fmt.Printf("%s: ok\n", name)
		return
	}
	fmt.Printf("%s: %v\n", name, err)
}
