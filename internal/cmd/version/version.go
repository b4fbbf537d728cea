// Package version implements `ddbsync version`.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
)

// NewCmdVersion prints the version of ddbsync.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of ddbsync",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(f.IOStreams.Out, "ddbsync %s (%s, %s/%s)\n", Version(f.Version), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// Version is the version set at build time, or the module version.
func Version(set string) string {
	if set != "" {
		return set
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
