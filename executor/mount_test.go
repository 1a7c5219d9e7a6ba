package executor

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCheckMounts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.bin")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	linked := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(linked, "passwd")); err != nil {
		t.Fatal(err)
	}
	fifo := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(fifo, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mounts []Mount
		ok     bool
	}{
		{"dir at root", []Mount{{Host: dir}}, true},
		{"file and dir", []Mount{{Host: dir, Guest: "data"}, {Host: file, Guest: "a.bin"}}, true},
		{"dotdot", []Mount{{Host: dir, Guest: "../etc"}}, false},
		{"inner dotdot", []Mount{{Host: dir, Guest: "a/../../b"}}, false},
		{"absolute", []Mount{{Host: dir, Guest: "/etc"}}, false},
		{"file at root", []Mount{{Host: file}}, false},
		{"missing host", []Mount{{Host: filepath.Join(dir, "nope"), Guest: "x"}}, false},
		{"duplicate", []Mount{{Host: dir, Guest: "x"}, {Host: file, Guest: "x/"}}, false},
		{"symlink inside", []Mount{{Host: linked}}, false},
		{"fifo inside", []Mount{{Host: fifo}}, false},
		{"fifo as a file", []Mount{{Host: filepath.Join(fifo, "pipe"), Guest: "p"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckMounts(tt.mounts)
			if tt.ok && err != nil {
				t.Fatalf("CheckMounts: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrBadMount) {
				t.Fatalf("CheckMounts = %v, want ErrBadMount", err)
			}
		})
	}
}

func TestPrepareOutputDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "out")
	if _, err := PrepareOutputDir(dir); err != nil {
		t.Fatalf("fresh dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "left"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := PrepareOutputDir(dir); !errors.Is(err, ErrBadMount) {
		t.Fatalf("non-empty dir: %v, want ErrBadMount", err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		"/plain":              "/plain",
		`/with\040space`:      "/with space",
		`/tab\011and\134back`: "/tab\tand\\back",
		`/end\040`:            "/end ",
		`/short\04`:           `/short\04`,
	} {
		if got := UnescapeMountinfo(in); got != want {
			t.Errorf("UnescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
