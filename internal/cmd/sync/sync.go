// Package sync implements `ddbsync sync`.
package sync

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/cmd/shared"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/stream"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

// Options are the inputs of one `ddbsync sync` run.
type Options struct {
	Factory *cmdutil.Factory
	Ctx     context.Context

	// Plan is the validated plan (from --config-file or the table flags).
	Plan *plan.Plan

	PlanFlags          cmdutil.PlanFlags
	LeaseFlags         cmdutil.LeaseFlags
	CreateOutputTable  bool
	CreateOutputStream bool
	SkipExpired        bool
	SkipTTLDeletes     bool
	UntilCaughtUp      bool
	DeleteExtra        bool
	// Output is --output and --dry-run.
	Output cmdutil.OutputFlags

	// Tune adjusts each entry's stream configuration (tests).
	Tune func(*stream.Config)
}

// NewCmdSync builds the command; runF replaces the run in tests.
func NewCmdSync(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Copy the input table, then keep applying its stream",
		Long: `Copy each plan entry's input table to its output table (as backfill does),
then apply the input's DynamoDB Stream (as stream does), with no change
lost in between: before the copy starts, sync records the stream and the
time; afterwards it applies every change made since then. Entries run side
by side.

The input table needs a stream before sync starts (a stream enabled later
cannot cover the copy). Enable one with:
  aws dynamodb update-table --table-name TABLE \
      --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES

The stream keeps changes for 24 hours: the copy must finish within that,
or sync stops with an error rather than leave a gap (raise --max-wcu, or
share the copy between machines with --checkpoint-table).

Across runs: a sync copies the table under its own record of the stream
and the time (T0). Progress made before T0 — an earlier backfill of the
same entry, or a sync with the stream disabled — never counts: changes
made since that copy would be in neither. sync then copies the table
again and, after the copy, deletes the output items the input lacks
(leftovers of the earlier copy), each absence confirmed by a consistent
read and each delete conditional on the output item being unchanged.
An output table that already holds items of another origin keeps the
ones the input lacks (sync warns); --delete-extra deletes them the same
way. Once caught up, the output equals the input. With --backfill=false
the stream is applied from its oldest record over a copy made by another
run: a copy of the entry in the state must be finished and have begun
after the stream was enabled, less than 23 hours ago (otherwise exit 2).

Progress is checkpointed in the state directory (--state-dir). Interrupted
during the copy, sync exits 130 and the same command resumes the copy;
interrupted while streaming, it saves its checkpoints and exits 0, and the
same command resumes the stream.

Several workers: give every worker the same plan and the same
--checkpoint-table (a DynamoDB table, created on first use). The first
worker records the stream and the time; all of them share the copy
(one lease per scan segment; give --backfill-total-segments to the first
one) and then the stream (one lease per shard). A worker that dies is
replaced by the others after --lease-duration, from its checkpoints.
--until-caught-up cannot be combined with a checkpoint table. See
docs/scale-out.md.

--filter and --transform (docs/transform.md) apply alike to the copy and
to the stream, whose start checks (old images, the output key) are made
before the copy writes anything. An item the filter or transform fails on
(an evaluation error, a bad output key) is logged with its key and
counted: in the copy, as failed items, after which sync exits 3 at the
end of the copy without starting the stream (the pages holding them are
not checkpointed); in the stream, it stops the run at once (exit 3)
before its batch is checkpointed. With --skip-failed-items they are only
logged and counted, and sync goes on.

--dry-run makes every check a run makes before it writes (the plan, the
tables and their key schemas, the stream and its view type, existing
checkpoints), writes nothing (no table, no state directory, no
checkpoint, no item), and prints what the run would do: the copy's
approximate items and bytes, segments, writers, read and write units and
time at --max-wcu/--max-rcu, then the stream's shards and where reading
would begin. Exit 0 when the run would start, 2 when refused.

Logs go to standard output; the live status goes to standard error. With
--output json the logs go to standard error too, and at the end (also when
interrupted, and after a failure once the run started) standard output
gets one JSON object: per entry its phase, counts, capacity consumed,
retries, error and duration (docs/usage.md).

Exit status:
  0    stopped cleanly while streaming, or done (--until-caught-up,
       --stream=false)
  2    invalid usage or configuration: a missing table, no stream on the
       input, key schemas that differ, a bad plan, a filter or transform
       that does not compile, an output key computed from more than the
       input key without old images in the stream, a checkpoint table
       that is not ddbsync's or holds progress of another plan; nothing
       was written
  3    runtime failure: items that could not be written, a table lost
       during the run, changes no longer in the stream, items or changes
       the filter or transform failed on (without --skip-failed-items;
       each logged with its key)
  130  interrupted during the copy; run the same command to resume`,
		Example: `  # Copy a table to another region and keep it up to date
  ddbsync sync --input-table orders --input-region us-east-1 \
               --output-table orders --output-region eu-west-1

  # Every entry of a plan file, creating missing output tables
  ddbsync sync --config-file plan.yml --create-output-table

  # Copy and catch up, then exit (a cutover)
  ddbsync sync -c plan.yml --until-caught-up

  # Copy into an output that held items before, deleting those the input lacks
  ddbsync sync -c plan.yml --delete-extra

  # Migrate into a table with another key, keeping only live items
  ddbsync sync --input-table orders --output-table orders-v2 \
               --filter '!has(item.deletedAt)' --transform v2.yml --until-caught-up

  # One of several workers sharing the copy and the stream
  ddbsync sync -c plan.yml --checkpoint-table ddbsync-checkpoints --backfill-total-segments 64

  # A cutover in a pipeline: one result object on standard output
  ddbsync sync -c plan.yml --until-caught-up --output json > result.json

  # What the copy and the stream would do and cost, writing nothing
  ddbsync sync -c plan.yml --create-output-table --max-wcu 500 --dry-run

  # Against DynamoDB Local
  ddbsync sync --endpoint-url http://localhost:8000 --input-table orders --output-table orders-copy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := opts.PlanFlags.Load(cmd, plan.ModeSync, f.IOStreams.In)
			if err != nil {
				return err
			}
			if err := opts.LeaseFlags.Apply(cmd, p, plan.ModeSync); err != nil {
				return err
			}
			if opts.UntilCaughtUp && p.CheckpointTable != nil && opts.PlanFlags.Stream {
				return cmdutil.FlagErrorf("--until-caught-up cannot be combined with --checkpoint-table: with leases no worker sees the whole stream; stop the workers with SIGTERM instead (they checkpoint and release their shards), or run one worker without --checkpoint-table")
			}
			if opts.CreateOutputStream && !opts.CreateOutputTable {
				return cmdutil.FlagErrorf("--create-output-stream applies to the table --create-output-table creates: add --create-output-table")
			}
			opts.Plan = p
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return syncRun(opts)
		},
	}
	cmdutil.AddPlanFlags(cmd, &opts.PlanFlags)
	cmdutil.AddLeaseFlags(cmd, &opts.LeaseFlags)
	cmdutil.AddOutputFlags(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.BoolVar(&opts.PlanFlags.Backfill, "backfill", true, "copy the existing items first (--backfill=false: stream only)")
	fl.BoolVar(&opts.PlanFlags.Stream, "stream", true, "apply the stream after the copy (--stream=false: copy only)")
	fl.BoolVar(&opts.CreateOutputTable, "create-output-table", false, "create a missing output table like the input: keys, indexes, billing mode, capacities, TTL, table class, deletion protection, point-in-time recovery, tags, throughput limits, encryption (docs/usage.md)")
	fl.BoolVar(&opts.CreateOutputStream, "create-output-stream", false, "with --create-output-table: give the created table the input's stream (for a copy that will itself be a source)")
	fl.BoolVar(&opts.SkipExpired, "skip-expired", false, "leave out the items DynamoDB's time to live will delete: a number of epoch seconds in the past, but not more than five years in the past (DynamoDB never deletes those, so they are copied)")
	fl.BoolVar(&opts.SkipTTLDeletes, "skip-ttl-deletes", false, "do not copy deletions made by DynamoDB's time to live (for an output table with its own TTL)")
	fl.BoolVar(&opts.UntilCaughtUp, "until-caught-up", false, "exit once the stream has been read up to the time its phase started")
	fl.BoolVar(&opts.DeleteExtra, "delete-extra", false, "after the copy, delete output items the input lacks (confirmed by a consistent read; each delete conditional on the item being unchanged)")
	return cmd
}

func syncRun(opts *Options) error {
	f := opts.Factory
	defer opts.Output.Begin(f)()
	r, err := f.SetupEntries(opts.Ctx, opts.Plan, &opts.LeaseFlags, func(e plan.Entry) string {
		if e.Backfill.Disabled && e.Stream.Disabled {
			return "Backfill and stream disabled for this entry; skipped"
		}
		return ""
	})
	if err != nil {
		return err
	}
	cfgs := make([]syncer.Config, len(r.Entries))
	for i, e := range r.Entries {
		bf, err := shared.BackfillConfig(e, r.Store, opts.SkipExpired, opts.CreateOutputTable, 0)
		if err != nil {
			return err
		}
		bf.CreateOutputStream = opts.CreateOutputStream
		cfgs[i] = syncer.Config{
			Common: job.Common{
				InputTable:  e.Entry.Input.Table,
				OutputTable: e.Entry.Output.Table,
				Store:       r.Store,
				StateKey:    e.Entry.ID(),
				Stats:       e.Stats,
				Logger:      e.Log,
				Now:         f.Now,
				Names:       cmdutil.OptionNames,
				// One filter and transform for the copy and the stream.
				Program:         bf.Program,
				SkipFailedItems: opts.PlanFlags.SkipFailedItems,
			},
			Source:         e.In.DynamoDB,
			Dest:           e.Out.DynamoDB,
			Streams:        e.In.Streams,
			Backfill:       !e.Entry.Backfill.Disabled,
			Stream:         !e.Entry.Stream.Disabled,
			BackfillConfig: bf,
			SkipTTLDeletes: opts.SkipTTLDeletes,
			UntilCaughtUp:  opts.UntilCaughtUp,
			DeleteExtra:    opts.DeleteExtra,
			Tune:           opts.Tune,
		}
		if r.Leases != nil {
			// With a checkpoint table: the work is shared through leases.
			cfgs[i].Leases = &job.Leases{Manager: r.Leases, Entry: e.Entry}
		}
	}
	check := func(i int) error { return syncer.Check(r.Ctx, cfgs[i]) }
	if opts.Output.DryRun {
		return r.DryRun(&opts.Output, "sync", check, func(i int) (*cmdutil.Estimate, error) { return estimate(r, cfgs[i]) })
	}
	if err := r.Check(check); err != nil {
		if r.Interrupted() {
			// Interrupted before anything started: every entry stopped.
			return opts.Output.Finish(f, r, "sync", err)
		}
		return err
	}

	// A stream runs until stopped: one failed entry stops the run (exit 3)
	// instead of leaving it running with a dead entry.
	r.FailFast = true
	r.Run("sync", func(ctx context.Context, i int) error { return syncer.Run(ctx, cfgs[i]) })
	interrupted := false
	for i, e := range r.Entries {
		switch {
		case e.Err != nil && errors.Is(e.Err, context.Canceled):
			interrupted = true
			e.Log.Info("Summary: sync interrupted during the backfill (checkpointed; run the same command to resume)")
		case cfgs[i].Stream && stats.GetPhase(&e.Stats.StreamPhase) != stats.Pending:
			e.Log.Info(shared.StreamSummary(e.Stats, time.Since(r.Start), e.Err))
		case e.Err != nil:
			e.Log.Info("Summary: sync FAILED")
		default:
			e.Log.Info("Summary: sync complete (backfill only)")
		}
	}
	err = r.Err(true)
	if err == nil && interrupted {
		err = &cmdutil.ExitError{Code: cmdutil.ExitInterrupted, Err: r.Ctx.Err()}
	}
	return opts.Output.Finish(f, r, "sync", err)
}
