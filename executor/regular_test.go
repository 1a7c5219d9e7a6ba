package executor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadRegularFile feeds the reader what a hostile peer can publish as a
// module or input: a symbolic link to /dev/zero (its stat size is 0 and a
// plain read never ends), the device itself, a FIFO (a plain open blocks),
// and a file over the limit. Each must be refused at once, naming the file.
func TestReadRegularFile(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	toPlain := filepath.Join(dir, "to-plain")
	if err := os.Symlink(plain, toPlain); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		limit   int64
		wantErr string // "" for success
	}{
		{"plain file", plain, 5, ""},
		{"symlink to /dev/zero", zero, 1 << 20, "symbolic link"},
		{"symlink to a plain file", toPlain, 1 << 20, "symbolic link"},
		{"/dev/zero itself", "/dev/zero", 1 << 20, "device"},
		{"fifo", fifo, 1 << 20, "FIFO"},
		{"over the limit", plain, 4, "over the 4-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type result struct {
				b   []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				b, err := ReadRegularFile(tt.path, tt.limit)
				done <- result{b, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(20 * time.Second):
				// The old reader followed the link and read /dev/zero
				// without end (or blocked on the FIFO).
				t.Fatalf("ReadRegularFile(%s) did not return", tt.path)
			}
			if tt.wantErr == "" {
				if r.err != nil || string(r.b) != "12345" {
					t.Fatalf("ReadRegularFile = %q, %v", r.b, r.err)
				}
				return
			}
			if !errors.Is(r.err, ErrBadTask) || !strings.Contains(r.err.Error(), tt.wantErr) || !strings.Contains(r.err.Error(), tt.path) {
				t.Fatalf("ReadRegularFile = %v, want ErrBadTask naming %s and %q", r.err, tt.path, tt.wantErr)
			}
		})
	}
}

// TestReadRegularFileLongerThanItsSize reads files whose stat size is not
// their length, as a file that grows between the stat and the read is:
// /proc's files say 0 bytes. The buffer is sized by the stat, so the read
// must go on past it, and still stop at the limit.
func TestReadRegularFileLongerThanItsSize(t *testing.T) {
	want, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat("/proc/self/limits"); err != nil || st.Size() != 0 || len(want) < 100 {
		t.Fatalf("/proc/self/limits: size %v, %d bytes, %v: not the file this test needs", st.Size(), len(want), err)
	}
	got, err := ReadRegularFile("/proc/self/limits", 1<<20)
	if err != nil || string(got) != string(want) {
		t.Fatalf("ReadRegularFile = %d bytes, %v; want the %d bytes os.ReadFile read", len(got), err, len(want))
	}
	if _, err := ReadRegularFile("/proc/self/limits", 64); !errors.Is(err, ErrBadTask) || !strings.Contains(err.Error(), "over the 64-byte limit") {
		t.Fatalf("ReadRegularFile with a 64-byte limit = %v, want ErrBadTask over the limit", err)
	}
}
