// Package sync implements `ddbsync sync`.
package sync

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
)

// Options are the inputs of one `ddbsync sync` run.
type Options struct {
	Factory *cmdutil.Factory
}

// NewCmdSync builds the command; runF replaces the run in tests.
func NewCmdSync(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "sync (being built)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return errors.New("sync is not built yet")
		},
	}
	return cmd
}
