package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

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
	ls := &cobra.Command{
		Use:   "ls",
		Short: "list the container images this node holds: CID, platforms, size, import time",
		Long: `List the pinned CIDs that are OCI image layouts (an oci-layout and an
index.json at their root): each image's CID, size (its distinct blobs,
compressed), when ` + "`vft image import`" + ` added it (- for one pinned otherwise),
and each manifest's platform and digest.`,
		Example: "  vft image ls\n  vft image ls --json",
	}
	lsJSON := jsonFlag(ls)
	ls.RunE = c.daemonRun(func(ctx context.Context, cl *api.Client, _ []string) error {
		images, err := cl.Images(ctx)
		if err != nil {
			return err
		}
		if *lsJSON {
			if images == nil {
				images = []api.Image{}
			}
			return c.printJSON(images)
		}
		c.printImages(images)
		return nil
	})
	return c.withRepo(groupCmd("image", "container images for executor oci: image import PATH | image ls",
		"vft image import PATH (an OCI layout directory, or a docker save / podman save tarball) | vft image ls", imp, ls))
}

// printImages writes one line per image and one indented line per
// manifest under it.
func (c *cli) printImages(images []api.Image) {
	if len(images) == 0 {
		fmt.Fprintln(c.stderr, "no images: import one with `vft image import PATH`")
		return
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CID\tSIZE\tIMPORTED\tPLATFORM\tMANIFEST")
	for _, img := range images {
		imported := "-"
		if img.ImportedAt != nil {
			imported = img.ImportedAt.Local().Format("2006-01-02 15:04")
		}
		if len(img.Manifests) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\n", img.CID, humanBytes(img.Size), imported)
		}
		for i, m := range img.Manifests {
			platform := m.Platform
			if platform == "" {
				platform = "?"
			}
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.CID, humanBytes(img.Size), imported, platform, m.Digest)
			} else {
				fmt.Fprintf(tw, "\t\t\t%s\t%s\n", platform, m.Digest)
			}
		}
		if img.Error != "" {
			fmt.Fprintf(tw, "\t\t\terror: %s\t\n", img.Error)
		}
	}
	tw.Flush()
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
	res, err := cl.Add(ctx, api.AddRequest{Path: dst, NoPin: noPin, Image: true}, bar.Update)
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
