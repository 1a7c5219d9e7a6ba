package node

import (
	"github.com/vft-network/vft/executor/native"
	"github.com/vft-network/vft/executor/oci"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/job"
)

// The executor kinds this binary knows: each is a package under executor/
// (its spec rules, task building and runner) and one line here.
func init() {
	job.RegisterKind(wasm.Kind{})
	job.RegisterKind(native.Kind{})
	job.RegisterKind(oci.Kind{})
}
