package oci

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vft-network/vft/executor"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenParams is a task with every kind of mount and limit.
func goldenParams() specParams {
	return specParams{
		Rootfs:        "/var/lib/vft/oci/rootfs/0123abcd/rootfs",
		Args:          []string{"python3", "/app/infer.py", "--out", "/output/logits.npy"},
		Env:           taskEnv([]string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}, map[string]string{"SEED": "42"}),
		Cwd:           "/app",
		InputSkeleton: "/run/vft/bundles/task-1/input",
		Inputs: []executor.Mount{
			{Host: "/var/lib/vft/inputs/model", Guest: "model"},
			{Host: "/var/lib/vft/inputs/data/x.npy", Guest: "data/x.npy"},
		},
		OutputDir:    "/var/lib/vft/jobs/j1/output",
		Limits:       executor.Limits{MemoryBytes: 2 << 30, CPUCores: 2, Timeout: time.Minute},
		TmpBytes:     512 << 20,
		MaxProcesses: 1024,
		CgroupsPath:  cgroupsPath("vft-task-1"),
	}
}

func TestSpecGolden(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the golden config lists amd64's seccomp architectures")
	}
	got, err := json.MarshalIndent(buildSpec(goldenParams()), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "config.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSpecGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("runtime config differs from %s (rerun with -update if the change is intended):\n%s", golden, got)
	}
}
