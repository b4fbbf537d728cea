// Package cmdtest maps command lines to a command's Options in tests,
// through the command's runF, without running anything.
package cmdtest

import (
	"bytes"
	"strings"
	"testing"

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
