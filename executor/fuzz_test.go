package executor

import (
	"errors"
	"path"
	"strings"
	"testing"
)

// FuzzCleanGuestPath checks that no guest path a job spec can name lands
// outside /input once accepted.
func FuzzCleanGuestPath(f *testing.F) {
	for _, s := range []string{"", ".", "data", "a/b.bin", "../etc", "a/../../b", "/etc", `a\b`, "a//b/./c", "...", "a/..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		clean, err := CleanGuestPath(p)
		if err != nil {
			if !errors.Is(err, ErrBadMount) {
				t.Fatalf("CleanGuestPath(%q) = %v, not ErrBadMount", p, err)
			}
			return
		}
		joined := path.Join("/input", clean)
		if joined != "/input" && !strings.HasPrefix(joined, "/input/") {
			t.Fatalf("CleanGuestPath(%q) = %q, which is %s: outside /input", p, clean, joined)
		}
		if again, err := CleanGuestPath(clean); err != nil || again != clean {
			t.Fatalf("CleanGuestPath(%q) = %q, not stable (%q, %v)", p, clean, again, err)
		}
	})
}

// FuzzCheckArgsEnv checks that whatever passes CheckArgsEnv can be handed to
// execve: no NUL bytes, and names without '='.
func FuzzCheckArgsEnv(f *testing.F) {
	f.Add("train.py", "--epochs=3", "CUDA_VISIBLE_DEVICES", "0")
	f.Add("a\x00b", "", "A=B", "c")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, a1, a2, k, v string) {
		err := CheckArgsEnv([]string{a1, a2}, map[string]string{k: v})
		bad := strings.ContainsRune(a1+a2+k+v, 0) || k == "" || strings.Contains(k, "=")
		if bad != (err != nil) {
			t.Fatalf("CheckArgsEnv(%q, %q, %q=%q) = %v", a1, a2, k, v, err)
		}
		if err != nil && !errors.Is(err, ErrBadTask) {
			t.Fatalf("error %v is not ErrBadTask", err)
		}
	})
}
