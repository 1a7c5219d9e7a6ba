// Command vft is the whole VFT product: the CLI and the daemon.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vft-network/vft/executor/wasm"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// cli holds what every command needs: where to write and the environment.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        []string
	repoFlag       string
}

// errUsage marks a mistake in how the command was called (exit status 2).
var errUsage = errors.New("usage")

// usageError is a usage mistake whose message stands alone, without the
// "usage: " that wrapping errUsage adds: an unknown command or flag.
type usageError struct{ msg string }

func (e usageError) Error() string        { return e.msg }
func (e usageError) Is(target error) bool { return target == errUsage }

func main() {
	wasm.ServeChild() // an isolated WASM task (executor/wasm Config.Isolate) runs in a child of this binary
	env := &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, environ: os.Environ()}
	os.Exit(env.main(os.Args[1:]))
}

func (c *cli) main(args []string) int {
	root := c.rootCmd()
	root.SetArgs(longFlagsCompat(root, args))
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	// Errors name the top-level command, as "vft job: ...", the way they
	// always have; an unknown command is the root's own, "vft: ...".
	name := topLevelName(cmd)
	prefix := strings.TrimSpace("vft " + name)
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintf(c.stderr, "%s: %v\n", prefix, err)
		return 2
	case errors.Is(err, context.Canceled) && interruptedSays[name] != "":
		// Ctrl-C: say what it left and what to do, not which HTTP
		// call it cut (130: the shell's status for SIGINT).
		fmt.Fprintf(c.stderr, "%s: %s\n", prefix, interruptedSays[name])
		return 130
	default:
		fmt.Fprintf(c.stderr, "%s: %v\n", prefix, err)
		return 1
	}
}

// topLevelName is the name of the command under the root that cmd is or
// belongs to ("job" for `vft job submit`), or "" for the root itself.
func topLevelName(cmd *cobra.Command) string {
	if cmd == nil || !cmd.HasParent() {
		return ""
	}
	for cmd.Parent().HasParent() {
		cmd = cmd.Parent()
	}
	return cmd.Name()
}

// interruptedSays is what each command that Ctrl-C can cut short left
// behind. A get or pin keeps every block it fetched (each is written as it
// arrives), so running it again fetches only the rest.
var interruptedSays = map[string]string{
	"get":  "interrupted; run the same command to resume",
	"pin":  "interrupted; run the same command to resume",
	"repo": "interrupted; nothing was lost, run the same command again",
	"add":  "interrupted; nothing was added, run the same command again",
	"job":  "interrupted; a job already submitted goes on in the daemon (`vft job list`), and `vft job result ID -o DIR` fetches its result",
}

// rootCmd builds the whole command tree. Help (-h, `vft help CMD`) and the
// completion scripts need no repo and no daemon: only a command's RunE
// opens them.
func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "vft",
		Short: "a peer-to-peer network for GPU compute",
		Long: `vft: a peer-to-peer network for GPU compute.

One binary is the node (vft daemon) and the client of a running node: the
client commands find the daemon through the repo (--repo, else $VFT_PATH,
else ~/.vft), whose api and api.token files the daemon writes.`,
		Example: `  vft init                      # create ~/.vft: identity, API token, config
  vft daemon                    # run the node
  vft job submit examples/wordcount/job.toml --wait -o ./result
  vft help job                  # a command's subcommands, flags and examples`,
		Version:       versionString(),
		Args:          unknownCommand,
		SilenceErrors: true, // main prints errors, as "vft CMD: message"
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help() // `vft` alone: the list of commands
		},
		Annotations: map[string]string{"group": "true"}, // no "vft [flags]" usage line
		// `vft jb` suggests job (cobra sets this only for its own unknown
		// command error, which unknownCommand replaces).
		SuggestionsMinimumDistance: 1,
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetVersionTemplate("vft {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Sprintf("%v; run `vft help %s` for its flags", err, strings.TrimPrefix(cmd.CommandPath(), "vft "))}
	})
	// Old spellings of long flags: -o's long name is --output, and Go's
	// flag package took --o too.
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "o" {
			name = "output"
		}
		return pflag.NormalizedName(name)
	})
	root.AddCommand(
		c.initCmd(),
		c.daemonCmd(),
		c.idCmd(),
		c.peersCmd(),
		c.swarmCmd(),
		c.addCmd(),
		c.imageCmd(),
		c.getCmd(),
		c.pinCmd(),
		c.repoCmd(),
		c.jobCmd(),
		c.walletCmd(),
		c.dashboardCmd(),
		c.nodesCmd(),
		c.execCmd(),
		c.hwCmd(),
		c.doctorCmd(),
		c.configCmd(),
		c.devnetCmd(),
		c.versionCmd(),
		c.cliDocsCmd(),
	)
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpCommand(helpCmd())
	// Cobra adds these two when it executes; adding them now puts them in
	// the tree that the docs generator and the tests walk.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, cmd := range root.Commands() {
		switch cmd.Name() {
		case "completion":
			cmd.Example = "  vft completion bash > ~/.local/share/bash-completion/completions/vft\n  source <(vft completion bash)"
			for _, sh := range cmd.Commands() {
				sh.Example = fmt.Sprintf("  vft completion %s", sh.Name())
			}
		}
	}
	return root
}

// unknownCommand is the root's argument check: `vft frobnicate`.
func unknownCommand(root *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	guess := ""
	if s := root.SuggestionsFor(args[0]); len(s) > 0 {
		guess = fmt.Sprintf(" (did you mean %s?)", orList(s))
	}
	return usageError{fmt.Sprintf("unknown command %q%s; run `vft help` for the list", args[0], guess)}
}

// helpCmd is `vft help [COMMAND]`: cobra's, except that an unknown command
// is a usage error like `vft frobnicate`, not the list of commands with
// exit status 0.
func helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "help [command]",
		Short:   "help about any command",
		Example: "  vft help job\n  vft help job submit",
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			parent, _, err := cmd.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range parent.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				if target.HasParent() {
					return fmt.Errorf("%w: unknown %s subcommand %q (`vft help %s` lists them)", errUsage,
						target.Name(), rest[0], strings.TrimPrefix(target.CommandPath(), "vft "))
				}
				return unknownCommand(target, rest)
			}
			return target.Help()
		},
	}
}

// usageTemplate is cobra's, except that a command whose own run only says
// which subcommands it has (annotated "group") shows no usage line of its
// own.
var usageTemplate = strings.Replace((&cobra.Command{}).UsageTemplate(),
	"{{if .Runnable}}", `{{if and .Runnable (not (index .Annotations "group"))}}`, 1)

// groupCmd is a command that only holds subcommands: `vft job` alone says
// how to use it, and an unknown subcommand is named in the error.
func groupCmd(use, short, usage string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:         use,
		Short:       short,
		Annotations: map[string]string{"group": "true"},
	}
	cmd.AddCommand(subs...)
	var names []string
	for _, s := range subs {
		names = append(names, s.Name())
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("%w: %s", errUsage, usage)
		}
		return fmt.Errorf("%w: unknown %s subcommand %q: use %s (`vft help %s` says more)",
			errUsage, cmd.Name(), args[0], orList(names), cmd.Name())
	}
	var ex []string
	for _, s := range subs {
		if s.Example != "" {
			ex = append(ex, strings.SplitN(s.Example, "\n", 2)[0])
		}
	}
	cmd.Example = strings.Join(ex, "\n")
	return cmd
}

// orList writes "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// withRepo gives cmd and its subcommands --repo: only the commands that
// open a repo have it.
func (c *cli) withRepo(cmd *cobra.Command) *cobra.Command {
	cmd.PersistentFlags().StringVar(&c.repoFlag, "repo", "", "repo directory (default $VFT_PATH, else ~/.vft)")
	return cmd
}

// jsonFlag gives cmd --json.
func jsonFlag(cmd *cobra.Command) *bool {
	return cmd.Flags().Bool("json", false, "print JSON")
}

// ignoredJSONFlag gives a command whose output has no JSON form the
// --json that every command used to accept, hidden from its help.
func ignoredJSONFlag(cmd *cobra.Command) {
	jsonFlag(cmd)
	_ = cmd.Flags().MarkHidden("json")
}

// outputFlag gives cmd -o/--output.
func outputFlag(cmd *cobra.Command, usage string) *string {
	return cmd.Flags().StringP("output", "o", "", usage)
}

// longFlagsCompat rewrites a Go-flag-style single-dash long flag (-json,
// -repo DIR, -mode=light) that the old CLI accepted into its --form, when
// the command has a flag of that name. Values of flags are left alone:
// `--arg -json` still passes "-json" to the module.
func longFlagsCompat(root *cobra.Command, args []string) []string {
	cmd := root // the command the words so far name
	lookup := func(name string) *pflag.Flag {
		if f := cmd.Flags().Lookup(name); f != nil {
			return f
		}
		if f := cmd.InheritedFlags().Lookup(name); f != nil {
			return f
		}
		if name == "repo" && cmd == root {
			// --repo before the command's name: `vft -repo DIR add`.
			for _, sub := range root.Commands() {
				if f := sub.PersistentFlags().Lookup(name); f != nil {
					return f
				}
			}
		}
		return nil
	}
	takesValue := func(f *pflag.Flag) bool { return f != nil && f.NoOptDefVal == "" }
	out := make([]string, 0, len(args))
	positional := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case strings.HasPrefix(a, "--"):
			out = append(out, a)
			name, _, hasValue := strings.Cut(a[2:], "=")
			if !hasValue && takesValue(lookup(name)) && i+1 < len(args) {
				out = append(out, args[i+1]) // the flag's value, whatever it looks like
				i++
			}
		case len(a) > 2 && a[0] == '-':
			name, _, hasValue := strings.Cut(a[1:], "=")
			f := lookup(name)
			if f == nil || len(name) < 2 {
				out = append(out, a) // -oDIR, or not a flag: pflag says which
				continue
			}
			out = append(out, "-"+a)
			if !hasValue && takesValue(f) && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
		case isNegativeNumber(a) && lookup(a[1:]) == nil && cmd.Flags().ShorthandLookup(a[1:2]) == nil && noFlags(args[i:]):
			// A trailing value like -1 (vft config set KEY -1): the old
			// CLI took it as an argument, as pflag does only after --.
			return append(append(out, "--"), args[i:]...)
		case len(a) == 2 && a[0] == '-':
			out = append(out, a)
			if takesValue(cmd.Flags().ShorthandLookup(a[1:])) && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
		default:
			out = append(out, a)
			if !positional {
				if sub := subcommand(cmd, a); sub != nil {
					cmd = sub
					continue
				}
				positional = true
			}
		}
	}
	return out
}

// isNegativeNumber says whether a looks like -1 or -0.5.
func isNegativeNumber(a string) bool {
	_, err := strconv.ParseFloat(a, 64)
	return len(a) > 1 && a[0] == '-' && err == nil
}

// noFlags says whether none of args starts with "-" but as a number.
func noFlags(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-") && !isNegativeNumber(a) {
			return false
		}
	}
	return true
}

// subcommand is cmd's subcommand called name, or nil.
func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == name || sub.HasAlias(name) {
			return sub
		}
	}
	return nil
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func versionString() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

func (c *cli) versionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "print the version",
		Example: "  vft version\n  vft --version\n  vft version --json",
	}
	asJSON := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *asJSON {
			return c.printJSON(map[string]string{"version": versionString()})
		}
		fmt.Fprintln(c.stdout, "vft", versionString())
		return nil
	}
	return cmd
}
