//go:build !linux && !darwin

package hwdetect

import (
	"fmt"
	"runtime"
)

func cpuModel() (string, error) {
	return "", fmt.Errorf("not implemented on %s", runtime.GOOS)
}

func detectMemory() (Memory, error) {
	return Memory{}, fmt.Errorf("memory size: not implemented on %s (declare it in [hardware.override] memory_bytes)", runtime.GOOS)
}
