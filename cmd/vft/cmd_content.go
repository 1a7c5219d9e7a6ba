package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/internal/units"
)

// getLimits are the flags bounding what `vft get` and `vft job result`
// write: a DAG of a few blocks can declare a terabyte or millions of files.
type getLimits struct {
	maxBytes   units.Bytes
	maxEntries int64
}

func addGetLimits(fs *pflag.FlagSet) *getLimits {
	var l getLimits
	fs.TextVar(&l.maxBytes, "max-bytes", units.Bytes(0),
		"refuse content holding more file bytes than `SIZE`, e.g. 200GiB (default: the free space at the output less 1 GiB)")
	fs.Lookup("max-bytes").DefValue = "" // 0 means the free space, said above
	fs.Int64Var(&l.maxEntries, "max-entries", 0, "refuse content of more files and directories than this (default 1048576)")
	return &l
}

func (l *getLimits) request(cid, output string) (api.GetRequest, error) {
	if l.maxEntries < 0 {
		return api.GetRequest{}, fmt.Errorf("%w: --max-entries %d is negative", errUsage, l.maxEntries)
	}
	return api.GetRequest{CID: cid, Output: output, MaxBytes: int64(l.maxBytes), MaxEntries: l.maxEntries}, nil
}

// interruptible returns a context cancelled by Ctrl-C, so an interrupted
// transfer stops cleanly and the next run resumes from the blocks on disk.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func (c *cli) addCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add PATH",
		Short: "import a file or directory as IPFS content, print its CID",
		Long: `Import a file or directory as IPFS content (kubo-compatible CIDs) through
the running daemon, pin it, and print its CID. Files and directories whose
names start with a dot are skipped unless --hidden is given.`,
		Example: `  vft add ./dataset/
  vft add weights.pt --json
  vft add --hidden ./project`,
	}
	asJSON := jsonFlag(cmd)
	noPin := cmd.Flags().Bool("no-pin", false, "do not pin the result (the next 'vft repo gc' may remove it)")
	hidden := cmd.Flags().Bool("hidden", false, "include files and directories whose names start with a dot (skipped by default, as 'ipfs add' does)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%w: vft add PATH (a file or a directory)", errUsage)
		}
		path, err := filepath.Abs(args[0])
		if err != nil {
			return err
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s does not exist or cannot be read: %w", args[0], err)
		}
		cl, err := c.daemon()
		if err != nil {
			return err
		}
		ctx, cancel := interruptible()
		defer cancel()
		bar := newProgressBar(c.stderr, "adding")
		res, err := cl.Add(ctx, api.AddRequest{Path: path, NoPin: *noPin, Hidden: *hidden}, bar.Update)
		bar.Done()
		if err != nil {
			return err
		}
		if res.HiddenSkipped > 0 {
			// On stderr, so that scripts reading the CID still get one line.
			entries := "entries"
			if res.HiddenSkipped == 1 {
				entries = "entry"
			}
			fmt.Fprintf(c.stderr, "skipped %d hidden %s (files or directories whose names start with \".\"); to include them: vft add --hidden %s\n",
				res.HiddenSkipped, entries, args[0])
		}
		if *asJSON {
			return c.printJSON(map[string]any{"cid": res.CID, "path": path, "hidden_skipped": res.HiddenSkipped})
		}
		fmt.Fprintln(c.stdout, res.CID)
		return nil
	}
	return c.withRepo(cmd)
}

func (c *cli) getCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get CID [-o PATH]",
		Short: "fetch content from the network and write it out",
		Long: `Fetch content from any node that has it (bitswap and the DHT) through the
running daemon, and write the file or directory out. An interrupted get
resumes: the blocks already fetched stay in the repo.`,
		Example: `  vft get bafy... -o ./out
  vft get bafy... --max-bytes 200GiB --json`,
	}
	asJSON := jsonFlag(cmd)
	output := outputFlag(cmd, "where to write the file or directory (default ./CID)")
	limits := addGetLimits(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%w: vft get CID [-o PATH]", errUsage)
		}
		id := args[0]
		out := *output
		if out == "" {
			out = id
		}
		out, err := filepath.Abs(out)
		if err != nil {
			return err
		}
		cl, err := c.daemon()
		if err != nil {
			return err
		}
		ctx, cancel := interruptible()
		defer cancel()
		bar := newProgressBar(c.stderr, "fetching")
		start := time.Now()
		req, err := limits.request(id, out)
		if err != nil {
			return err
		}
		res, err := cl.Get(ctx, req, bar.Update)
		bar.Done()
		if err != nil {
			return err
		}
		if *asJSON {
			return c.printJSON(res)
		}
		fmt.Fprintf(c.stdout, "%s → %s (%s in %d blocks, %d fetched, %s)\n", res.CID, res.Output,
			humanBytes(res.Bytes), res.Blocks, res.Fetched, time.Since(start).Round(time.Millisecond))
		return nil
	}
	return c.withRepo(cmd)
}

// daemonRun is the body of a command that talks to the running daemon,
// with a context that Ctrl-C cancels.
func (c *cli) daemonRun(run func(ctx context.Context, cl *api.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		cl, err := c.daemon()
		if err != nil {
			return err
		}
		ctx, cancel := interruptible()
		defer cancel()
		return run(ctx, cl, args)
	}
}

func (c *cli) pinCmd() *cobra.Command {
	pinOrUnpin := func(verb string) *cobra.Command {
		sub := "add"
		short := "fetch what is missing of CID and keep it from garbage collection"
		if verb == "unpinned" {
			sub, short = "rm", "let garbage collection remove CID's blocks"
		}
		cmd := &cobra.Command{
			Use:     sub + " CID",
			Short:   short,
			Example: fmt.Sprintf("  vft pin %s bafy...", sub),
		}
		asJSON := jsonFlag(cmd)
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%w: vft pin %s CID", errUsage, sub)
			}
			return c.daemonRun(func(ctx context.Context, cl *api.Client, args []string) error {
				if sub == "add" {
					// Pinning fetches what is missing: as long as a get, with
					// the same progress line.
					bar := newProgressBar(c.stderr, "fetching")
					err := cl.Pin(ctx, args[0], bar.Update)
					bar.Done()
					if err != nil {
						return err
					}
				} else if err := cl.Unpin(ctx, args[0]); err != nil {
					return err
				}
				if *asJSON {
					return c.printJSON(map[string]string{"cid": args[0], "status": verb})
				}
				fmt.Fprintf(c.stdout, "%s %s\n", verb, args[0])
				return nil
			})(cmd, args)
		}
		return cmd
	}
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "list the pinned CIDs",
		Example: "  vft pin ls\n  vft pin ls --json",
	}
	lsJSON := jsonFlag(ls)
	ls.RunE = c.daemonRun(func(ctx context.Context, cl *api.Client, _ []string) error {
		pins, err := cl.Pins(ctx)
		if err != nil {
			return err
		}
		if *lsJSON {
			return c.printJSON(pins)
		}
		for _, p := range pins {
			fmt.Fprintln(c.stdout, p)
		}
		return nil
	})
	return c.withRepo(groupCmd("pin", "keep content from garbage collection: pin add CID | pin rm CID | pin ls",
		"vft pin add CID | pin rm CID | pin ls", pinOrUnpin("pinned"), pinOrUnpin("unpinned"), ls))
}

func (c *cli) repoCmd() *cobra.Command {
	stat := &cobra.Command{
		Use:     "stat",
		Short:   "content store size, pins, quota and corrupt blocks found",
		Example: "  vft repo stat\n  vft repo stat --json",
	}
	statJSON := jsonFlag(stat)
	stat.RunE = c.daemonRun(func(ctx context.Context, cl *api.Client, _ []string) error {
		st, err := cl.RepoStat(ctx)
		if err != nil {
			return err
		}
		if *statJSON {
			return c.printJSON(st)
		}
		quota := "none"
		if st.MaxBytes > 0 {
			quota = humanBytes(st.MaxBytes)
		}
		fmt.Fprintf(c.stdout, "blocks   %d\nsize     %s\npins     %d\nquota    %s\ncorrupt  %d blocks found and removed since start\n",
			st.Blocks, humanBytes(st.Bytes), st.Pins, quota, st.CorruptBlocks)
		return nil
	})
	gc := &cobra.Command{
		Use:     "gc",
		Short:   "remove the blocks that no pin keeps",
		Example: "  vft repo gc",
	}
	gcJSON := jsonFlag(gc)
	gc.RunE = c.daemonRun(func(ctx context.Context, cl *api.Client, _ []string) error {
		res, err := cl.GC(ctx)
		if err != nil {
			return err
		}
		if *gcJSON {
			return c.printJSON(res)
		}
		fmt.Fprintf(c.stdout, "removed %d blocks, freed %s\n", res.Blocks, humanBytes(res.Bytes))
		return nil
	})
	return c.withRepo(groupCmd("repo", "the content store: repo stat | repo gc", "vft repo stat | repo gc", stat, gc))
}
