// Package archtest keeps the dependency rules of CONVENTIONS.md true: the
// transport knows no market and no money, a sandbox knows no network, and
// only the binary composes the node.
package archtest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/vft-network/vft"

// forbidden maps a package (and its subpackages) to packages it must not
// depend on, directly or indirectly.
var forbidden = map[string][]string{
	"p2p":       {"job", "verify", "chain", "node", "api"},
	"executor":  {"p2p", "chain", "node"},
	"verify":    {"chain", "p2p", "node"},
	"chain":     {"job", "node"},
	"storage":   {"job", "verify", "chain", "node"},
	"hwdetect":  {"p2p", "job", "chain", "node"},
	"api":       {"node"},
	"job":       {"node"},
	"config":    {"node"},
	"wire":      {"p2p", "job", "verify", "chain", "node"},
	"heartbeat": {"job", "verify", "chain", "node"},
	"escrow":    {"job", "node"},
}

// mayImportNode lists who may import node/: the binary, and the test
// harness that builds whole nodes in one process.
var mayImportNode = []string{"cmd/", "internal/testnet"}

type pkg struct {
	ImportPath string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-json=ImportPath,Deps", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	return strings.CutPrefix(path, module+"/")
}

func within(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

func TestDependencyDirection(t *testing.T) {
	for _, p := range listPackages(t) {
		from, _ := rel(p.ImportPath)
		for _, dep := range p.Deps {
			to, ours := rel(dep)
			if !ours {
				continue
			}
			for dir, banned := range forbidden {
				if !within(from, dir) {
					continue
				}
				for _, b := range banned {
					if within(to, b) {
						t.Errorf("%s depends on %s: %s must not reach %s", from, to, dir, b)
					}
				}
			}
			if within(to, "node") && !within(from, "node") {
				allowed := false
				for _, prefix := range mayImportNode {
					if strings.HasPrefix(from, prefix) {
						allowed = true
					}
				}
				if !allowed {
					t.Errorf("%s depends on node/: only the binary composes the node", from)
				}
			}
		}
	}
}
