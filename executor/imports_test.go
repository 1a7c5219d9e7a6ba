package executor

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the sandbox free of the network and the money: nothing
// under executor/ may depend on p2p, chain, job, verify, node or api.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/vft-network/vft/"
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"p2p", "chain", "job", "verify", "node", "api", "storage"} {
			if pkg == module+banned || strings.HasPrefix(pkg, module+banned+"/") {
				t.Errorf("executor depends on %s", pkg)
			}
		}
	}
}
