// Package cmdtest runs command lines in tests: Expect maps one to a
// command's Options through the command's runF, without running anything;
// Run runs it whole, as the binary would, on test streams.
package cmdtest

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/cmd/root"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/iostreams"
)

// NewCmd is the shape of every command constructor: NewCmdX(f, runF).
type NewCmd[O any] func(f *cmdutil.Factory, runF func(*O) error) *cobra.Command

// Expect parses args (split on spaces) with the command newCmd builds.
// With wantErr, parsing must fail with an error containing it and never
// reach runF; otherwise it must succeed and check inspects the Options.
func Expect[O any](t *testing.T, newCmd NewCmd[O], args, wantErr string, check func(*testing.T, *O)) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	f := root.NewFactory(ios)
	var got *O
	cmd := newCmd(f, func(o *O) error { got = o; return nil })
	cmd.SetArgs(strings.Fields(args))
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want one containing %q", err, wantErr)
		}
		if got != nil {
			t.Fatal("runF was called despite the error")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	check(t, got)
}

// Result is what one command line did: its exit code and what it wrote
// on standard output and standard error.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// NewFactory returns the factory root.Main builds, on test streams whose
// standard input holds stdin, with no status display and a state
// directory of the test's own.
func NewFactory(t *testing.T, stdin string) *cmdutil.Factory {
	t.Helper()
	ios, in, _, _ := iostreams.Test()
	in.WriteString(stdin)
	f := root.NewFactory(ios)
	f.StartStatus = nil
	f.Globals.StateDir = filepath.Join(t.TempDir(), "state")
	return f
}

// Run runs a whole command line (args after "ddbsync") through root.Run,
// as the binary would, with f (from NewFactory, or any factory on
// iostreams.Test streams) and a two-minute limit.
func Run(t *testing.T, f *cmdutil.Factory, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return RunContext(ctx, t, f, args...)
}

// RunContext is Run with the caller's context (to interrupt the run, as
// SIGINT would, by cancelling it).
func RunContext(ctx context.Context, t *testing.T, f *cmdutil.Factory, args ...string) Result {
	t.Helper()
	out, ok1 := f.IOStreams.Out.(*bytes.Buffer)
	errOut, ok2 := f.IOStreams.ErrOut.(*bytes.Buffer)
	if !ok1 || !ok2 {
		t.Fatal("cmdtest.Run needs a factory on test streams (cmdtest.NewFactory or iostreams.Test)")
	}
	code := root.Run(ctx, f, args)
	return Result{Code: code, Stdout: out.String(), Stderr: errOut.String()}
}
