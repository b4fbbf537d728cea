// Package version implements `ddbsync version`: what was built, from
// which commit, with which Go, for which platform — all read from the
// build information the Go toolchain embeds (runtime/debug), so nothing is
// kept by hand. Only a release's version number comes from outside: the
// release build (GoReleaser, the Dockerfile) sets it from the git tag with
// -ldflags "-X github.com/ddbsync/ddbsync/internal/cmd/root.version=v1.2.3".
package version

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
)

// Output formats of --output.
var outputFormats = []string{"text", "json"}

// Options of `ddbsync version`.
type Options struct {
	IO      io.Writer
	Version string // set at build time; "" reads the build info

	Output string
}

// NewCmdVersion prints the version of ddbsync. runF, when not nil, is
// called instead of versionRun (tests).
func NewCmdVersion(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams.Out, Version: f.Version}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and platform of ddbsync",
		Long: `Print the version of ddbsync, the commit it was built from and that
commit's time, whether the working tree had uncommitted changes, the Go
version and the platform.

The version is the release tag for release builds, the module version for
'go install …@version', a pseudo-version naming the commit for a build in a
git checkout (v0.0.0-20261130090117-74a769222470, "+dirty" with uncommitted
changes), and "dev" when none of these is known. The commit is known when
the binary was built in a git checkout.

Exit status:
  0    printed
  2    invalid usage`,
		Example: `  $ ddbsync version
  ddbsync v1.2.0
  commit:   3f2c1e9a7b0d (2026-11-30T10:12:00Z)
  go:       go1.26.8 linux/amd64

  # For scripts and bug reports
  $ ddbsync version --output json
  {"version":"v1.2.0","commit":"3f2c1e9a7b0d…","commit_time":"2026-11-30T10:12:00Z","modified":false,"go":"go1.26.8","os":"linux","arch":"amd64"}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return versionRun(opts)
		},
	}
	cmdutil.StringEnumFlag(cmd, cmd.Flags(), &opts.Output, "output", "text", outputFormats, "output format")
	return cmd
}

func versionRun(o *Options) error {
	info := Read(o.Version)
	if o.Output == "json" {
		enc := json.NewEncoder(o.IO)
		return enc.Encode(info)
	}
	_, err := io.WriteString(o.IO, info.Text())
	return err
}

// Info describes the running binary.
type Info struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`      // "" when built outside a git checkout
	CommitTime string `json:"commit_time"` // RFC 3339, "" when unknown
	Modified   bool   `json:"modified"`    // the working tree had uncommitted changes
	Go         string `json:"go"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// Read returns the Info of the running binary; set is the version given
// at build time ("" when none).
func Read(set string) Info {
	return fromBuildInfo(set, readBuildInfo())
}

func fromBuildInfo(set string, bi *debug.BuildInfo) Info {
	info := Info{Version: set, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi != nil {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			info.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.CommitTime = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			case "GOOS":
				info.OS = s.Value
			case "GOARCH":
				info.Arch = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// Text is the human form of `ddbsync version`.
func (i Info) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ddbsync %s\n", i.Version)
	if i.Commit != "" {
		commit := i.Commit
		if i.CommitTime != "" {
			commit += " (" + i.CommitTime + ")"
		}
		if i.Modified {
			commit += ", with uncommitted changes"
		}
		fmt.Fprintf(&b, "commit:   %s\n", commit)
	} else {
		fmt.Fprintf(&b, "commit:   unknown (not built in a git checkout)\n")
	}
	fmt.Fprintf(&b, "go:       %s %s/%s\n", i.Go, i.OS, i.Arch)
	return b.String()
}

// Version is the version set at build time, or the module version, or
// "dev" (for --version).
func Version(set string) string {
	return fromBuildInfo(set, readBuildInfo()).Version
}

func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}
