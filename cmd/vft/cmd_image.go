package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/executor/oci"
)

func (c *cli) imageCmd() *cobra.Command {
	imp := &cobra.Command{
		Use:   "import PATH",
		Short: "turn an OCI layout directory or a docker/podman save tarball into an OCI layout, add it, print its CID",
		Long: `Turn an OCI image layout directory, or a docker save / podman save tarball,
into an OCI layout, add it through the daemon and print its CID: the image
of a job for executor oci (vft job submit --image CID).`,
		Example: `  docker save app:1 -o app.tar && vft image import app.tar
  vft image import ./my-oci-layout/ --json`,
	}
	asJSON := jsonFlag(imp)
	noPin := imp.Flags().Bool("no-pin", false, "do not pin the result (the next 'vft repo gc' may remove it)")
	imp.RunE = func(cmd *cobra.Command, args []string) error { return c.imageImport(args, *noPin, *asJSON) }
	return c.withRepo(groupCmd("image", "container images for executor oci: image import PATH",
		"vft image import PATH (an OCI layout directory, or a docker save / podman save tarball)", imp))
}

func (c *cli) imageImport(args []string, noPin, asJSON bool) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: vft image import PATH (an OCI layout directory, or a docker save / podman save tarball)", errUsage)
	}
	src, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("%s does not exist or cannot be read: %w", args[0], err)
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
	res, err := cl.Add(ctx, api.AddRequest{Path: dst, NoPin: noPin}, bar.Update)
	bar.Done()
	if err != nil {
		return err
	}
	if platformNote != "" {
		fmt.Fprintf(c.stderr, "note: %s\n", platformNote)
	}
	if asJSON {
		out := map[string]any{"cid": res.CID, "source": src}
		if img != nil {
			out["manifest"] = img.Digest.String()
		}
		return c.printJSON(out)
	}
	fmt.Fprintln(c.stdout, res.CID)
	return nil
}
