// Package backfill implements `ddbsync backfill`.
package backfill

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
)

// Options are the inputs of one `ddbsync backfill` run.
type Options struct {
	Factory *cmdutil.Factory
}

// NewCmdBackfill builds the command; runF replaces the run in tests.
func NewCmdBackfill(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "backfill (being built)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return errors.New("backfill is not built yet")
		},
	}
	return cmd
}
