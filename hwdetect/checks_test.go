package hwdetect

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestChecks(t *testing.T) {
	noNVML := gpuProbe{nvml: NVMLStatus{Error: "NVML not loadable: libnvidia-ml.so.1 not found", Fix: "install the NVIDIA driver (nvidia-driver package) and reboot"}}
	tests := []struct {
		name    string
		cfg     Config
		probe   gpuProbe
		noBwrap bool
		disk    Disk
		diskErr error
		want    map[string]Severity // check name -> severity
		wantFix map[string]string   // check name -> substring of Fix
	}{
		{"healthy GPU miner", DefaultConfig(), twoGPUProbe(), false, Disk{TotalBytes: 500 << 30, FreeBytes: 100 << 30}, nil,
			map[string]Severity{"nvml": SeverityOK, "gpus visible": SeverityOK, "bwrap present": SeverityOK, "repo disk space": SeverityOK}, nil},
		{"no driver, no bwrap, low disk", DefaultConfig(), noNVML, true, Disk{TotalBytes: 100 << 30, FreeBytes: 2 << 30}, nil,
			map[string]Severity{"nvml": SeverityWarn, "gpus visible": SeverityWarn, "bwrap present": SeverityWarn, "repo disk space": SeverityWarn},
			map[string]string{"nvml": "install the NVIDIA driver", "bwrap present": "apt-get install bubblewrap", "repo disk space": "vft repo gc"}},
		{"all excluded", Config{ExcludeGPUs: []string{"0", "1"}}, twoGPUProbe(), false, Disk{TotalBytes: 500 << 30, FreeBytes: 100 << 30}, nil,
			map[string]Severity{"nvml": SeverityOK, "gpus visible": SeverityWarn},
			map[string]string{"gpus visible": "exclude_gpus"}},
		{"repo missing", DefaultConfig(), twoGPUProbe(), false, Disk{}, errors.New("statfs /nope: no such file or directory"),
			map[string]Severity{"repo disk space": SeverityFail}, map[string]string{"repo disk space": "vft init"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := newTestDetector(t, tt.cfg, tt.probe)
			if tt.noBwrap {
				d.host.lookPath = func(string) (string, error) { return "", exec.ErrNotFound }
			}
			d.host.disk = func(dir string) (Disk, error) { tt.disk.Path = dir; return tt.disk, tt.diskErr }
			got := map[string]Check{}
			for _, c := range d.Checks(context.Background(), "/repo") {
				got[c.Name] = c
				if c.OK != (c.Severity == SeverityOK) || c.Detail == "" || (!c.OK && c.Fix == "") {
					t.Errorf("inconsistent check %+v", c)
				}
			}
			for name, sev := range tt.want {
				if got[name].Severity != sev {
					t.Errorf("%s: %+v, want severity %s", name, got[name], sev)
				}
			}
			for name, fix := range tt.wantFix {
				if !strings.Contains(got[name].Fix, fix) {
					t.Errorf("%s fix %q, want it to mention %q", name, got[name].Fix, fix)
				}
			}
		})
	}
}
