package oci

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

var (
	// ErrTooLarge: the image unpacks to more than the rootfs cache holds.
	ErrTooLarge = errors.New("image too large")
	// ErrHostileLayer: a layer holds an entry that could touch the host or
	// raise privileges (a link leaving the rootfs, a device node, ...).
	ErrHostileLayer = errors.New("image layer refused")
)

// entryCost is what each file, directory or link counts besides its
// content against the size bound: millions of empty files fill inodes.
const entryCost = 512

// mountPoints exist as plain directories in every rootfs, so that the
// runtime mounts onto them without creating anything in the shared,
// cached rootfs, and an image cannot make one a symbolic link.
var mountPoints = []string{"proc", "dev", "sys", "tmp", "input", "output"}

// Unpack flattens the image's layers (whiteouts and opaque directories
// applied by go-containerregistry's mutate.Extract) into dst, which must not
// exist. Every write goes through an os.Root, so no entry, whatever links
// earlier entries made, lands outside dst. Device nodes and FIFOs are
// refused, setuid/setgid bits dropped, and the entries' declared sizes are
// summed before each write: past maxBytes the unpack stops with ErrTooLarge.
// Every entry is owned by owner (uid and gid), the host id of the
// container's root, or by the daemon's user when owner is -1. It returns
// the bytes the rootfs holds (content plus entryCost per entry).
func Unpack(ctx context.Context, img *Image, dst string, maxBytes int64, owner int) (int64, error) {
	if img.LayersSize > maxBytes {
		return 0, fmt.Errorf("%w: image %s has %d MiB of compressed layers, over the %d MiB rootfs cache (raise executor.oci.cache_bytes)",
			ErrTooLarge, img.Digest, img.LayersSize>>20, maxBytes>>20)
	}
	if err := img.VerifyLayers(); err != nil {
		return 0, err
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return 0, fmt.Errorf("unpack: %w", err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return 0, fmt.Errorf("unpack: %w", err)
	}
	defer root.Close()
	rc := mutate.Extract(img.Image)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var total int64
	var later []*tar.Header // hard links whose target comes later
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// mutate.Extract writes the end-of-archive blocks before it
			// reports its error (an unsafe name, a bad layer) through
			// the pipe: read past them to get it.
			_, err = io.Copy(io.Discard, rc)
			if err == nil {
				break
			}
		}
		if err != nil {
			if strings.Contains(err.Error(), "unsafe tar path") {
				return total, fmt.Errorf("%w: image %s: %v (a name with \"..\" would write outside the rootfs)", ErrHostileLayer, img.Digest, err)
			}
			return total, fmt.Errorf("unpack image %s: %w", img.Digest, err)
		}
		total += entryCost
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			total += max(h.Size, 0)
		}
		if total > maxBytes {
			return total, fmt.Errorf("%w: image %s unpacks to more than the %d MiB rootfs cache (at %q); raise executor.oci.cache_bytes or use a smaller image",
				ErrTooLarge, img.Digest, maxBytes>>20, h.Name)
		}
		if err := writeEntry(root, tr, h); err != nil {
			// mutate.Extract emits upper layers first: a hard link to a
			// file of a lower layer comes before its target.
			if h.Typeflag == tar.TypeLink && errors.Is(err, fs.ErrNotExist) {
				later = append(later, h)
				continue
			}
			return total, fmt.Errorf("image %s: %w", img.Digest, err)
		}
	}
	for _, h := range later {
		err := writeEntry(root, nil, h)
		if errors.Is(err, fs.ErrNotExist) {
			return total, fmt.Errorf("%w: image %s: hard link %s points at %s, which the image does not hold", ErrHostileLayer, img.Digest, h.Name, h.Linkname)
		}
		if err != nil {
			return total, fmt.Errorf("image %s: %w", img.Digest, err)
		}
	}
	for _, mp := range mountPoints {
		if st, err := root.Lstat(mp); err == nil && !st.IsDir() {
			if err := root.Remove(mp); err != nil {
				return total, fmt.Errorf("unpack: replace /%s with a directory: %w", mp, err)
			}
		}
		if err := root.Mkdir(mp, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return total, fmt.Errorf("unpack: mount point /%s: %w", mp, err)
		}
	}
	if owner >= 0 {
		// Every entry, the directories MkdirAll made for entries whose
		// parents the layers do not list included; links themselves, not
		// what they point at.
		err := fs.WalkDir(root.FS(), ".", func(name string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return root.Lchown(name, owner, owner)
		})
		if err != nil {
			return total, fmt.Errorf("unpack: give the rootfs to the container's root (host id %d): %w", owner, err)
		}
	}
	return total, nil
}

// writeEntry writes one entry of the flattened image under root.
func writeEntry(root *os.Root, tr io.Reader, h *tar.Header) error {
	name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
	if name == "" {
		return nil // the root directory itself
	}
	mode := h.FileInfo().Mode()
	perm := mode.Perm() | mode&fs.ModeSticky // setuid and setgid dropped
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return escapeErr(name, err)
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if st, err := root.Lstat(name); err == nil && !st.IsDir() {
			return nil // an upper layer's file or link
		}
		// os.Root.Mkdir takes permission bits only; the sticky bit (/tmp,
		// /run/lock: 1777) comes with the Chmod.
		if err := root.Mkdir(name, perm.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return escapeErr(name, err)
		}
		return escapeErr(name, root.Chmod(name, perm))
	case tar.TypeReg, tar.TypeRegA:
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if upperWins(err) {
			return nil
		}
		if err != nil {
			return escapeErr(name, err)
		}
		_, err = io.CopyN(f, tr, h.Size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return escapeErr(name, root.Chmod(name, perm)) // not narrowed by the umask
	case tar.TypeSymlink:
		// The target is resolved inside the container, whose root is the
		// rootfs; writes of later entries through it go through root,
		// which refuses any that would leave it.
		if err := root.Symlink(h.Linkname, name); !upperWins(err) {
			return escapeErr(name, err)
		}
		return nil
	case tar.TypeLink:
		target := path.Clean(h.Linkname)
		if path.IsAbs(target) {
			return fmt.Errorf("%w: hard link %s points at %s, outside the image", ErrHostileLayer, name, h.Linkname)
		}
		err := root.Link(target, name)
		if errors.Is(err, fs.ErrNotExist) {
			return err // the target may come later
		}
		if upperWins(err) {
			return nil
		}
		return escapeErr(name, err)
	case tar.TypeChar, tar.TypeBlock:
		return fmt.Errorf("%w: %s is a device node; images may not carry devices (the runtime provides /dev)", ErrHostileLayer, name)
	case tar.TypeFifo:
		return fmt.Errorf("%w: %s is a FIFO; images may not carry FIFOs", ErrHostileLayer, name)
	default:
		return fmt.Errorf("%w: %s has tar entry type %q, which images may not carry", ErrHostileLayer, name, h.Typeflag)
	}
}

// upperWins tells whether an entry could not be written because an entry
// of an upper layer is already there: mutate.Extract emits upper layers
// first and drops same-name entries, but a lower layer's link or file where
// an upper layer put a directory still comes (overlayfs shows the upper one).
func upperWins(err error) bool {
	return errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.EISDIR)
}

// escapeErr names an os.Root refusal (a path resolved through a link that
// leaves the rootfs) as a hostile layer.
func escapeErr(name string, err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("%w: writing %s would go through a link that leaves the rootfs", ErrHostileLayer, name)
	}
	return fmt.Errorf("write %s: %w", name, err)
}
