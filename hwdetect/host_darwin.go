package hwdetect

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func cpuModel() (string, error) {
	m, err := unix.Sysctl("machdep.cpu.brand_string")
	if err != nil {
		return "", fmt.Errorf("sysctl machdep.cpu.brand_string: %w", err)
	}
	return m, nil
}

// detectMemory knows only the total on macOS: "available" needs Mach VM
// statistics, which x/sys does not wrap, so it is reported as 0.
func detectMemory() (Memory, error) {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return Memory{}, fmt.Errorf("sysctl hw.memsize: %w", err)
	}
	return Memory{TotalBytes: n}, nil
}
