//go:build !(cgo && linux)

package hwdetect

import (
	"context"
	"runtime"
	"strings"
	"testing"
)

func TestStubExplainsMissingGPUs(t *testing.T) {
	d, err := New(DefaultConfig(), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.Detect(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := "built without cgo: GPU detection unavailable"
	if runtime.GOOS != "linux" {
		want = "NVML is used on Linux only"
	}
	if len(r.GPUs) != 0 || r.NVML.Loaded || !strings.Contains(r.NoGPUReason, want) {
		t.Errorf("GPUs %d, NVML %+v, reason %q; want none, because %q", len(r.GPUs), r.NVML, r.NoGPUReason, want)
	}
}
