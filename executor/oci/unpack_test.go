package oci

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// unpackLayers builds an image from layers, opens it and unpacks it into
// base/rootfs, with base/outside next to it as the place no entry may touch.
func unpackLayers(t *testing.T, maxBytes int64, layers ...v1.Layer) (base string, err error) {
	t.Helper()
	img, err := Open(writeLayout(t, imageOf(t, "", layers...)), nil)
	if err != nil {
		t.Fatal(err)
	}
	base = t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "outside"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Unpack(context.Background(), img, filepath.Join(base, "rootfs"), maxBytes, -1)
	return base, err
}

func TestUnpackAppliesWhiteouts(t *testing.T) {
	lower := layerOf(t, dir("a"), file("a/gone", "1"), file("a/kept", "2"), dir("d"), file("d/x", "3"), file("d/y", "4"))
	upper := layerOf(t, file("a/.wh.gone", ""), file("d/.wh..wh..opq", ""), file("d/z", "5"))
	base, err := unpackLayers(t, 1<<20, lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "rootfs")
	for p, want := range map[string]bool{"a/gone": false, "a/kept": true, "d/x": false, "d/y": false, "d/z": true, "a/.wh.gone": false} {
		_, err := os.Lstat(filepath.Join(root, p))
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", p, got, want)
		}
	}
	for _, mp := range mountPoints {
		if st, err := os.Lstat(filepath.Join(root, mp)); err != nil || !st.IsDir() {
			t.Errorf("mount point /%s missing: %v", mp, err)
		}
	}
}

// Debian's root file systems have sticky, world-writable directories
// (/tmp, /run/lock: mode 1777); they used to fail the whole image with
// "mkdirat run/lock: unsupported file mode" (os.Root.Mkdir takes only
// permission bits). They unpack, sticky bit kept.
func TestUnpackStickyDirectories(t *testing.T) {
	sticky := func(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o1777} }
	base, err := unpackLayers(t, 1<<20, layerOf(t, sticky("tmp"), dir("run"), sticky("run/lock"), file("run/lock/x", "1")))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"tmp", "run/lock"} {
		st, err := os.Lstat(filepath.Join(base, "rootfs", p))
		if err != nil || !st.IsDir() || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
			t.Errorf("%s: %v %v, want a directory with mode 1777", p, st.Mode(), err)
		}
	}
}

func TestUnpackRefusesHostileLayers(t *testing.T) {
	cases := []struct {
		name    string
		entries []entry
		want    error  // nil: neutralised, checked by check
		mention string // in the error
		check   func(t *testing.T, base string)
	}{
		{name: "absolute symlink then a hard link through it",
			entries: []entry{symlink("evil", "/etc"), {name: "x", link: "evil/passwd", typ: tar.TypeLink, mode: 0o644}},
			want:    ErrHostileLayer, mention: "leaves the rootfs"},
		{name: "absolute symlink then a file under it",
			entries: []entry{symlink("evil", "/etc"), file("evil/owned", "x")},
			check: func(t *testing.T, base string) {
				// go-containerregistry drops the file (the link shadows it); the
				// link stays, resolved inside the container's root at run time.
				if _, err := os.Lstat("/etc/owned"); err == nil {
					t.Fatal("a layer wrote /etc/owned on the host")
				}
			}},
		{name: "relative symlink leaving the rootfs then a write through it",
			entries: []entry{symlink("esc", "../outside"), file("esc/owned", "x")},
			check: func(t *testing.T, base string) {
				// go-containerregistry drops the escaping link; the file lands in a
				// plain directory inside the rootfs.
				if _, err := os.Lstat(filepath.Join(base, "outside", "owned")); err == nil {
					t.Fatal("a layer wrote outside the rootfs")
				}
				if st, err := os.Lstat(filepath.Join(base, "rootfs", "esc")); err != nil || !st.IsDir() {
					t.Fatalf("esc should be a plain directory: %v", err)
				}
			}},
		{name: "hard link to /etc/passwd",
			entries: []entry{{name: "passwd", link: "/etc/passwd", typ: tar.TypeLink, mode: 0o644}},
			want:    ErrHostileLayer, mention: "/etc/passwd"},
		{name: "dot-dot name",
			entries: []entry{file("../outside/owned", "x")},
			want:    ErrHostileLayer, mention: "outside/owned"},
		{name: "device node",
			entries: []entry{{name: "null", typ: tar.TypeChar, mode: 0o666}},
			want:    ErrHostileLayer, mention: "device"},
		{name: "fifo",
			entries: []entry{{name: "pipe", typ: tar.TypeFifo, mode: 0o666}},
			want:    ErrHostileLayer, mention: "FIFO"},
		{name: "setuid and setgid bits",
			entries: []entry{{name: "su", typ: tar.TypeReg, mode: 0o6755, body: []byte("#!/bin/sh")}},
			check: func(t *testing.T, base string) {
				st, err := os.Stat(filepath.Join(base, "rootfs", "su"))
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || st.Mode().Perm() != 0o755 {
					t.Fatalf("mode %v, want -rwxr-xr-x", st.Mode())
				}
			}},
		{name: "mount point made a link",
			entries: []entry{symlink("output", "/etc"), symlink("proc", "../outside")},
			check: func(t *testing.T, base string) {
				for _, mp := range []string{"output", "proc"} {
					if st, err := os.Lstat(filepath.Join(base, "rootfs", mp)); err != nil || !st.IsDir() {
						t.Errorf("/%s is not a plain directory: %v", mp, err)
					}
				}
			}},
		{name: "huge declared size",
			entries: []entry{{name: "big", typ: tar.TypeReg, mode: 0o644, size: 1 << 40}},
			want:    ErrTooLarge, mention: "big"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base, err := unpackLayers(t, 1<<20, layerOf(t, tc.entries...))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Unpack: %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %q does not mention %q", err, tc.mention)
			}
			if entries, _ := os.ReadDir(filepath.Join(base, "outside")); len(entries) > 0 {
				t.Fatalf("a layer wrote outside the rootfs: %v", entries)
			}
			if tc.check != nil {
				tc.check(t, base)
			}
		})
	}
}

func TestUnpackRefusesLayersOverTheLimit(t *testing.T) {
	big := layerOf(t, file("a", strings.Repeat("x", 64<<10)))
	_, err := unpackLayers(t, 16<<10, big)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Unpack: %v, want ErrTooLarge", err)
	}
}
