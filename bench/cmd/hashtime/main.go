// Command hashtime prints how long one SHA-256 pass over each file takes
// with Go's crypto/sha256 (SHA-NI where the CPU has it): the ceiling an
// import, which hashes every byte, is measured against.
//
//	go run ./bench/cmd/hashtime FILE...
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	buf := make([]byte, 1<<20)
	for _, p := range os.Args[1:] {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		start := time.Now()
		h := sha256.New()
		if _, err := io.CopyBuffer(h, f, buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("sha256 %s %.3f s\n", p, time.Since(start).Seconds())
		f.Close()
	}
}
