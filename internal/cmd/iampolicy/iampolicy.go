// Package iampolicy implements `ddbsync iam-policy`.
package iampolicy

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/pkg/iampolicy"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// Options are the inputs of one `ddbsync iam-policy` run.
type Options struct {
	IO *iostreams.IOStreams

	// Region returns the region of a table that names none, and Account
	// the account its credentials belong to (STS GetCallerIdentity).
	Region  func(ctx context.Context, t plan.Table) (string, error)
	Account func(ctx context.Context, t plan.Table) (string, error)

	Command   string // backfill, stream, sync or diff
	AccountID string
	Flags     iampolicy.Flags

	PlanFlags       cmdutil.PlanFlags // backfill, stream, sync
	CheckpointTable string            // backfill, stream, sync: --checkpoint-table

	// diff
	Master       string
	Slaves       []string
	Profile      string
	RoleARN      string
	SlaveProfile string
	SlaveRoleARN string

	// Plan is the validated plan of the run the policy is for.
	Plan *plan.Plan
}

// Which commands each policy-relevant flag applies to.
var flagCommands = map[string][]string{
	"config-file":             iampolicy.Commands,
	"account-id":              iampolicy.Commands,
	"backfill-segments":       {"backfill", "sync"},
	"backfill-total-segments": {"backfill", "sync"},
	"max-wcu":                 {"backfill", "stream", "sync"},
	"max-rcu":                 {"backfill", "sync"},
	"skip-expired":            {"backfill", "sync"},
	"create-output-table":     {"backfill", "sync"},
	"stream-view-type":        {"stream", "sync"},
	"backfill":                {"sync"},
	"stream":                  {"sync"},
	"master":                  {"diff"},
	"slave":                   {"diff"},
	"profile":                 {"diff"},
	"role-arn":                {"diff"},
	"slave-profile":           {"diff"},
	"slave-role-arn":          {"diff"},
	"write-missing":           {"diff"},
	"write-differing":         {"diff"},
	"delete-extra":            {"diff"},
	"scan-for-extra":          {"diff"},
	"checkpoint-table":        {"backfill", "stream", "sync"},
	// Accepted, so that a run's flags can be given as they are, and
	// checked like the run checks them; they change no permission (a
	// transform may need old images in the stream: noteOldImages).
	"filter":            {"backfill", "stream", "sync"},
	"transform":         {"backfill", "stream", "sync"},
	"skip-failed-items": {"backfill", "stream", "sync"},
}

// programFlags change no permission of any command: named in the refusal
// on diff, which reads and writes the same way with them.
var programFlags = map[string]bool{"filter": true, "transform": true, "skip-failed-items": true}

// NewCmdIAMPolicy builds the command; runF replaces the run in tests.
func NewCmdIAMPolicy(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{
		IO: f.IOStreams,
		Region: func(ctx context.Context, t plan.Table) (string, error) {
			c, err := f.Creds(nil).For(ctx, t)
			if err != nil {
				return "", err
			}
			return c.Region, nil
		},
		Account: func(ctx context.Context, t plan.Table) (string, error) {
			c, err := f.Creds(nil).For(ctx, t)
			if err != nil {
				return "", err
			}
			out, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.Account), nil
		},
	}
	cmd := &cobra.Command{
		Use:   "iam-policy {backfill|stream|sync|diff} [flags]",
		Short: "Print the least-privilege IAM policy for a run",
		Long: `Print the IAM policy (JSON) that exactly one ddbsync run needs: the
DynamoDB and DynamoDB Streams actions of that command with those flags, on
the ARNs of the plan's tables, and nothing else.

Give the same plan file or table flags as the run itself. Only the flags
that change the policy are accepted; performance flags such as --parallel
are not.

A filter or transform (--filter, --transform, or the plan's filter: and
transform:) needs no other permission: backfill, stream and sync accept
them, and compile them as the run does (a bad expression is exit 2), so
that the run's flags can be given as they are. One rule touches the
stream, not the policy: a transform that computes the output key from
attributes other than the input key needs a stream with old images, and
iam-policy stream and sync say so on standard error for each entry with a
transform (unless --stream-view-type names a view type with old images).
--skip-failed-items is accepted too, and changes nothing.

Table ARNs need a region and an account. The region comes from the table
(--input-region, REGION:TABLE, the plan) or else from AWS_REGION or the
profile. The account comes from the table's role_arn, or --account-id, or
else from STS GetCallerIdentity with the table's credentials; with
--account-id (or role_arn on every table) no AWS request is made.

Statements are separate per side: the input (diff: master) tables, their
streams, the output (diff: slave) tables, the checkpoint table and the
roles to assume. When the two sides use different roles, give each role
the statements of its side; the caller needs the AssumeRoles statement.

The permission tables are in docs/iam.md.

Exit status:
  0  the policy was printed
  2  invalid usage or configuration
  3  the account could not be found (STS failed; use --account-id)`,
		Example: `  # The policy of a backfill that may create the output table
  ddbsync iam-policy backfill --input-table orders --input-region us-east-1 \
      --output-region eu-west-1 --create-output-table --account-id 123456789012

  # The policy of every entry of a sync plan, account from STS
  ddbsync iam-policy sync --config-file plan.yml

  # A diff that writes missing items and deletes extra ones
  ddbsync iam-policy diff -m us-east-1:orders -s eu-west-1:orders \
      --write-missing --delete-extra --account-id 123456789012 > policy.json`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: iampolicy.Commands,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmdutil.FlagErrorf("name the command the policy is for: one of %s", strings.Join(iampolicy.Commands, ", "))
			}
			opts.Command = args[0]
			if err := opts.validate(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return iamPolicyRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	cmdutil.AddPlanFlags(cmd, &opts.PlanFlags)
	// A filter or transform changes no permission: accepted and checked
	// as the run checks them, with usages that say so. --skip-failed-items
	// changes nothing here: accepted, not shown.
	fl.Lookup("filter").Usage = "backfill, stream, sync: the run's filter, compiled and checked; it changes no permission"
	fl.Lookup("transform").Usage = "backfill, stream, sync: the run's transform file, compiled and checked; it changes no permission, but stream and sync may need old images in the stream (a note on standard error)"
	_ = fl.MarkHidden("skip-failed-items")
	fl.BoolVar(&opts.PlanFlags.Backfill, "backfill", true, "sync: --backfill=false leaves the backfill out")
	fl.BoolVar(&opts.PlanFlags.Stream, "stream", true, "sync: --stream=false leaves the stream out")
	cmdutil.AddCheckpointTableFlag(cmd, &opts.CheckpointTable)
	fl.StringVar(&opts.AccountID, "account-id", "", "AWS account ID of tables without role_arn (no STS request)")
	fl.BoolVar(&opts.Flags.SkipExpired, "skip-expired", false, "backfill, sync: the run leaves out expired items (adds DescribeTimeToLive)")
	fl.BoolVar(&opts.Flags.CreateOutputTable, "create-output-table", false, "backfill, sync: the run creates a missing output table (adds CreateTable)")
	fl.StringVar(&opts.Flags.StreamViewType, "stream-view-type", "", "stream, sync: the input stream's view type, "+strings.Join(iampolicy.StreamViewTypes, ", ")+" (default: unknown, GetItem included)")
	fl.StringVarP(&opts.Master, "master", "m", "", "diff: master table, REGION:TABLE")
	fl.StringArrayVarP(&opts.Slaves, "slave", "s", nil, "diff: slave table, REGION:TABLE (repeatable)")
	fl.StringVar(&opts.Profile, "profile", "", "diff: AWS profile for the master (and slaves, unless --slave-profile)")
	fl.StringVar(&opts.RoleARN, "role-arn", "", "diff: IAM role assumed for the master (and slaves, unless --slave-role-arn)")
	fl.StringVar(&opts.SlaveProfile, "slave-profile", "", "diff: AWS profile for the slaves")
	fl.StringVar(&opts.SlaveRoleARN, "slave-role-arn", "", "diff: IAM role assumed for the slaves")
	fl.BoolVar(&opts.Flags.WriteMissing, "write-missing", false, "diff: the run writes missing items (adds PutItem)")
	fl.BoolVar(&opts.Flags.WriteDiffering, "write-differing", false, "diff: the run overwrites differing items (adds PutItem)")
	fl.BoolVar(&opts.Flags.DeleteExtra, "delete-extra", false, "diff: the run deletes extra items (adds DeleteItem)")
	fl.BoolVar(&opts.Flags.ScanForExtra, "scan-for-extra", false, "diff: the run reports extra items (adds nothing: every diff may scan the slaves)")
	_ = cmd.RegisterFlagCompletionFunc("stream-view-type", cobra.FixedCompletions(iampolicy.StreamViewTypes, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *Options) validate(cmd *cobra.Command) error {
	known := false
	for _, c := range iampolicy.Commands {
		known = known || c == o.Command
	}
	if !known {
		return cmdutil.FlagErrorf("%q has no policy; allowed: %s", o.Command, strings.Join(iampolicy.Commands, ", "))
	}
	fl := cmd.Flags()
	var err error
	fl.Visit(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		cmds, ok := flagCommands[f.Name]
		if !ok {
			cmds = []string{"backfill", "stream", "sync"} // the table flags
		}
		for _, c := range cmds {
			if c == o.Command {
				return
			}
		}
		if programFlags[f.Name] && o.Command == iampolicy.Diff {
			err = cmdutil.FlagErrorf("--%s does not change the policy of a diff (it reads and writes with the same actions with or without a filter or transform): leave it out", f.Name)
			return
		}
		err = cmdutil.FlagErrorf("--%s does not apply to `iam-policy %s`; it is a flag of %s", f.Name, o.Command, strings.Join(cmds, ", "))
	})
	if err != nil {
		return err
	}
	if o.AccountID != "" && !iampolicy.ValidAccount(o.AccountID) {
		return cmdutil.FlagErrorf("--account-id %q is not an AWS account ID (12 digits, e.g. 123456789012)", o.AccountID)
	}
	if v := o.Flags.StreamViewType; v != "" {
		ok := false
		for _, t := range iampolicy.StreamViewTypes {
			ok = ok || strings.EqualFold(t, v)
		}
		if !ok {
			return cmdutil.FlagErrorf("--stream-view-type %q: allowed: %s", v, strings.Join(iampolicy.StreamViewTypes, ", "))
		}
	}
	if o.Command != iampolicy.Diff {
		if o.Plan, err = o.PlanFlags.Load(cmd, plan.Mode(o.Command), o.IO.In); err != nil {
			return err
		}
		return cmdutil.ApplyCheckpointTable(o.Plan, o.CheckpointTable, plan.Mode(o.Command))
	}
	return o.loadDiffPlan(cmd)
}

func (o *Options) loadDiffPlan(cmd *cobra.Command) error {
	fl := cmd.Flags()
	var p *plan.Plan
	if o.PlanFlags.ConfigFile != "" {
		var clash []string
		for _, n := range []string{"master", "slave", "profile", "role-arn", "slave-profile", "slave-role-arn"} {
			if fl.Changed(n) {
				clash = append(clash, "--"+n)
			}
		}
		if len(clash) > 0 {
			return cmdutil.FlagErrorf("--config-file and %s cannot be used together: put the tables in the plan file, or drop --config-file", strings.Join(clash, ", "))
		}
		var err error
		if p, err = plan.Load(o.PlanFlags.ConfigFile, o.IO.In); err != nil {
			return err
		}
	} else {
		if o.Master == "" {
			return cmdutil.FlagErrorf("give the master table with --master REGION:TABLE (or a plan with --config-file)")
		}
		if len(o.Slaves) == 0 {
			return cmdutil.FlagErrorf("give at least one slave table with --slave REGION:TABLE")
		}
		m, err := parseTable("master", o.Master)
		if err != nil {
			return err
		}
		m.Profile, m.RoleARN = o.Profile, o.RoleARN
		sp, sr := o.SlaveProfile, o.SlaveRoleARN
		if sp == "" && sr == "" {
			sp, sr = o.Profile, o.RoleARN
		}
		p = &plan.Plan{}
		for _, s := range o.Slaves {
			st, err := parseTable("slave", s)
			if err != nil {
				return err
			}
			st.Profile, st.RoleARN = sp, sr
			p.Entries = append(p.Entries, plan.Entry{Input: m, Output: st})
		}
	}
	p.Normalize()
	if err := p.Validate(plan.ModeDiff); err != nil {
		return err
	}
	o.Plan = p
	return nil
}

func parseTable(flag, s string) (plan.Table, error) {
	region, table, ok := strings.Cut(s, ":")
	if !ok || region == "" || table == "" || strings.Contains(table, ":") {
		return plan.Table{}, cmdutil.FlagErrorf("--%s %q: expected REGION:TABLE, e.g. us-east-1:orders", flag, s)
	}
	return plan.Table{Region: region, Table: table}, nil
}

// roleAccount is the account of arn:PARTITION:iam::ACCOUNT:role/NAME.
func roleAccount(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) >= 6 && parts[2] == "iam" && iampolicy.ValidAccount(parts[4]) {
		return parts[4]
	}
	return ""
}

func iamPolicyRun(ctx context.Context, o *Options) error {
	accounts := map[string]string{} // by credentials: one STS call each
	resolve := func(t plan.Table) (iampolicy.Table, error) {
		r := iampolicy.Table{Name: t.Table, Region: t.Region, RoleARN: t.RoleARN, Account: roleAccount(t.RoleARN)}
		if r.Region == "" {
			region, err := o.Region(ctx, t)
			if err != nil {
				return r, err
			}
			r.Region = region
		}
		if r.Account == "" {
			r.Account = o.AccountID
		}
		if r.Account == "" {
			key := strings.Join([]string{r.Region, t.Profile, t.RoleARN, t.EndpointURL}, "\x00")
			if acct, ok := accounts[key]; ok {
				r.Account = acct
			} else {
				acct, err := o.Account(ctx, t)
				if err != nil {
					return r, fmt.Errorf("cannot find the AWS account of table %s with STS GetCallerIdentity: %w; pass it with --account-id", t, err)
				}
				accounts[key] = acct
				r.Account = acct
			}
		}
		return r, nil
	}
	run := iampolicy.Run{Command: o.Command, Flags: o.Flags}
	for _, e := range o.Plan.Entries {
		in, err := resolve(e.Input)
		if err != nil {
			return err
		}
		out, err := resolve(e.Output)
		if err != nil {
			return err
		}
		run.Entries = append(run.Entries, iampolicy.Entry{Input: in, Output: out, Backfill: !e.Backfill.Disabled, Stream: !e.Stream.Disabled})
	}
	// diff keeps no checkpoints; the other commands keep them (and their
	// leases) in the plan's checkpoint_table when it has one.
	if cp := o.Plan.CheckpointTable; cp != nil && o.Command != iampolicy.Diff {
		r, err := resolve(*cp)
		if err != nil {
			return err
		}
		run.Checkpoint = &r
	}
	p, err := iampolicy.Build(run)
	if err != nil {
		return cmdutil.Usagef("%v", err)
	}
	o.noteOldImages()
	_, err = o.IO.Out.Write(p.JSON())
	return err
}

// noteOldImages says, on standard error, which entries of a stream or
// sync need the input's stream to carry old images: those whose
// transform may compute the output key from attributes other than the
// input key (the output table's key is not known here; stream and sync
// check it at start). The policy itself is the same.
func (o *Options) noteOldImages() {
	if o.Command != "stream" && o.Command != "sync" {
		return
	}
	switch o.Flags.StreamViewType {
	case "NEW_AND_OLD_IMAGES", "OLD_IMAGE":
		return
	}
	for _, e := range o.Plan.Entries {
		if e.Transform == nil || e.Stream.Disabled {
			continue
		}
		fmt.Fprintf(o.IO.ErrOut, "Note: %s has a transform: if it computes the output table's key from attributes other than the input key, the input table's stream must carry old images (view type NEW_AND_OLD_IMAGES or OLD_IMAGE), or %s refuses to start; the permissions are the same\n",
			e.Description(), o.Command)
	}
}
