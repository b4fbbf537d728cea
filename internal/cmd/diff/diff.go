// Package diff implements `ddbsync diff`.
package diff

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
)

// Options are the inputs of one `ddbsync diff` run.
type Options struct {
	Factory *cmdutil.Factory
}

// NewCmdDiff builds the command; runF replaces the run in tests.
func NewCmdDiff(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "diff (being built)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return errors.New("diff is not built yet")
		},
	}
	return cmd
}
