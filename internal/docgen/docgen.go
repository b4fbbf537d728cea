// Package docgen writes the reference documentation of ddbsync from its
// command tree: docs/cli.md (one Markdown page, every command) and man
// pages, with cobra's doc generator. The tree is built with a factory
// whose dependencies are never loaded (as cli/cli's gen-docs does), so
// generating needs no credentials and no network. cmd/gen-docs is the
// program (`make docs`); the test fails when docs/cli.md is stale.
package docgen

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/ddbsync/ddbsync/internal/cmd/root"
	"github.com/ddbsync/ddbsync/internal/iostreams"
)

// Tree builds the command tree with a stub factory: IO streams that are
// buffers, nothing else ever built.
func Tree() *cobra.Command {
	ios, _, _, _ := iostreams.Test()
	cmd := root.NewCmdRoot(root.NewFactory(ios))
	cmd.DisableAutoGenTag = true // no generation date: the page is compared in tests
	// cobra adds `completion` (and `help`) when a command line runs; the
	// reference shows them too.
	cmd.InitDefaultCompletionCmd()
	cmd.InitDefaultHelpCmd()
	return cmd
}

const header = `# ddbsync command reference

<!-- Generated from the command tree by ` + "`make docs`" + ` (cmd/gen-docs); do not edit.
     The guide to the command line (output, environment variables, exit
     status, completion) is docs/usage.md. -->

This page is generated from ` + "`ddbsync <command> --help`" + `. For how output,
environment variables, exit codes and completion work, see
[usage.md](usage.md).

`

// Markdown writes the reference page: every available command, in
// tree order, its synopsis, examples and flags, with links between
// commands as anchors within the page.
func Markdown(w io.Writer, cmd *cobra.Command) error {
	var buf bytes.Buffer
	buf.WriteString(header)
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if err := doc.GenMarkdownCustom(c, &buf, anchor); err != nil {
			return err
		}
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
				continue
			}
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(cmd); err != nil {
		return err
	}
	// One blank line at the end, none doubled (markdown linters).
	out := strings.TrimRight(buf.String(), "\n") + "\n"
	_, err := io.WriteString(w, out)
	return err
}

// anchor turns cobra's file name of a command's page
// ("ddbsync_iam-policy.md") into the anchor of its section in the one
// page ("#ddbsync-iam-policy").
func anchor(file string) string {
	name := strings.TrimSuffix(file, ".md")
	return "#" + strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

// Man writes one man page a command into dir (section 1). date is the
// date in the pages' header.
func Man(cmd *cobra.Command, dir string, date time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	h := &doc.GenManHeader{Title: "DDBSYNC", Section: "1", Source: "ddbsync", Manual: "ddbsync manual", Date: &date}
	if err := doc.GenManTree(cmd, h, dir); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return nil
}
