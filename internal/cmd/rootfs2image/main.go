// Command rootfs2image turns a root file system tarball (what mmdebstrap or
// debootstrap writes) into a one-layer image saved as a docker-archive
// tarball, the format `docker save` writes and `vft image import` and
// `skopeo copy docker-archive:` read. scripts/build-torch-image.sh uses it
// for the PyTorch example's image; go-containerregistry does the layout.
//
//	go run ./internal/cmd/rootfs2image -rootfs rootfs.tar -o image.tar -tag vft.example/app:1 -env PATH=/usr/bin:/bin -cmd python3
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], log); err != nil {
		fmt.Fprintln(os.Stderr, "rootfs2image:", err)
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("rootfs2image", flag.ContinueOnError)
	rootfs := fs.String("rootfs", "", "root file system tarball (uncompressed or gzip)")
	out := fs.String("o", "", "docker-archive tarball to write")
	tag := fs.String("tag", "vft.example/image:1", "the name the archive records for the image")
	arch := fs.String("arch", runtime.GOARCH, "the image's architecture (the rootfs's)")
	workdir := fs.String("workdir", "", "the image's working directory")
	var env, cmd listFlag
	fs.Var(&env, "env", "KEY=VALUE of the image's environment (repeatable)")
	fs.Var(&cmd, "cmd", "one word of the image's default command (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rootfs == "" || *out == "" {
		return errors.New("-rootfs and -o are required")
	}
	for _, kv := range env {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("-env %q is not KEY=VALUE", kv)
		}
	}
	ref, err := name.NewTag(*tag)
	if err != nil {
		return fmt.Errorf("-tag %q: %w", *tag, err)
	}
	start := time.Now()
	// LayerFromFile gzips the tarball as the layer (unless it already is
	// gzip) and computes both digests; the compressed bytes are kept in
	// memory so the archive is not compressed a second time.
	layer, err := tarball.LayerFromFile(*rootfs, tarball.WithCompressedCaching)
	if err != nil {
		return fmt.Errorf("read %s: %w", *rootfs, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", *arch
	cfg.Config = v1.Config{Env: env, Cmd: cmd, WorkingDir: *workdir}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	if err := tarball.WriteToFile(*out, ref, img); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	digest, _ := img.Digest()
	st, _ := os.Stat(*out)
	log.Info("image written", "archive", *out, "bytes", st.Size(), "manifest", digest.String(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
