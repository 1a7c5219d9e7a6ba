package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// cliDocsFile is the command reference that `vft cli-docs` writes and
// TestCLIDocsCurrent keeps current.
const cliDocsFile = "docs/CLI.md"

// cliDocsCmd is the hidden command behind `make cli-docs`: it prints
// docs/CLI.md from the command tree itself, so the reference cannot drift
// from the help. (cobra/doc would do this too, but pulls in go-md2man and
// a YAML library for formats this project does not use.)
func (c *cli) cliDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "cli-docs",
		Short:   "print the command reference (docs/CLI.md) in Markdown",
		Example: "  vft cli-docs > docs/CLI.md   # or: make cli-docs",
		Hidden:  true,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeCLIDocs(c.stdout, cmd.Root())
		},
	}
}

// writeCLIDocs writes the Markdown reference of every visible command
// under root: a table of contents, then each command's description, usage,
// examples and flags, as its -h shows them.
func writeCLIDocs(w io.Writer, root *cobra.Command) error {
	var b bytes.Buffer
	b.WriteString("# vft command reference\n\n")
	b.WriteString("<!-- Generated from the command tree by `make cli-docs` (vft cli-docs); do not edit by hand:\n")
	b.WriteString("     TestCLIDocsCurrent fails when this file differs from the tree. -->\n\n")
	b.WriteString("Every command and subcommand prints this same help with `-h` or `--help`, or as\n")
	b.WriteString("`vft help COMMAND [SUBCOMMAND]`; none of them needs a repo or a daemon for it.\n")
	b.WriteString("Flags may come before or after the positional arguments. Exit status: 0 on\n")
	b.WriteString("success, 1 on an error, 2 on a usage mistake (an unknown command or flag, a\n")
	b.WriteString("missing argument), 130 when Ctrl-C interrupts a transfer or a job.\n\n")
	cmds := visibleCommands(root)
	for _, cmd := range cmds {
		depth := strings.Count(cmd.CommandPath(), " ")
		fmt.Fprintf(&b, "%s- [`%s`](#%s) — %s\n", strings.Repeat("  ", depth), cmd.CommandPath(), anchor(cmd), cmd.Short)
	}
	for _, cmd := range cmds {
		fmt.Fprintf(&b, "\n## %s\n\n", cmd.CommandPath())
		desc := cmd.Long
		if desc == "" {
			desc = cmd.Short
		}
		b.WriteString(strings.TrimSpace(desc) + "\n\n")
		b.WriteString("```text\n")
		b.WriteString(strings.TrimRight(cmd.UsageString(), "\n") + "\n")
		b.WriteString("```\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// visibleCommands lists root and every command under it that help shows,
// depth first, in help's order.
func visibleCommands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, sub := range root.Commands() {
		if !sub.IsAvailableCommand() && sub.Name() != "help" {
			continue
		}
		out = append(out, visibleCommands(sub)...)
	}
	return out
}

// anchor is the GitHub heading anchor of cmd's section: "vft job submit"
// becomes "vft-job-submit".
func anchor(cmd *cobra.Command) string {
	return strings.ReplaceAll(cmd.CommandPath(), " ", "-")
}
