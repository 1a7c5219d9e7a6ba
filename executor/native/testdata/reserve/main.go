// Command reserve maps 16 GiB of address space without using it, as CUDA
// does, then touches the number of MiB given as its argument.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	if _, err := syscall.Mmap(-1, 0, 16<<30, syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE); err != nil {
		fmt.Fprintln(os.Stderr, "reserve:", err)
		os.Exit(2)
	}
	mib, _ := strconv.Atoi(os.Args[1])
	buf := make([]byte, mib<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	fmt.Println("touched", mib, "MiB")
}
