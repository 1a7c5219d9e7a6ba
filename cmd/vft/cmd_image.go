package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/executor/oci"
)

func runImage(c *cli, args []string) error {
	if len(args) == 0 || args[0] != "import" {
		return fmt.Errorf("%w: vft image import PATH (an OCI layout directory, or a docker save / podman save tarball)", errUsage)
	}
	fs, asJSON := c.flags("image import")
	noPin := fs.Bool("no-pin", false, "do not pin the result (the next `vft repo gc` may remove it)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: vft image import PATH (an OCI layout directory, or a docker save / podman save tarball)", errUsage)
	}
	src, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("%s does not exist or cannot be read: %w", fs.Arg(0), err)
	}
	r, err := c.openRepo()
	if err != nil {
		return err
	}
	cl, err := c.client(r)
	if err != nil {
		return err
	}
	// The layout is written inside the repo, where the daemon (which reads
	// the path) surely can read it, unlike a private /tmp.
	tmpRoot := r.Path("tmp")
	if err := os.MkdirAll(tmpRoot, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(tmpRoot, "image-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, "layout")
	ctx, cancel := interruptible()
	defer cancel()
	bar := newProgressBar(c.stderr, "converting")
	err = oci.ImportLayout(ctx, src, dst, bar.Update)
	bar.Done()
	if err != nil {
		return err
	}
	img, err := oci.Open(dst, nil)
	platformNote := ""
	switch {
	case errors.Is(err, oci.ErrPlatform):
		// Still worth adding: another platform's miners can run it.
		platformNote = err.Error()
	case err != nil:
		return err
	}
	bar = newProgressBar(c.stderr, "adding")
	res, err := cl.Add(ctx, api.AddRequest{Path: dst, NoPin: *noPin}, bar.Update)
	bar.Done()
	if err != nil {
		return err
	}
	if platformNote != "" {
		fmt.Fprintf(c.stderr, "note: %s\n", platformNote)
	}
	if *asJSON {
		out := map[string]any{"cid": res.CID, "source": src}
		if img != nil {
			out["manifest"] = img.Digest.String()
		}
		return c.printJSON(out)
	}
	fmt.Fprintln(c.stdout, res.CID)
	return nil
}
