// Package diff implements `ddbsync diff`: compare a master table with
// slave tables, report the differences, and optionally repair them.
package diff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/logging"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/diff"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/retry"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// Output formats of --output.
var outputFormats = []string{"text", "json"}

// Options are the inputs of one `ddbsync diff` run.
type Options struct {
	Factory *cmdutil.Factory

	// Tables: from --master/--slave (with the credential flags) or from
	// --config-file.
	Master     string
	Slaves     []string
	ConfigFile string

	Profile, RoleARN, MFASerial, MFAToken                     string
	SlaveProfile, SlaveRoleARN, SlaveMFASerial, SlaveMFAToken string

	WriteMissing   bool
	WriteDiffering bool
	DeleteExtra    bool
	ScanForExtra   bool

	Ignore           []string
	Parallel         int
	ScanLimit        int
	BatchReadLimit   int
	StartingKey      string
	VersionAttribute string
	Verbose          bool
	Report           string
	Output           string
	Method           string
	MemoryLimit      string

	// Filter (--filter) and TransformFile (--transform): the migration's
	// definition; the master is compared as it would write it.
	Filter          string
	TransformFile   string
	SkipFailedItems bool

	memoryLimit int64              // MemoryLimit in bytes
	program     *transform.Program // Filter and TransformFile, compiled

	ignoreAtt []string // --ignore-att, merged into Ignore

	// Set by validation.
	plan *plan.Plan
}

// NewCmdDiff builds the command; runF replaces the run in tests.
func NewCmdDiff(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "diff --master REGION:TABLE --slave REGION:TABLE... [flags]",
		Short: "Compare a master table with slave tables; optionally repair them",
		Long: `Compare a master DynamoDB table with one or more slave tables, report every
item that is missing from a slave, differs, or (with --scan-for-extra or
--delete-extra) exists only in a slave, and optionally repair them.

With --method merge (the usual choice), the master and every slave are
scanned at once (--parallel segments each) and the scans are compared by
key, spilling to the state directory past --memory-limit; every difference
found is read again from both sides with consistent reads, and only what
is confirmed is reported or repaired. With --method lookup the master is
scanned and every key looked up in each slave with BatchGetItem, cheaper
only for a small master beside a much larger slave. By default (auto) the
method is chosen from the table sizes, and the log shows both estimates
in read capacity units. Comparison is semantic:
attribute order never matters, numbers compare by exact decimal value
(all 38 digits, "1.50" equals "1.5"), string/number/binary sets compare
as sets, maps and lists deeply. Keys of every type (S, N, B) are matched
exactly.

Without a repair flag nothing is written. Before a repair, the item is read
again from both sides with consistent reads and only what still differs
is repaired. Every repair write is conditional on the slave item still
being what diff read (or, with --version-attribute, on its version), so a
change someone else makes during the diff is never overwritten: such
items are counted as "skipped (changed during diff)". After each put the
master is read again: if it deleted the item meanwhile, the write is
undone (a delete conditional on the slave item being what diff wrote);
if it deleted or changed it, the repair counts as skipped, not written.

With --verbose every difference is logged with rclone check's sigils:
"+" missing on the slave, "*" differing, "-" extra on the slave, "!" error
or a master item the filter or transform failed on ("=" equal items at
--log-level debug).

An interrupted merge diff (SIGINT, SIGTERM or SIGKILL) continues where it
stopped when run again with the same arguments and --state-dir: the scan
positions of every segment and the spilled keys are checkpointed after
every page. With --method lookup the log shows the scan position of a
serial scan so an interrupted run can continue with --starting-key.

With --filter and --transform (the same as the migration's, see
docs/transform.md) the master is compared as the migration writes it:
master items the filter rejects are left out, the others are transformed
and matched with slave items by the slaves' key, which the transform may
compute (the slaves then have another key schema). Repairs write
transformed items. A slave item is extra when no master item maps to it;
when the transform drops the master's key attributes from the output
items, a slave item no longer names its master item, so extra items are
then only reported (merge method) and --delete-extra is refused. Master
items the filter or transform fails on are logged with their key, counted
as failed and written to the --report file (kind failed, with the master
item's key and the reason); they fail the run (exit 3) unless
--skip-failed-items.
The expressions are checked before anything is read.

Logs go to standard output; with --output json the summary object is
printed on standard output and the logs go to standard error instead.

EXIT STATUS
  0    the tables are in sync, or every difference was repaired
  1    differences remain (found and not repaired, skipped or failed)
  2    invalid usage: bad flags, a missing table, key schemas that differ;
       nothing was read or written
  3    runtime failure (a table failed or disappeared during the run), or
       master items the filter or transform failed on (without
       --skip-failed-items)
  130  interrupted (run it again to continue; lookup: the log names the
       --starting-key to resume a serial scan)`,
		Example: `  # Report the differences between a table and its replica (dry run)
  ddbsync diff -m us-east-1:orders -s eu-west-1:orders

  # Compare with two replicas, 8 scan segments, logging every difference
  ddbsync diff -m us-east-1:orders -s eu-west-1:orders -s ap-south-1:orders \
      --parallel 8 --verbose

  # Repair everything: write missing and differing items, delete extra ones
  ddbsync diff -m us-east-1:orders -s eu-west-1:orders \
      --write-missing --write-differing --delete-extra

  # Ignore the attributes 2017 Global Tables add; report to a file; JSON summary
  ddbsync diff -m us-east-1:orders -s eu-west-1:orders --ignore 'aws:rep:*' \
      --report diff.jsonl --output json

  # The slave lives in another account
  ddbsync diff -m us-east-1:orders -s us-east-1:orders \
      --slave-role-arn arn:aws:iam::123456789012:role/replica-reader

  # Force the lookup method (small master, large slave), e.g. to resume
  # a serial scan after the key the log showed
  ddbsync diff -m us-east-1:orders -s eu-west-1:orders \
      --starting-key '{"id":{"S":"order-4711"}}'

  # Check a migration: the same filter and transform as the copy, into a
  # table keyed by the computed attribute id
  ddbsync diff -m us-east-1:orders -s us-east-1:orders-acme \
      --filter 'item.tenant == "acme"' --transform acme.yml --scan-for-extra

  # Tables from a plan file: each entry's input is the master, output a slave
  ddbsync diff --config-file plan.yml --write-missing

  # Against DynamoDB Local
  ddbsync diff --endpoint-url http://localhost:8000 -m us-east-1:orders -s us-east-1:orders-copy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return diffRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Master, "master", "m", "", "master table, REGION:TABLE")
	fl.StringArrayVarP(&opts.Slaves, "slave", "s", nil, "slave table, REGION:TABLE (repeatable)")
	fl.StringVarP(&opts.ConfigFile, "config-file", "c", "", "plan file (YAML): each entry's input is the master (the same in all entries), its output a slave; - reads standard input")
	fl.BoolVar(&opts.WriteMissing, "write-missing", false, "put master items that a slave lacks")
	fl.BoolVar(&opts.WriteDiffering, "write-differing", false, "overwrite slave items that differ from the master")
	fl.BoolVar(&opts.DeleteExtra, "delete-extra", false, "scan each slave and delete items the master lacks")
	fl.BoolVar(&opts.ScanForExtra, "scan-for-extra", false, "scan each slave for items the master lacks and report them (no deletes)")
	fl.StringArrayVar(&opts.Ignore, "ignore", nil, "attribute to leave out of comparisons and repairs; globs allowed, e.g. 'aws:rep:*' (repeatable)")
	fl.StringArrayVar(&opts.ignoreAtt, "ignore-att", nil, "same as --ignore")
	fl.IntVar(&opts.Parallel, "parallel", 1, "scan segments of the master (and slaves) scanned at once; 1 is a serial scan")
	fl.IntVar(&opts.ScanLimit, "scan-limit", 0, "items per Scan page (0: DynamoDB's 1 MB pages; the merge method cuts them to fit --memory-limit)")
	fl.IntVar(&opts.BatchReadLimit, "batch-read-limit", diff.DefaultBatchReadLimit, fmt.Sprintf("keys per BatchGetItem request (1 to %d)", diff.MaxBatchRead))
	fl.StringVar(&opts.StartingKey, "starting-key", "", `resume a serial scan after this key, in DynamoDB JSON as the log prints it, e.g. '{"id":{"S":"abc"}}'`)
	fl.StringVar(&opts.VersionAttribute, "version-attribute", "", "number attribute holding the item version: repairs are conditional on it and never replace a newer slave version")
	fl.StringVar(&opts.Profile, "profile", "", "AWS profile for the master (and slaves, unless --slave-profile)")
	fl.StringVar(&opts.RoleARN, "role-arn", "", "IAM role to assume for the master (and slaves, unless --slave-role-arn)")
	fl.StringVar(&opts.MFASerial, "mfa-serial", "", "MFA device serial for assuming --role-arn")
	fl.StringVar(&opts.MFAToken, "mfa-token", "", "MFA code for --mfa-serial (asked on the terminal when missing)")
	fl.StringVar(&opts.SlaveProfile, "slave-profile", "", "AWS profile for the slaves")
	fl.StringVar(&opts.SlaveRoleARN, "slave-role-arn", "", "IAM role to assume for the slaves")
	fl.StringVar(&opts.SlaveMFASerial, "slave-mfa-serial", "", "MFA device serial for assuming --slave-role-arn")
	fl.StringVar(&opts.SlaveMFAToken, "slave-mfa-token", "", "MFA code for --slave-mfa-serial")
	fl.BoolVarP(&opts.Verbose, "verbose", "v", false, "log every difference")
	fl.StringVar(&opts.Report, "report", "", "write every difference to FILE as JSON lines (kind, slave, key, attributes, action, reason); kind failed: a master item the filter or transform failed on")
	cmdutil.StringEnumFlag(cmd, fl, &opts.Method, "method", diff.MethodAuto, diff.Methods, "how to compare: merge two scans, look master keys up in the slaves, or choose from the table sizes")
	fl.StringVar(&opts.MemoryLimit, "memory-limit", "256MiB", "memory of the merge method, in what Go spends: the scanned keys spill to the state directory past a sixteenth of it, Scan pages are cut to fit an eighth (e.g. 64MiB, 1GiB)")
	fl.StringVar(&opts.Filter, "filter", "", `compare only the master items for which this CEL expression is true, e.g. 'item.tenant == "acme"' (docs/transform.md)`)
	fl.StringVar(&opts.TransformFile, "transform", "", "YAML file of set, drop and rename steps applied to every master item before it is compared, as the migration applies them (docs/transform.md)")
	fl.BoolVar(&opts.SkipFailedItems, "skip-failed-items", false, "master items the filter or transform fails on (an evaluation error, a bad output key) are logged and counted, and the run still succeeds")
	cmdutil.StringEnumFlag(cmd, fl, &opts.Output, "output", "text", outputFormats, "summary format; json prints one object on standard output and sends the logs to standard error")
	_ = cmd.MarkFlagFilename("config-file", "yml", "yaml")
	_ = cmd.MarkFlagFilename("report")
	_ = cmd.MarkFlagFilename("transform", "yml", "yaml")
	return cmd
}

// parseTable parses REGION:TABLE.
func parseTable(flag, s string) (plan.Table, error) {
	region, table, ok := strings.Cut(s, ":")
	if !ok || region == "" || table == "" || strings.Contains(table, ":") {
		return plan.Table{}, cmdutil.FlagErrorf("--%s %q: expected REGION:TABLE, e.g. us-east-1:orders", flag, s)
	}
	return plan.Table{Region: region, Table: table}, nil
}

func (o *Options) validate(cmd *cobra.Command) error {
	fl := cmd.Flags()
	if err := o.checkFlags(); err != nil {
		return err
	}
	if err := o.compileProgram(fl.Changed("filter"), fl.Changed("transform")); err != nil {
		return err
	}
	if fl.Changed("version-attribute") && strings.TrimSpace(o.VersionAttribute) == "" {
		return cmdutil.FlagErrorf("--version-attribute needs an attribute name")
	}
	if o.MFAToken != "" && o.MFASerial == "" {
		return cmdutil.FlagErrorf("--mfa-token needs --mfa-serial (the MFA device of --role-arn)")
	}
	if o.SlaveMFAToken != "" && o.SlaveMFASerial == "" {
		return cmdutil.FlagErrorf("--slave-mfa-token needs --slave-mfa-serial (the MFA device of --slave-role-arn)")
	}

	var p *plan.Plan
	var err error
	if o.ConfigFile != "" {
		p, err = o.planFile(fl)
	} else {
		p, err = o.flagPlan()
	}
	if err != nil {
		return err
	}
	if err := p.Validate(plan.ModeDiff); err != nil {
		return err
	}
	if err := o.planProgram(p, fl); err != nil {
		return err
	}
	seen := map[string]int{}
	for i, e := range p.Entries {
		if j, ok := seen[e.Output.Identity()]; ok {
			return cmdutil.FlagErrorf("slave %s is given twice (entries %d and %d)", e.Output, j, i+1)
		}
		seen[e.Output.Identity()] = i + 1
	}
	o.plan = p
	return nil
}

// checkFlags checks the values of the flags that stand alone: output,
// segments, page sizes, method, memory limit, starting key and ignored
// attributes.
func (o *Options) checkFlags() error {
	if !contains(outputFormats, o.Output) {
		return cmdutil.FlagErrorf("--output %q: allowed: %s", o.Output, strings.Join(outputFormats, " or "))
	}
	if o.Parallel < 1 || o.Parallel > plan.MaxTotalSegments {
		return cmdutil.FlagErrorf("--parallel is %d; allowed: 1 (a serial scan) to %d", o.Parallel, plan.MaxTotalSegments)
	}
	if o.ScanLimit < 0 || o.ScanLimit > 1<<31-1 {
		return cmdutil.FlagErrorf("--scan-limit is %d; allowed: 0 (DynamoDB's 1 MB pages) or a positive number of items", o.ScanLimit)
	}
	if o.BatchReadLimit < 1 || o.BatchReadLimit > diff.MaxBatchRead {
		return cmdutil.FlagErrorf("--batch-read-limit is %d; allowed: 1 to %d (BatchGetItem's limit)", o.BatchReadLimit, diff.MaxBatchRead)
	}
	if !contains(diff.Methods, o.Method) {
		return cmdutil.FlagErrorf("--method %q: allowed: %s", o.Method, strings.Join(diff.Methods, ", "))
	}
	lim, err := parseSize(o.MemoryLimit)
	if err != nil || lim < 1<<20 {
		return cmdutil.FlagErrorf("--memory-limit %q: expected a size of at least 1MiB, e.g. 256MiB or 2GiB", o.MemoryLimit)
	}
	o.memoryLimit = lim
	if o.StartingKey != "" {
		if o.Method == diff.MethodMerge {
			return cmdutil.FlagErrorf("--starting-key resumes the lookup method's serial scan; it cannot be combined with --method merge")
		}
		if o.Parallel > 1 {
			return cmdutil.FlagErrorf("--starting-key resumes a serial scan and cannot be combined with --parallel %d; use --parallel 1", o.Parallel)
		}
		if _, err := diff.ParseKeyJSON(o.StartingKey); err != nil {
			return cmdutil.FlagErrorf("--starting-key: %v", err)
		}
	}
	o.Ignore = append(o.Ignore, o.ignoreAtt...)
	o.ignoreAtt = nil
	for _, p := range o.Ignore {
		if p == "" {
			return cmdutil.FlagErrorf("--ignore needs an attribute name or glob, e.g. 'aws:rep:*'")
		}
		if _, err := path.Match(p, ""); err != nil {
			return cmdutil.FlagErrorf("--ignore %q is not a valid glob (use * ? and [...]): %v", p, err)
		}
	}
	return nil
}

// planFile loads --config-file: its entries name one master (input) and
// its slaves (outputs); the table flags cannot be added to it.
func (o *Options) planFile(fl *pflag.FlagSet) (*plan.Plan, error) {
	var clash []string
	for _, n := range []string{"master", "slave", "profile", "role-arn", "mfa-serial", "slave-profile", "slave-role-arn", "slave-mfa-serial"} {
		if fl.Changed(n) {
			clash = append(clash, "--"+n)
		}
	}
	if len(clash) > 0 {
		return nil, cmdutil.FlagErrorf("--config-file and %s cannot be used together: put the tables in the plan file, or drop --config-file", strings.Join(clash, ", "))
	}
	p, err := plan.Load(o.ConfigFile, o.Factory.IOStreams.In)
	if err != nil {
		return nil, err
	}
	p.Normalize()
	for i, e := range p.Entries {
		if e.Input.Identity() != p.Entries[0].Input.Identity() {
			return nil, &plan.Error{Msg: fmt.Sprintf("plan entry %d has master (input) %s but entry 1 has %s: diff compares one master with its slaves, so every entry must name the same input", i+1, e.Input, p.Entries[0].Input)}
		}
	}
	return p, nil
}

// flagPlan is the plan of --master and --slave: one entry per slave, the
// slaves reached with the --slave-* credentials (or the master's).
func (o *Options) flagPlan() (*plan.Plan, error) {
	if o.Master == "" {
		return nil, cmdutil.FlagErrorf("give the master table with --master REGION:TABLE (or a plan with --config-file)")
	}
	if len(o.Slaves) == 0 {
		return nil, cmdutil.FlagErrorf("give at least one slave table with --slave REGION:TABLE")
	}
	m, err := parseTable("master", o.Master)
	if err != nil {
		return nil, err
	}
	m.Profile, m.RoleARN, m.MFASerial = o.Profile, o.RoleARN, o.MFASerial
	sp, sr, sm := o.SlaveProfile, o.SlaveRoleARN, o.SlaveMFASerial
	if sp == "" && sr == "" {
		sp, sr, sm = o.Profile, o.RoleARN, o.MFASerial
	}
	p := &plan.Plan{}
	for _, s := range o.Slaves {
		st, err := parseTable("slave", s)
		if err != nil {
			return nil, err
		}
		st.Profile, st.RoleARN, st.MFASerial = sp, sr, sm
		p.Entries = append(p.Entries, plan.Entry{Input: m, Output: st})
	}
	p.Normalize()
	return p, nil
}

// compileProgram reads the --transform file and compiles it with
// --filter: a syntax or type error is a usage error naming the
// expression and its position, found before anything is read.
func (o *Options) compileProgram(filter, transformFile bool) error {
	if !filter && !transformFile {
		return nil
	}
	if filter && strings.TrimSpace(o.Filter) == "" {
		return cmdutil.FlagErrorf(`--filter needs a CEL expression, e.g. 'item.tenant == "acme"'`)
	}
	spec := transform.Spec{Filter: o.Filter}
	if transformFile {
		if strings.TrimSpace(o.TransformFile) == "" {
			return cmdutil.FlagErrorf("--transform needs a file name")
		}
		data, err := os.ReadFile(o.TransformFile)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return cmdutil.Usagef("cannot read the --transform file %s: %v", o.TransformFile, err)
		}
		if spec.Transform, err = transform.ParseTransform(data); err != nil {
			return cmdutil.Usagef("--transform %s: %w", o.TransformFile, err)
		}
	}
	prg, err := transform.Compile(spec)
	var ce *transform.CompileError
	switch {
	case errors.As(err, &ce) && ce.Where == "filter":
		return cmdutil.Usagef("--filter: %w", err)
	case err != nil:
		return cmdutil.Usagef("--transform %s: %w", o.TransformFile, err)
	}
	o.program = prg
	return nil
}

// planProgram takes the filter and transform of a plan file's entries.
// diff runs the master through one program and compares the result with
// every slave, so the entries must all have the same one (or none), and
// --filter/--transform cannot be added to entries that have their own.
func (o *Options) planProgram(p *plan.Plan, fl *pflag.FlagSet) error {
	var fps []string
	var prg *transform.Program
	for i, e := range p.Entries {
		if !e.HasProgram() {
			fps = append(fps, "")
			continue
		}
		for _, name := range []string{"filter", "transform"} {
			if fl.Changed(name) {
				return cmdutil.FlagErrorf("plan entry %d (%s) has a filter or transform of its own and --%s is given too: keep one of them", i+1, e.Description(), name)
			}
		}
		var err error
		if prg, err = e.Program(); err != nil {
			return &plan.Error{Msg: fmt.Sprintf("plan entry %d: %v", i+1, err)}
		}
		fps = append(fps, prg.Fingerprint())
	}
	for i := range fps {
		if fps[i] != fps[0] {
			return &plan.Error{Msg: fmt.Sprintf("plan entries 1 and %d have different filters or transforms: diff compares one master, filtered and transformed once, with every slave; give every entry the same filter and transform (or run one diff per definition)", i+1)}
		}
	}
	if prg != nil {
		o.program = prg
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// jsonSummary is the --output json object.
type jsonSummary struct {
	Master          string             `json:"master"`
	Slaves          []diff.SlaveResult `json:"slaves"`
	DurationSeconds float64            `json:"duration_seconds"`
}

func diffRun(ctx context.Context, o *Options) error {
	f := o.Factory
	ios := f.IOStreams
	if o.Output == "json" {
		// Standard output carries only the JSON object: the logs (and the
		// progress log) go to standard error.
		defer f.LogWriter().SetOutput(ios.ErrOut)()
	}
	log, err := f.Logger()
	if err != nil {
		return err
	}

	cfg, reg, err := o.config(ctx, log)
	if err != nil {
		return err
	}
	d, err := diff.Check(ctx, cfg)
	if err != nil {
		return err
	}
	// The report file is created only once every check passed.
	if o.Report != "" {
		rf, err := os.Create(o.Report)
		if err != nil {
			return cmdutil.Usagef("--report: cannot create %s: %v", o.Report, err)
		}
		defer rf.Close()
		d.SetReport(rf)
	}

	stop := f.Status(ctx, reg, "diff")
	res, runErr := d.Run(ctx)
	stop()
	logSummary(log, res)
	var failed *diff.FailedItemsError
	if runErr != nil && !errors.As(runErr, &failed) {
		return runErr
	}
	if o.Output == "json" {
		if err := writeJSON(ios.Out, res); err != nil {
			return err
		}
	}
	if failed != nil {
		// Exit 3: the comparison is incomplete.
		return runErr
	}
	if res.Remaining() > 0 {
		if o.Output != "json" {
			log.Info(fmt.Sprintf("%d difference(s) remain", res.Remaining()))
		}
		return &cmdutil.ExitError{Code: cmdutil.ExitDifferences}
	}
	return nil
}

// config is the diff of the plan: the master's and slaves' clients
// (credentials from the flags or the plan, MFA codes from --mfa-token and
// --slave-mfa-token) and the engine's settings from the flags; reg holds
// each slave's counters.
func (o *Options) config(ctx context.Context, log *zap.Logger) (diff.Config, *stats.Registry, error) {
	f := o.Factory
	tokens := map[string]string{}
	if o.MFASerial != "" && o.MFAToken != "" {
		tokens[o.MFASerial] = o.MFAToken
	}
	if o.SlaveMFASerial != "" && o.SlaveMFAToken != "" {
		tokens[o.SlaveMFASerial] = o.SlaveMFAToken
	}
	prov := f.Creds(tokens)

	masterRef := o.plan.Entries[0].Input
	mc, err := prov.For(ctx, masterRef)
	if err != nil {
		return diff.Config{}, nil, err
	}
	cfg := diff.Config{
		Names:            diffOptionNames,
		Master:           diff.Table{Name: masterRef.Table, Label: mc.Region + ":" + masterRef.Table, Client: mc.DynamoDB},
		Method:           o.Method,
		MemoryLimit:      o.memoryLimit,
		StateDir:         f.Globals.StateDir,
		TotalSegments:    o.Parallel,
		PageSize:         int32(o.ScanLimit),
		BatchReadLimit:   o.BatchReadLimit,
		WriteMissing:     o.WriteMissing,
		WriteDiffering:   o.WriteDiffering,
		DeleteExtra:      o.DeleteExtra,
		ScanForExtra:     o.ScanForExtra,
		Ignore:           o.Ignore,
		VersionAttribute: strings.TrimSpace(o.VersionAttribute),
		Verbose:          o.Verbose,
		Program:          o.program,
		SkipFailedItems:  o.SkipFailedItems,
		Logger:           log,
		// Unprocessed keys and throttling beyond the SDK's retries back
		// off from the global --retry-delay-base.
		Backoff: retry.Backoff{Base: f.Globals.RetryDelayBase, Max: creds.DefaultMaxBackoff},
	}
	if o.StartingKey != "" {
		if cfg.StartingKey, err = diff.ParseKeyJSON(o.StartingKey); err != nil {
			return diff.Config{}, nil, cmdutil.FlagErrorf("--starting-key: %v", err)
		}
	}
	reg := stats.NewRegistry()
	for _, e := range o.plan.Entries {
		sc, err := prov.For(ctx, e.Output)
		if err != nil {
			return diff.Config{}, nil, err
		}
		label := sc.Region + ":" + e.Output.Table
		cfg.Slaves = append(cfg.Slaves, diff.Table{
			Name: e.Output.Table, Label: label, Client: sc.DynamoDB,
			Stats:  reg.Add(stats.NewEntry(cfg.Master.Label, label)),
			Logger: logging.ForEntry(log, cfg.Master.Label, label),
		})
	}
	return cfg, reg, nil
}

func writeJSON(w io.Writer, res diff.Result) error {
	slaves := res.Slaves
	if slaves == nil {
		slaves = []diff.SlaveResult{}
	}
	enc := json.NewEncoder(w)
	return enc.Encode(jsonSummary{Master: res.Master, Slaves: slaves, DurationSeconds: res.Duration.Seconds()})
}

func logSummary(log *zap.Logger, res diff.Result) {
	for _, s := range res.Slaves {
		logging.ForEntry(log, res.Master, s.Slave).Info(fmt.Sprintf(
			"summary: scanned %d, matching %d, missing %d, differing %d, extra %d, written %d, deleted %d, skipped (changed during diff) %d, errors %d, failed %d, filtered out %d; %s; method %s, %d candidate(s) resolved on re-read; consumed %.1f RCU, %.1f WCU; %d retries (%d throttled)",
			s.Scanned, s.Matching, s.Missing, s.Differing, s.Extra, s.Written, s.Deleted, s.Skipped, s.Errors, s.Failed, s.FilteredOut,
			res.Duration.Round(time.Millisecond), s.Method, s.CandidatesResolved, s.ConsumedRCU, s.ConsumedWCU, s.Retries, s.Throttles))
	}
}

// parseSize parses a size in bytes with an optional unit: KiB, MiB, GiB
// (or K, M, G, KB, MB, GB, all powers of 1024).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	shift := map[string]uint{"": 0, "B": 0, "K": 10, "KB": 10, "KIB": 10, "M": 20, "MB": 20, "MIB": 20, "G": 30, "GB": 30, "GIB": 30}
	sh, ok := shift[strings.ToUpper(strings.TrimSpace(s[i:]))]
	if !ok || n > (1<<62)>>sh {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return n << sh, nil
}

// diffOptionNames are the flags of diff.Config's options, for the engine's
// messages.
var diffOptionNames = job.Names{
	"Slaves":           "--slave",
	"Master":           "--master",
	"Ignore":           "--ignore",
	"TotalSegments":    "--parallel",
	"StartingKey":      "--starting-key",
	"StateDir":         "--state-dir",
	"VersionAttribute": "--version-attribute",
	"DeleteExtra":      "--delete-extra",
	"ScanForExtra":     "--scan-for-extra",
	"Method":           "--method",
	"SkipFailedItems":  "--skip-failed-items",
}
