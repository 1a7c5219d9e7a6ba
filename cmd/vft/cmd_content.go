package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/internal/units"
)

// getLimits are the flags bounding what `vft get` and `vft job result`
// write: a DAG of a few blocks can declare a terabyte or millions of files.
type getLimits struct {
	maxBytes   units.Bytes
	maxEntries int64
}

func addGetLimits(fs *flag.FlagSet) *getLimits {
	var l getLimits
	fs.TextVar(&l.maxBytes, "max-bytes", units.Bytes(0),
		"refuse content holding more file bytes than this, e.g. 200GiB (default: the free space at the output less 1 GiB)")
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

func runAdd(c *cli, args []string) error {
	fs, asJSON := c.flags("add")
	noPin := fs.Bool("no-pin", false, "do not pin the result (the next `vft repo gc` may remove it)")
	hidden := fs.Bool("hidden", false, "include files and directories whose names start with a dot (skipped by default, as `ipfs add` does)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: vft add PATH (a file or a directory)", errUsage)
	}
	path, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s does not exist or cannot be read: %w", fs.Arg(0), err)
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
			res.HiddenSkipped, entries, fs.Arg(0))
	}
	if *asJSON {
		return c.printJSON(map[string]any{"cid": res.CID, "path": path, "hidden_skipped": res.HiddenSkipped})
	}
	fmt.Fprintln(c.stdout, res.CID)
	return nil
}

func runGet(c *cli, args []string) error {
	fs, asJSON := c.flags("get")
	output := fs.String("o", "", "where to write the file or directory (default ./CID)")
	limits := addGetLimits(fs)
	// Let "-o" come after the CID too, as people type it.
	if err := parse(fs, reorderFlags(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: vft get CID [-o PATH]", errUsage)
	}
	id := fs.Arg(0)
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

// valueFlags are the flags that take a value, for reorderFlags.
var valueFlags = map[string]bool{
	"o": true, "repo": true, "wasm": true, "input": true, "arg": true,
	"timeout": true, "redundancy": true, "verify": true, "reward": true, "reason": true,
	"max-bytes": true, "max-entries": true,
}

// reorderFlags moves flags after positional arguments to the front, since
// Go's flag package stops at the first positional argument.
func reorderFlags(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && valueFlags[strings.TrimLeft(a, "-")] && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		rest = append(rest, a)
	}
	return append(flags, rest...)
}

// daemonSub is what a `vft CMD SUB [flags] [args]` command needs: the
// subcommand, its parsed flags, a client to the daemon and a context that
// Ctrl-C cancels.
type daemonSub struct {
	name   string
	fs     *flag.FlagSet
	asJSON bool
	cl     *api.Client
	ctx    context.Context
	cancel context.CancelFunc
}

func (c *cli) daemonSub(cmd, usage string, args []string) (*daemonSub, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: %s", errUsage, usage)
	}
	fs, asJSON := c.flags(cmd + " " + args[0])
	if err := parse(fs, args[1:]); err != nil {
		return nil, err
	}
	cl, err := c.daemon()
	if err != nil {
		return nil, err
	}
	ctx, cancel := interruptible()
	return &daemonSub{name: args[0], fs: fs, asJSON: *asJSON, cl: cl, ctx: ctx, cancel: cancel}, nil
}

func runPin(c *cli, args []string) error {
	d, err := c.daemonSub("pin", "vft pin add CID | pin rm CID | pin ls", args)
	if err != nil {
		return err
	}
	defer d.cancel()
	sub, fs, cl, ctx := d.name, d.fs, d.cl, d.ctx
	switch sub {
	case "add", "rm":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: vft pin %s CID", errUsage, sub)
		}
		verb := "pinned"
		if sub == "add" {
			// Pinning fetches what is missing: as long as a get, with
			// the same progress line.
			bar := newProgressBar(c.stderr, "fetching")
			err := cl.Pin(ctx, fs.Arg(0), bar.Update)
			bar.Done()
			if err != nil {
				return err
			}
		} else {
			verb = "unpinned"
			if err := cl.Unpin(ctx, fs.Arg(0)); err != nil {
				return err
			}
		}
		if d.asJSON {
			return c.printJSON(map[string]string{"cid": fs.Arg(0), "status": verb})
		}
		fmt.Fprintf(c.stdout, "%s %s\n", verb, fs.Arg(0))
		return nil
	case "ls":
		pins, err := cl.Pins(ctx)
		if err != nil {
			return err
		}
		if d.asJSON {
			return c.printJSON(pins)
		}
		for _, p := range pins {
			fmt.Fprintln(c.stdout, p)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown pin subcommand %q: use add, rm or ls", errUsage, sub)
}

func runRepo(c *cli, args []string) error {
	d, err := c.daemonSub("repo", "vft repo stat | repo gc", args)
	if err != nil {
		return err
	}
	defer d.cancel()
	sub, cl, ctx := d.name, d.cl, d.ctx
	switch sub {
	case "stat":
		st, err := cl.RepoStat(ctx)
		if err != nil {
			return err
		}
		if d.asJSON {
			return c.printJSON(st)
		}
		quota := "none"
		if st.MaxBytes > 0 {
			quota = humanBytes(st.MaxBytes)
		}
		fmt.Fprintf(c.stdout, "blocks   %d\nsize     %s\npins     %d\nquota    %s\ncorrupt  %d blocks found and removed since start\n",
			st.Blocks, humanBytes(st.Bytes), st.Pins, quota, st.CorruptBlocks)
		return nil
	case "gc":
		res, err := cl.GC(ctx)
		if err != nil {
			return err
		}
		if d.asJSON {
			return c.printJSON(res)
		}
		fmt.Fprintf(c.stdout, "removed %d blocks, freed %s\n", res.Blocks, humanBytes(res.Bytes))
		return nil
	}
	return fmt.Errorf("%w: unknown repo subcommand %q: use stat or gc", errUsage, sub)
}
