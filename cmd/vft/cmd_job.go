package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
)

func runJob(c *cli, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: vft job submit [SPEC.toml] | list | status ID | result ID -o DIR | cancel ID", errUsage)
	}
	switch args[0] {
	case "submit":
		return jobSubmit(c, args[1:])
	case "list":
		return listCommand(c, "job list", args[1:], (*api.Client).Jobs, "no jobs yet",
			"JOB\tROLE\tSTATE\tUPDATED\tRESULT / REASON",
			func(r job.Record) string {
				detail := r.Result
				if r.Reason != "" {
					detail = r.Reason
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.ID, r.Role, r.State, r.UpdatedAt.Local().Format(time.TimeOnly), detail)
			})
	case "status":
		return jobStatus(c, args[1:])
	case "result":
		return jobResult(c, args[1:])
	case "cancel":
		return jobCancel(c, args[1:])
	}
	return fmt.Errorf("%w: unknown job subcommand %q: use submit, list, status, result or cancel", errUsage, args[0])
}

// jobSubmit builds a spec from a TOML file and/or flags, adds the module
// and inputs through the daemon, and offers the job.
func jobSubmit(c *cli, args []string) error {
	fs, asJSON := c.flags("job submit")
	module := fs.String("wasm", "", "WASM module file")
	image := fs.String("image", "", "OCI image CID (printed by `vft image import`) for executor oci; overrides the spec file's image")
	var inputs, jobArgs stringList
	fs.Var(&inputs, "input", "input path, rsync-style: dir/ (contents at /input), dir or file (at /input/NAME), src:name (repeatable)")
	fs.Var(&jobArgs, "arg", "argument for the program (repeatable)")
	timeout := fs.String("timeout", "", "per-worker time limit, e.g. 2m")
	redundancy := fs.Uint("redundancy", 0, "workers that run the job (k)")
	verify := fs.String("verify", "", "exact, tolerance, spot or custom")
	reward := fs.Uint64("reward", 0, "payment per accepted worker, in lamports or the mint's smallest unit")
	escrowFlag := fs.Bool("escrow", false, "lock the reward for all workers in an SPL-multisig escrow before they start (token jobs)")
	wait := fs.Bool("wait", false, "wait for the job to finish, showing its stages")
	output := fs.String("o", "", "with --wait: write the result here")
	limits := addGetLimits(fs)
	if err := parse(fs, reorderFlags(args)); err != nil {
		return err
	}
	var spec job.FileSpec
	base, _ := os.Getwd()
	if fs.NArg() == 1 {
		var err error
		if spec, err = job.LoadFile(fs.Arg(0)); err != nil {
			return err
		}
		base = filepath.Dir(fs.Arg(0))
	} else if fs.NArg() > 1 {
		return fmt.Errorf("%w: one spec file at most", errUsage)
	}
	if *module != "" {
		spec.Module, _ = filepath.Abs(*module)
	}
	if *image != "" {
		spec.Image = *image
	}
	for _, in := range inputs {
		src, rest, _ := strings.Cut(in, ":")
		abs, _ := filepath.Abs(src)
		if strings.HasSuffix(src, "/") {
			abs += "/"
		}
		if rest != "" {
			abs += ":" + rest
		}
		spec.Inputs = append(spec.Inputs, abs)
	}
	if len(jobArgs) > 0 {
		spec.Args = jobArgs
	}
	if *timeout != "" {
		if err := spec.Timeout.UnmarshalText([]byte(*timeout)); err != nil {
			return fmt.Errorf("--timeout: %w", err)
		}
	}
	if *redundancy > 0 {
		spec.Redundancy = uint32(*redundancy)
	}
	if *verify != "" {
		spec.Verify = *verify
	}
	if *reward > 0 {
		spec.Reward = *reward
	}
	if *escrowFlag {
		spec.Escrow = true
	}
	if spec.Mint == "" {
		// Like the daemon: a spec that names no mint pays in chain.mint.
		if r, err := c.openRepo(); err == nil {
			if cfg, err := r.Config(c.environ); err == nil && cfg.Chain.Settle {
				spec.Mint = cfg.Chain.Mint
			}
		}
	}
	if spec.Module == "" && len(spec.Command) == 0 && spec.Image == "" {
		return fmt.Errorf("%w: give a spec file or --wasm MODULE", errUsage)
	}
	cl, err := c.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	resolved, err := spec.Resolve(base, func(path string) (string, error) {
		res, err := cl.Add(ctx, api.AddRequest{Path: strings.TrimSuffix(path, "/")}, nil)
		return res.CID, err
	}, time.Now())
	if err != nil {
		return err
	}
	id, err := cl.SubmitJob(ctx, resolved)
	if err != nil {
		return err
	}
	if !*wait {
		if *asJSON {
			return c.printJSON(api.SubmitResponse{ID: id})
		}
		fmt.Fprintln(c.stdout, id)
		return nil
	}
	rec, err := waitJob(ctx, c, cl, id)
	if err != nil {
		return err
	}
	if rec.State != job.StateDone {
		return fmt.Errorf("job %s %s: %s", id, rec.State, rec.Reason)
	}
	// With --json, stdout holds only the job record.
	say := c.stdout
	if *asJSON {
		say = c.stderr
	}
	if *output != "" {
		out, _ := filepath.Abs(*output)
		req, err := limits.request(rec.Result, out)
		if err != nil {
			return err
		}
		if _, err := cl.Get(ctx, req, nil); err != nil {
			return fmt.Errorf("fetch result %s: %w", rec.Result, err)
		}
		fmt.Fprintf(say, "result %s written to %s\n", rec.Result, out)
	} else {
		fmt.Fprintf(say, "result %s\n", rec.Result)
	}
	if *asJSON {
		return c.printJSON(rec)
	}
	return nil
}

// waitJob prints each stage as the job reaches it, until it ends.
func waitJob(ctx context.Context, c *cli, cl *api.Client, id string) (job.Record, error) {
	fmt.Fprintf(c.stderr, "job %s\n", id)
	shown, waiting := 0, ""
	for {
		rec, err := cl.Job(ctx, id)
		if err != nil {
			return rec, err
		}
		for ; shown < len(rec.History); shown++ {
			h := rec.History[shown]
			line := fmt.Sprintf("  %-10s %s", h.State, h.At.Local().Format(time.TimeOnly))
			if h.Note != "" {
				line += "  " + h.Note
			}
			fmt.Fprintln(c.stderr, line)
		}
		if rec.Waiting != waiting && rec.Waiting != "" && !strings.HasSuffix(rec.History[len(rec.History)-1].Note, rec.Waiting) {
			// Between history notes (at most one a minute), the current
			// reason still shows as it changes.
			fmt.Fprintf(c.stderr, "  %-10s %s  waiting for workers: %s\n", rec.State, time.Now().Format(time.TimeOnly), rec.Waiting)
		}
		waiting = rec.Waiting
		if rec.State.Terminal() {
			return rec, nil
		}
		select {
		case <-ctx.Done():
			return rec, fmt.Errorf("stopped waiting; the job goes on: `vft job status %s`", id)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func jobStatus(c *cli, args []string) error {
	fs, asJSON := c.flags("job status")
	if err := parse(fs, reorderFlags(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: vft job status ID", errUsage)
	}
	cl, err := c.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := requestContext()
	defer cancel()
	st, err := cl.JobStatus(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(st)
	}
	rec := st.Record
	fmt.Fprintf(c.stdout, "job     %s\nrole    %s\nstate   %s\n", rec.ID, rec.Role, rec.State)
	if rec.Result != "" {
		fmt.Fprintf(c.stdout, "result  %s\n", rec.Result)
	}
	if rec.Reason != "" {
		fmt.Fprintf(c.stdout, "reason  %s\n", rec.Reason)
	}
	if rec.Waiting != "" {
		fmt.Fprintf(c.stdout, "waiting %s\n", rec.Waiting)
	}
	if v := rec.Verdict; v != nil {
		for _, w := range v.Agreed {
			fmt.Fprintf(c.stdout, "agreed  %s\n", w)
		}
		for _, w := range v.Dissented {
			fmt.Fprintf(c.stdout, "dissent %s  %s\n", w, v.Reasons[w])
		}
	} else {
		for _, w := range rec.Workers {
			fmt.Fprintf(c.stdout, "worker  %s\n", w)
		}
	}
	var self string // this node's wallet: a worker's own payout reads "earned"
	if id, err := cl.ID(ctx); err == nil {
		self = id.Wallet
	}
	printPayouts(c.stdout, st, self)
	for _, h := range rec.History {
		fmt.Fprintf(c.stdout, "  %-10s %s  %s\n", h.State, h.At.Local().Format(time.DateTime), h.Note)
	}
	return nil
}

func jobResult(c *cli, args []string) error {
	fs, _ := c.flags("job result")
	output := fs.String("o", "", "where to write the result")
	limits := addGetLimits(fs)
	if err := parse(fs, reorderFlags(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 || *output == "" {
		return fmt.Errorf("%w: vft job result ID -o DIR", errUsage)
	}
	cl, err := c.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	rec, err := cl.Job(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	if rec.Result == "" {
		return fmt.Errorf("job %s has no accepted result yet (state %s)", rec.ID, rec.State)
	}
	out, _ := filepath.Abs(*output)
	req, err := limits.request(rec.Result, out)
	if err != nil {
		return err
	}
	if _, err := cl.Get(ctx, req, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "result %s written to %s\n", rec.Result, out)
	return nil
}

func jobCancel(c *cli, args []string) error {
	fs, _ := c.flags("job cancel")
	reason := fs.String("reason", "cancelled by the submitter", "why, shown to the workers")
	if err := parse(fs, reorderFlags(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: vft job cancel ID", errUsage)
	}
	cl, err := c.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := requestContext()
	defer cancel()
	if err := cl.CancelJob(ctx, fs.Arg(0), *reason); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "cancelled %s\n", fs.Arg(0))
	return nil
}

// printPayouts writes a job's payouts in its currency. The submitter sees
// whom it paid (peer and wallet); a worker sees what it earned, self being
// its wallet.
func printPayouts(w io.Writer, st api.JobStatus, self string) {
	cur := units.SOL
	if st.Currency != nil {
		cur = *st.Currency
	}
	for _, p := range st.Payouts {
		switch {
		case st.Role == job.RoleWorker && p.Recipient == self && !p.Returned:
			fmt.Fprintf(w, "earned  %s  tx %s\n", cur.Format(p.Amount), p.Signature)
		case p.Returned:
			fmt.Fprintf(w, "back    wallet %s  %s  tx %s (%s)\n", p.Recipient, cur.Format(p.Amount), p.Signature, p.State)
		default:
			who := p.Worker
			if who == "" {
				who = "-" // recorded before payouts named their worker
			}
			fmt.Fprintf(w, "paid    %s  wallet %s  %s  tx %s (%s)\n", who, p.Recipient, cur.Format(p.Amount), p.Signature, p.State)
		}
	}
}
