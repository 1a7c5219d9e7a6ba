package hwdetect

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDetectThisMachine runs real detection. It must pass on any machine,
// with or without an NVIDIA driver: no GPU is a reason, never a failure.
func TestDetectThisMachine(t *testing.T) {
	d, err := New(DefaultConfig(), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := d.Detect(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	t.Logf("report:\n%s", r.Text())
	if len(r.GPUs) == 0 && r.NoGPUReason == "" {
		t.Error("no GPU and no reason given")
	}
	if r.CPU.LogicalCores <= 0 || r.CPU.Arch == "" {
		t.Errorf("CPU = %+v, want cores > 0 and an arch", r.CPU)
	}
	if r.Memory.TotalBytes == 0 || r.Memory.AvailableBytes == 0 {
		t.Errorf("memory = %+v, want > 0", r.Memory)
	}
	if r.Disk.FreeBytes == 0 || r.Disk.TotalBytes < r.Disk.FreeBytes {
		t.Errorf("disk = %+v, want free > 0 and <= total", r.Disk)
	}
	for _, c := range d.Checks(ctx, t.TempDir()) {
		t.Logf("check %-16s %-4s %s | %s", c.Name, c.Severity, c.Detail, c.Fix)
	}

	// A repo that does not exist yet (vft hw before vft init) is on the
	// disk of its nearest existing parent: that disk is reported, not
	// "0.0 GiB free of 0.0 GiB" and a statfs warning.
	parent := t.TempDir()
	missing := filepath.Join(parent, "not-created", "repo")
	r, err = d.Detect(ctx, missing)
	if err != nil || r.Disk.Path != missing || r.Disk.MeasuredAt != parent || r.Disk.TotalBytes == 0 || len(r.Warnings) > 0 && strings.Contains(strings.Join(r.Warnings, "\n"), "disk: ") {
		t.Errorf("Detect(missing repo) = disk %+v, warnings %q, err %v: want the disk of %s", r.Disk, r.Warnings, err, parent)
	}
	if text := r.Text(); !strings.Contains(text, "not created yet; on the disk of "+parent) || strings.Contains(text, "0.0 GiB free of 0.0 GiB") {
		t.Errorf("vft hw for a missing repo says:\n%s", text)
	}
}
