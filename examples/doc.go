// Package examples holds the sample workloads: each subdirectory is a Go
// program built with GOOS=wasip1 GOARCH=wasm that reads /input and writes
// /output, with a sample job spec, sample inputs and the expected output.
// The tests here run every example through the wasm executor. See README.md.
package examples
