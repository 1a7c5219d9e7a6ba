package hwdetect

import (
	"strings"
	"testing"
)

func TestCPUInfoModel(t *testing.T) {
	tests := []struct {
		name, cpuinfo, want string
	}{
		{"x86", "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu avx2\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n", "AMD EPYC 7B13"},
		{"raspberry pi", "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n", "Raspberry Pi 4 Model B Rev 1.4"},
		{"arm board", "Processor\t: ARMv7 Processor rev 4 (v7l)\nHardware\t: Allwinner sun8i\n", "Allwinner sun8i"},
		{"arm server, no model", "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpuInfoModel([]byte(tt.cpuinfo)); got != tt.want {
				t.Errorf("model = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name        string
		meminfo     string
		total, free uint64
		wantErr     string
	}{
		{"modern", "MemTotal:       16303428 kB\nMemFree:         1000000 kB\nMemAvailable:   12000000 kB\nBuffers:  10 kB\n", 16303428 * 1024, 12000000 * 1024, ""},
		{"old kernel", "MemTotal: 2000 kB\nMemFree: 500 kB\nBuffers: 100 kB\nCached: 400 kB\n", 2000 * 1024, 1000 * 1024, ""},
		{"no total", "MemFree: 500 kB\n", 0, 0, "no MemTotal"},
		{"garbage", "MemTotal: lots kB\n", 0, 0, "MemTotal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMeminfo([]byte(tt.meminfo))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || m.TotalBytes != tt.total || m.AvailableBytes != tt.free {
				t.Errorf("got %+v, %v; want total %d available %d", m, err, tt.total, tt.free)
			}
		})
	}
}
