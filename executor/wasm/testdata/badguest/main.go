// Command badguest misbehaves on request, to test the sandbox:
//
//	badguest panic | oob | loop | alloc MiB | write MiB | escape | rawescape | writeinput | spam KiB | sleep | exit N | env | touch N
package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

var sink []byte

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: badguest MODE [N]")
		os.Exit(64)
	}
	n := 0
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	switch os.Args[1] {
	case "panic":
		panic("boom")
	case "oob":
		// A wild pointer far past the end of linear memory: a wasm trap.
		p := (*byte)(unsafe.Pointer(uintptr(0xFFFFFFF0)))
		fmt.Println(*p)
	case "loop":
		for i := 0; ; i++ {
			if i < 0 {
				break
			}
		}
	case "alloc":
		var keep [][]byte
		for i := 0; i < n; i++ {
			b := make([]byte, 1<<20)
			b[0] = byte(i)
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep), "MiB")
	case "write":
		f, err := os.Create("/output/big")
		if err != nil {
			fail(err)
		}
		chunk := make([]byte, 1<<20)
		for i := 0; i < n; i++ {
			if _, err := f.Write(chunk); err != nil {
				fail(err)
			}
		}
		if err := f.Close(); err != nil {
			fail(err)
		}
	case "touch":
		// Empty files and directories: no bytes, but entries.
		for i := 0; i < n; i++ {
			if err := os.Mkdir(fmt.Sprintf("/output/d%d", i), 0o755); err != nil {
				fail(err)
			}
			f, err := os.Create(fmt.Sprintf("/output/d%d/f", i))
			if err != nil {
				fail(err)
			}
			f.Close()
		}
		fmt.Println("touched", n)
	case "escape":
		escaped := false
		for _, p := range []string{"/etc/passwd", "/input/../etc/passwd", "../etc/passwd",
			"/output/../../etc/passwd", "/input/../../../../etc/passwd", "/proc/self/environ"} {
			if _, err := os.ReadFile(p); err == nil {
				fmt.Println("READ", p)
				escaped = true
			} else {
				fmt.Println("refused", p+":", err)
			}
		}
		if err := os.Symlink("/etc/passwd", "/output/link"); err == nil {
			if _, err := os.ReadFile("/output/link"); err == nil {
				fmt.Println("READ /output/link")
				escaped = true
			}
		} else {
			fmt.Println("refused symlink:", err)
		}
		if escaped {
			os.Exit(1)
		}
	case "rawescape":
		if rawEscape() {
			os.Exit(1)
		}
	case "writeinput":
		if err := os.WriteFile("/input/new", []byte("x"), 0o644); err == nil {
			fmt.Println("WROTE /input/new")
			os.Exit(1)
		}
		if err := os.Remove("/input/a.txt"); err == nil {
			fmt.Println("REMOVED /input/a.txt")
			os.Exit(1)
		}
	case "spam":
		line := []byte(strings.Repeat("x", 1023) + "\n")
		for i := 0; i < n; i++ {
			os.Stdout.Write(line)
			os.Stderr.Write(line)
		}
	case "sleep":
		start := time.Now()
		time.Sleep(time.Hour)
		fmt.Println("slept", time.Since(start) >= time.Hour)
	case "exit":
		fmt.Fprintln(os.Stderr, "leaving with", n)
		os.Exit(n)
	case "env":
		fmt.Println("args", os.Args[1:])
		fmt.Println("env", os.Environ())
		fmt.Println("now", time.Now().UTC().Format(time.RFC3339Nano))
		fmt.Println("rand", rand.Uint64(), rand.Uint64())
		m := map[int]int{}
		for i := 0; i < 20; i++ {
			m[i] = i
		}
		for k := range m {
			fmt.Print(k, " ")
		}
		fmt.Println()
		entries, err := os.ReadDir("/input")
		fmt.Println("input", len(entries), err)
		for _, e := range entries {
			fmt.Println(" ", e.Name(), e.IsDir())
		}
		b, err := os.ReadFile("/input/data/inner.txt")
		fmt.Printf("inner %q %v\n", b, err)
		if err := os.WriteFile("/output/hello.txt", []byte("hello\n"), 0o644); err != nil {
			fail(err)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(64)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
