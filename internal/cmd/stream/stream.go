// Package stream implements `ddbsync stream`.
package stream

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
)

// Options are the inputs of one `ddbsync stream` run.
type Options struct {
	Factory *cmdutil.Factory
}

// NewCmdStream builds the command; runF replaces the run in tests.
func NewCmdStream(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "stream (being built)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return errors.New("stream is not built yet")
		},
	}
	return cmd
}
