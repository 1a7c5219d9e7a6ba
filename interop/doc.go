// Package interop holds tests and benchmarks that run VFT's storage
// against kubo (the reference IPFS implementation) on loopback.
package interop
