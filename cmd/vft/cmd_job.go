package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
)

func (c *cli) jobCmd() *cobra.Command {
	list := &cobra.Command{
		Use:     "list",
		Short:   "the jobs this node submitted or worked on",
		Example: "  vft job list\n  vft job list --json",
	}
	listJSON := jsonFlag(list)
	list.RunE = func(cmd *cobra.Command, args []string) error {
		return listCommand(c, *listJSON, (*api.Client).Jobs, "no jobs yet",
			"JOB\tROLE\tSTATE\tUPDATED\tRESULT / REASON",
			func(r job.Record) string {
				detail := r.Result
				if r.Reason != "" {
					detail = r.Reason
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.ID, r.Role, r.State, r.UpdatedAt.Local().Format(time.TimeOnly), detail)
			})
	}
	return c.withRepo(groupCmd("job", "submit jobs and follow them: job submit | list | status ID | result ID -o DIR | cancel ID",
		"vft job submit [SPEC.toml] | list | status ID | result ID -o DIR | cancel ID",
		c.jobSubmitCmd(), list, c.jobStatusCmd(), c.jobResultCmd(), c.jobCancelCmd()))
}

// jobSubmit builds a spec from a TOML file and/or flags, adds the module
// and inputs through the daemon, and offers the job.
func (c *cli) jobSubmitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "submit [SPEC.toml]",
		Short: "offer a job to the network: a spec file and/or flags",
		Long: `Offer a job to the network. The spec file (TOML: module or image, inputs,
args, redundancy, verify, reward, timeout; see docs/JOBS.md) and the flags
both describe it; a flag overrides the file. The module and the inputs are
added through the daemon first. Prints the job's ID, or with --wait follows
its stages and fetches the result.`,
		Example: `  vft job submit examples/wordcount/job.toml --wait -o ./result
  vft job submit --wasm examples/cmatmul/cmatmul.wasm --arg -n --arg 512 --redundancy 3 --verify exact
  vft job submit examples/torchinfer/job.toml --image bafy... --wait -o ./result --json`,
	}
	fs := cmd.Flags()
	asJSON := jsonFlag(cmd)
	module := fs.String("wasm", "", "WASM module file")
	image := fs.String("image", "", "OCI image CID (printed by 'vft image import') for executor oci; overrides the spec file's image")
	var inputs, jobArgs stringList
	fs.Var(&inputs, "input", "input `PATH`, rsync-style: dir/ (contents at /input), dir or file (at /input/NAME), src:name (repeatable)")
	fs.Var(&jobArgs, "arg", "`ARG` for the program (repeatable, in order)")
	timeout := fs.String("timeout", "", "per-worker time limit, e.g. 2m")
	redundancy := fs.Uint("redundancy", 0, "workers that run the job (k)")
	verify := fs.String("verify", "", "exact, tolerance, spot or custom")
	floats := fs.String("floats", "", "a wasm job's float mode: portable (the default: NaNs the same bits on every CPU) or native (faster float code)")
	reward := fs.Uint64("reward", 0, "payment per accepted worker, in lamports or the mint's smallest unit")
	escrowFlag := fs.Bool("escrow", false, "lock the reward for all workers in an SPL-multisig escrow before they start (token jobs)")
	wait := fs.Bool("wait", false, "wait for the job to finish, showing its stages")
	output := outputFlag(cmd, "with --wait: write the result here")
	limits := addGetLimits(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return c.jobSubmit(args, jobSubmitFlags{asJSON: *asJSON, module: *module, image: *image, inputs: inputs, args: jobArgs,
			timeout: *timeout, redundancy: *redundancy, verify: *verify, floats: *floats, reward: *reward, escrow: *escrowFlag,
			wait: *wait, output: *output, limits: limits})
	}
	return cmd
}

// jobSubmitFlags are the flags of `vft job submit`.
type jobSubmitFlags struct {
	asJSON        bool
	module, image string
	inputs, args  stringList
	timeout       string
	redundancy    uint
	verify        string
	floats        string
	reward        uint64
	escrow, wait  bool
	output        string
	limits        *getLimits
}

func (c *cli) jobSubmit(args []string, f jobSubmitFlags) error {
	var spec job.FileSpec
	base, _ := os.Getwd()
	if len(args) == 1 {
		var err error
		if spec, err = job.LoadFile(args[0]); err != nil {
			return err
		}
		base = filepath.Dir(args[0])
	} else if len(args) > 1 {
		return fmt.Errorf("%w: one spec file at most", errUsage)
	}
	if f.module != "" {
		spec.Module, _ = filepath.Abs(f.module)
	}
	if f.image != "" {
		spec.Image = f.image
	}
	for _, in := range f.inputs {
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
	if len(f.args) > 0 {
		spec.Args = f.args
	}
	if f.timeout != "" {
		if err := spec.Timeout.UnmarshalText([]byte(f.timeout)); err != nil {
			return fmt.Errorf("--timeout: %w", err)
		}
	}
	if f.redundancy > 0 {
		spec.Redundancy = uint32(f.redundancy)
	}
	if f.verify != "" {
		spec.Verify = f.verify
	}
	if f.floats != "" {
		spec.Floats = f.floats // checked with the spec, naming the bad value
	}
	if f.reward > 0 {
		spec.Reward = f.reward
	}
	if f.escrow {
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
	if !f.wait {
		if f.asJSON {
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
	if f.asJSON {
		say = c.stderr
	}
	if f.output != "" {
		out, _ := filepath.Abs(f.output)
		req, err := f.limits.request(rec.Result, out)
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
	if f.asJSON {
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

func (c *cli) jobStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "status ID",
		Short:   "a job's state, workers, verdict, payouts and history",
		Example: "  vft job status 9f2c...\n  vft job status 9f2c... --json",
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.jobStatus(args, *asJSON) }
	return cmd
}

func (c *cli) jobStatus(args []string, asJSON bool) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: vft job status ID", errUsage)
	}
	cl, err := c.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := requestContext()
	defer cancel()
	st, err := cl.JobStatus(ctx, args[0])
	if err != nil {
		return err
	}
	if asJSON {
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

func (c *cli) jobResultCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "result ID -o DIR",
		Short:   "fetch a job's accepted result",
		Example: "  vft job result 9f2c... -o ./result",
	}
	ignoredJSONFlag(cmd) // every command used to accept --json
	output := outputFlag(cmd, "where to write the result (required)")
	limits := addGetLimits(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.jobResult(args, *output, limits) }
	return cmd
}

func (c *cli) jobResult(args []string, output string, limits *getLimits) error {
	if len(args) != 1 || output == "" {
		return fmt.Errorf("%w: vft job result ID -o DIR", errUsage)
	}
	cl, err := c.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	rec, err := cl.Job(ctx, args[0])
	if err != nil {
		return err
	}
	if rec.Result == "" {
		return fmt.Errorf("job %s has no accepted result yet (state %s)", rec.ID, rec.State)
	}
	out, _ := filepath.Abs(output)
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

func (c *cli) jobCancelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "cancel ID",
		Short:   "cancel a job this node submitted",
		Example: "  vft job cancel 9f2c... --reason 'wrong input'",
	}
	ignoredJSONFlag(cmd) // every command used to accept --json
	reason := cmd.Flags().String("reason", "cancelled by the submitter", "why, shown to the workers")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return c.jobCancel(args, *reason) }
	return cmd
}

func (c *cli) jobCancel(args []string, reason string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: vft job cancel ID", errUsage)
	}
	cl, err := c.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := requestContext()
	defer cancel()
	if err := cl.CancelJob(ctx, args[0], reason); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "cancelled %s\n", args[0])
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
