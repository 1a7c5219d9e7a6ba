//go:build tools

// Package interop tests VFT's storage against kubo, the reference IPFS
// implementation. This file pins kubo's `ipfs` command as a dependency of
// the module so that `go build github.com/ipfs/kubo/cmd/ipfs` builds it
// with the versions that go.mod selects.
package interop

import _ "github.com/ipfs/kubo/cmd/ipfs"
