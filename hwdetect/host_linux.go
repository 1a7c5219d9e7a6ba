package hwdetect

import (
	"fmt"
	"os"
)

func cpuModel() (string, error) {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "", fmt.Errorf("read cpu model: %w", err)
	}
	return cpuInfoModel(data), nil
}

func detectMemory() (Memory, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return Memory{}, fmt.Errorf("read memory size: %w", err)
	}
	return parseMeminfo(data)
}
