package cmdutil

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// EnvAnnotation is the flag annotation that records the DDBSYNC_*
// environment variable a flag's value came from.
const EnvAnnotation = "ddbsync_env"

// FlagSource names where a flag's value came from for messages:
// "--name", or "DDBSYNC_NAME (environment)" when it was read from the
// environment.
func FlagSource(fl *pflag.Flag) string {
	if env := fl.Annotations[EnvAnnotation]; len(env) > 0 {
		return env[0] + " (environment)"
	}
	return "--" + fl.Name
}

type enumValue struct {
	p       *string
	options []string
}

func (e *enumValue) String() string { return *e.p }
func (e *enumValue) Type() string   { return "string" }
func (e *enumValue) Set(s string) error {
	if !slices.Contains(e.options, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(e.options, ", "))
	}
	*e.p = s
	return nil
}

// StringEnumFlag defines a string flag that only takes one of options:
// its usage lists them, a bad value is a flag error, and shells complete
// them (as cli/cli's StringEnumFlag).
func StringEnumFlag(cmd *cobra.Command, fs *pflag.FlagSet, p *string, name, def string, options []string, usage string) *pflag.Flag {
	*p = def
	fs.Var(&enumValue{p: p, options: options}, name, fmt.Sprintf("%s: {%s}", usage, strings.Join(options, "|")))
	_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(options, cobra.ShellCompDirectiveNoFileComp))
	return fs.Lookup(name)
}
