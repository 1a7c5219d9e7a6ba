package api

import (
	"github.com/vft-network/vft/executor/native"
	"github.com/vft-network/vft/executor/oci"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/job"
)

// The api tests check job specs with the kinds node/ registers.
func init() {
	job.RegisterKind(wasm.Kind{})
	job.RegisterKind(native.Kind{})
	job.RegisterKind(oci.Kind{})
}
