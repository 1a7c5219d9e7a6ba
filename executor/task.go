package executor

import (
	"fmt"
	"strings"
)

// CheckArgsEnv refuses arguments and environment variables that no
// operating system can pass on: a NUL byte anywhere, or a variable name that
// is empty or holds '='. They come from a job spec another peer wrote; left
// to the sandbox, they would fail it with a message that blames the host
// ("start bwrap: invalid argument") or set a different variable than the
// one named.
func CheckArgsEnv(args []string, env map[string]string) error {
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%w: argument %d contains a NUL byte", ErrBadTask, i+1)
		}
	}
	for k, v := range env {
		switch {
		case k == "":
			return fmt.Errorf("%w: an environment variable has an empty name", ErrBadTask)
		case strings.ContainsAny(k, "=\x00"):
			return fmt.Errorf("%w: environment variable name %q contains '=' or a NUL byte", ErrBadTask, k)
		case strings.IndexByte(v, 0) >= 0:
			return fmt.Errorf("%w: environment variable %s contains a NUL byte", ErrBadTask, k)
		}
	}
	return nil
}
