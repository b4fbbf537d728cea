package cmdutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// PlanFlags are the flags of backfill, stream and sync: a plan file, or
// one entry given as flags.
type PlanFlags struct {
	ConfigFile    string
	Input         plan.Table
	Output        plan.Table
	Segments      string
	TotalSegments int
	MaxWCU        float64
	MaxRCU        float64
	// Set by sync: --backfill=false / --stream=false.
	Backfill bool
	Stream   bool
	// Filter (--filter) and TransformFile (--transform) apply to the
	// single entry of the table flags, or to every entry of a plan file
	// that has no filter or transform of its own (one that has is an
	// error: the two would be ambiguous).
	Filter        string
	TransformFile string
	// SkipFailedItems (--skip-failed-items): items the filter or the
	// transform fails on are logged and counted, and the run succeeds.
	SkipFailedItems bool
	// MFAToken is --mfa-token: the code for the MFA device of a role
	// (mfa_serial). Pass MFATokens() to Factory.Creds.
	MFAToken string
}

// MFATokens returns the MFA codes given on the command line, for
// Factory.Creds: --mfa-token applies to whichever device asks first.
func (pf *PlanFlags) MFATokens() map[string]string {
	if pf.MFAToken == "" {
		return nil
	}
	return map[string]string{"": pf.MFAToken}
}

var tableFlagNames = []string{
	"input-table", "input-region", "input-role-arn", "input-external-id", "input-profile", "input-endpoint-url", "input-mfa-serial",
	"output-table", "output-region", "output-role-arn", "output-external-id", "output-profile", "output-endpoint-url", "output-mfa-serial",
}

// AddPlanFlags registers the plan flags on cmd.
func AddPlanFlags(cmd *cobra.Command, pf *PlanFlags) {
	fl := cmd.Flags()
	fl.StringVarP(&pf.ConfigFile, "config-file", "c", "", "plan file (YAML); - reads standard input")
	addTable(fl, "input", &pf.Input)
	addTable(fl, "output", &pf.Output)
	fl.StringVar(&pf.Segments, "backfill-segments", "", "scan segments this worker copies, e.g. 0,1,2 (needs --backfill-total-segments)")
	fl.IntVar(&pf.TotalSegments, "backfill-total-segments", 0, "total scan segments (default: chosen from the table size, at least 4)")
	fl.Float64Var(&pf.MaxWCU, "max-wcu", 0, "write capacity budget on the output, units per second (0: no limit)")
	fl.Float64Var(&pf.MaxRCU, "max-rcu", 0, "read capacity budget on the input, units per second (0: no limit)")
	fl.StringVar(&pf.Filter, "filter", "", `copy only the items for which this CEL expression is true, e.g. 'item.tenant == "acme"' (docs/transform.md)`)
	fl.StringVar(&pf.TransformFile, "transform", "", "YAML file of set, drop and rename steps applied to every item on its way to the output (docs/transform.md)")
	fl.BoolVar(&pf.SkipFailedItems, "skip-failed-items", false, "items the filter or transform fails on (an evaluation error, a bad output key) are logged and counted, and the run still succeeds")
	fl.StringVar(&pf.MFAToken, "mfa-token", "", "MFA code for the role of the table with an MFA serial (default: asked on the terminal)")
	_ = cmd.MarkFlagFilename("config-file", "yml", "yaml")
	_ = cmd.MarkFlagFilename("transform", "yml", "yaml")
}

func addTable(fl *pflag.FlagSet, side string, t *plan.Table) {
	fl.StringVar(&t.Table, side+"-table", "", "name of the "+side+" table")
	fl.StringVar(&t.Region, side+"-region", "", "region of the "+side+" table (default: AWS_REGION or the profile's)")
	fl.StringVar(&t.RoleARN, side+"-role-arn", "", "IAM role to assume for the "+side+" table")
	fl.StringVar(&t.ExternalID, side+"-external-id", "", "external ID for the "+side+" role")
	fl.StringVar(&t.Profile, side+"-profile", "", "AWS profile for the "+side+" table")
	fl.StringVar(&t.EndpointURL, side+"-endpoint-url", "", "endpoint URL for the "+side+" table (DynamoDB Local, Alternator)")
	fl.StringVar(&t.MFASerial, side+"-mfa-serial", "", "MFA device serial for assuming the "+side+" role")
}

// Load builds and validates the plan for mode. A plan file and table flags
// are mutually exclusive.
func (pf *PlanFlags) Load(cmd *cobra.Command, mode plan.Mode, stdin io.Reader) (*plan.Plan, error) {
	var changed []string
	for _, n := range tableFlagNames {
		if f := cmd.Flags().Lookup(n); f != nil && f.Changed {
			changed = append(changed, FlagSource(f))
		}
	}
	var p *plan.Plan
	switch {
	case pf.ConfigFile != "" && len(changed) > 0:
		return nil, FlagErrorf("%s and %s cannot be used together: put the tables in the plan file, or drop %s", FlagSource(cmd.Flags().Lookup("config-file")), strings.Join(changed, ", "), FlagSource(cmd.Flags().Lookup("config-file")))
	case pf.ConfigFile != "":
		var err error
		if p, err = plan.Load(pf.ConfigFile, stdin); err != nil {
			return nil, err
		}
	default:
		if pf.Input.Table == "" {
			return nil, FlagErrorf("give a plan with --config-file, or a table pair with --input-table and --output-table")
		}
		p = &plan.Plan{Entries: []plan.Entry{{Input: pf.Input, Output: pf.Output}}}
	}
	fl := cmd.Flags()
	if err := pf.applyProgram(cmd, p); err != nil {
		return nil, err
	}
	for i := range p.Entries {
		e := &p.Entries[i]
		if fl.Changed("backfill-segments") {
			e.Backfill.Segments = pf.Segments
		}
		if fl.Changed("backfill-total-segments") {
			e.Backfill.TotalSegments = pf.TotalSegments
		}
		if fl.Changed("max-wcu") {
			e.Backfill.MaxWCU = pf.MaxWCU
		}
		if fl.Changed("max-rcu") {
			e.Backfill.MaxRCU = pf.MaxRCU
		}
		if f := fl.Lookup("backfill"); f != nil && f.Changed && !pf.Backfill {
			e.Backfill.Disabled = true
		}
		if f := fl.Lookup("stream"); f != nil && f.Changed && !pf.Stream {
			e.Stream.Disabled = true
		}
		switch mode {
		case plan.ModeBackfill:
			e.Stream.Disabled = true // this command never streams
		case plan.ModeStream:
			e.Backfill.Disabled = true // this command never backfills
		}
	}
	p.Normalize()
	if err := p.Validate(mode); err != nil {
		return nil, err
	}
	return p, nil
}

// applyProgram puts --filter and --transform into the plan's entries. With
// a plan file they apply to every entry; an entry with its own filter (or
// transform) and the flag too is refused, rather than one silently
// replacing the other.
func (pf *PlanFlags) applyProgram(cmd *cobra.Command, p *plan.Plan) error {
	fl := cmd.Flags()
	var t *transform.Transform
	if fl.Changed("transform") {
		data, err := readTransformFile(pf.TransformFile)
		if err != nil {
			return err
		}
		if t, err = transform.ParseTransform(data); err != nil {
			return &UsageError{Err: fmt.Errorf("--transform %s: %w", pf.TransformFile, err)}
		}
	}
	for i := range p.Entries {
		e := &p.Entries[i]
		if fl.Changed("filter") {
			if e.Filter != "" {
				return FlagErrorf("plan entry %d (%s) has a filter of its own and %s is given too: keep one of them", i+1, e.Description(), FlagSource(fl.Lookup("filter")))
			}
			e.Filter = pf.Filter
		}
		if t != nil {
			if e.Transform != nil {
				return FlagErrorf("plan entry %d (%s) has a transform of its own and %s is given too: keep one of them", i+1, e.Description(), FlagSource(fl.Lookup("transform")))
			}
			e.Transform = t
		}
	}
	return nil
}

// readTransformFile reads a --transform file; "-" is not standard input
// (the plan may be there), and a missing file is a usage error.
func readTransformFile(path string) ([]byte, error) {
	if strings.TrimSpace(path) == "" {
		return nil, FlagErrorf("--transform needs a file name")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &UsageError{Err: fmt.Errorf("cannot read the --transform file %s: %v", path, err)}
	}
	return data, nil
}
