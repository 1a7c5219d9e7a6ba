package executor

import "strings"

// What a failed process's stderr says, for the executors that run
// processes (native, oci): the reason a user reads instead of a bare
// exit code.

// SaysNoSpace tells whether the task died of a full file system: its
// /tmp, or the disk under /output.
func SaysNoSpace(stderr []byte) bool {
	return strings.Contains(strings.ToLower(string(stderr)), "no space left on device")
}

// SaysOutOfMemory tells whether the task reported running out of memory
// (C, Python, C++ and Go runtimes' words for it).
func SaysOutOfMemory(stderr []byte) bool {
	s := strings.ToLower(string(stderr))
	for _, sign := range []string{"out of memory", "cannot allocate memory", "memoryerror", "bad_alloc"} {
		if strings.Contains(s, sign) {
			return true
		}
	}
	return false
}

// LastLine returns ": <last non-empty line of stderr>", or "".
func LastLine(stderr []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return ": " + last
	}
	return ""
}
