package chain

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps settlement free of the market and the network: chain/
// knows payouts for a job ID, not job internals (CONVENTIONS.md).
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/vft-network/vft/"
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"job", "node", "verify", "p2p", "executor", "api", "cmd"} {
			if pkg == module+banned || strings.HasPrefix(pkg, module+banned+"/") {
				t.Errorf("chain depends on %s", pkg)
			}
		}
	}
}
