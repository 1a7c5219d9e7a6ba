package hwdetect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/vft-network/vft/hwdetect"
)

// How the node and the CLI use the package: `vft hw [--json]`, `vft doctor`,
// and the executor asking which GPUs it may hand to a job.
func Example() {
	cfg := hwdetect.DefaultConfig() // the node decodes [hardware] into this
	det, err := hwdetect.New(cfg, slog.Default(), hwdetect.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // names the bad [hardware] key
		return
	}
	defer det.Close()

	ctx := context.Background()
	report, err := det.Detect(ctx, os.TempDir()) // the repo dir in the node
	if err != nil {
		return
	}
	report.WriteText(os.Stdout)                       // vft hw
	json.NewEncoder(os.Stdout).Encode(report)         // vft hw --json
	for _, c := range det.Checks(ctx, os.TempDir()) { // vft doctor
		fmt.Printf("%-16s %-4s %s %s\n", c.Name, c.Severity, c.Detail, c.Fix)
	}
	gpus, _ := det.GPUs(ctx) // executor: never includes exclude_gpus
	fmt.Println(len(gpus), "GPUs for jobs")
}
