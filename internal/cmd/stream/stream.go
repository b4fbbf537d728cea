// Package stream implements `ddbsync stream`.
package stream

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/cmd/shared"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/stream"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

// Options are the inputs of one `ddbsync stream` run.
type Options struct {
	Factory *cmdutil.Factory
	Ctx     context.Context

	// Plan is the validated plan (from --config-file or the table flags).
	Plan *plan.Plan

	PlanFlags      cmdutil.PlanFlags
	LeaseFlags     cmdutil.LeaseFlags
	SkipTTLDeletes bool
	UntilCaughtUp  bool
	// Output is --output and --dry-run.
	Output cmdutil.OutputFlags

	// Tune adjusts each entry's engine configuration (tests).
	Tune func(*stream.Config)
}

// NewCmdStream builds the command; runF replaces the run in tests.
func NewCmdStream(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "Apply the input table's DynamoDB Stream to the output table",
		Long: `Apply every change of each plan entry's input table to its output table,
by reading the input's DynamoDB Stream: inserts and updates are written as
the new image, deletes delete the key. Changes to one item are applied in
the order they were made, also across shard splits.

The input table needs a stream. Enable one with:
  aws dynamodb update-table --table-name TABLE \
      --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES
With a KEYS_ONLY or OLD_IMAGE stream, each changed item is read from the
input table (a consistent read) and written as it is now.

A first run starts at the oldest record the stream still holds (it keeps
24 hours) and applies everything since, in order. After a backfill of the
same entry (same state), that copy must be finished and have begun after
the stream was enabled, less than 23 hours ago: otherwise changes would
be lost, and the run refuses (exit 2) — run sync instead. The last applied record
of every shard is checkpointed in the state directory (--state-dir); a
restart, even after kill -9, continues after it, re-applying at most the
batch that was in flight. Deletions made by DynamoDB's time to live are
copied unless --skip-ttl-deletes is given (for an output with its own TTL).

The stream runs until interrupted (Ctrl-C, SIGTERM): it then finishes the
writes in flight, saves its checkpoints and exits 0. With
--until-caught-up it exits once every shard has been read up to the time
the run started. To copy the existing items first, use sync.

Several workers: give every worker the same plan and the same
--checkpoint-table (a DynamoDB table, created on first use). The shards
are then shared through leases kept in that table: each shard is read by
one worker at a time, a child shard only after its parent is finished,
and checkpoints live in the leases. A worker that stops cleanly releases
its shards at once; the shards of a worker that dies are taken over by
the others after --lease-duration, from its last checkpoint. A worker
with nothing to read stays as a standby. --until-caught-up cannot be
combined with a checkpoint table. See docs/scale-out.md.

--filter and --transform (docs/transform.md) apply to every change: a
change whose new image passes the filter is written transformed; one
whose new image fails it, and a REMOVE, delete the output item it maps
to, so an item that leaves the filter leaves the output. A change the
filter or transform fails on (an evaluation error, a bad output key) is
logged with its key and counted, and stops the stream at once (exit 3)
before its batch is checkpointed, so nothing is lost: run again with a
corrected transform. With --skip-failed-items it is left out (its old
output item deleted) and the stream goes on.

--dry-run makes every check a run makes before it writes (the plan, the
tables, the stream and its view type, existing checkpoints), writes
nothing, and prints what would be read: the stream, its shards (open and
closed), the checkpoints and where reading would begin. Exit 0 when the
run would start, 2 when refused.

Logs go to standard output; the live status goes to standard error. With
--output json the logs go to standard error too, and at the end (also when
interrupted, and after a failure once the run started) standard output
gets one JSON object: per entry its phase, counts, capacity consumed,
retries, error and duration (docs/usage.md).

Exit status:
  0    stopped cleanly (interrupted, or caught up with --until-caught-up)
  2    invalid usage or configuration: a missing table, no stream on the
       input, key schemas that differ, a bad plan, a filter or transform
       that does not compile, an output key computed from more than the
       input key without old images in the stream, a checkpoint table
       that is not ddbsync's or holds progress of another plan; nothing
       was written
  3    runtime failure: a table or stream lost during the run, changes
       trimmed from the stream before they could be applied, access
       denied, a change the filter or transform failed on (without
       --skip-failed-items; logged with its key, its batch not
       checkpointed)`,
		Example: `  # Keep a copy in another region up to date
  ddbsync stream --input-table orders --input-region us-east-1 \
                 --output-table orders --output-region eu-west-1

  # Every entry of a plan file; the output expires its own items
  ddbsync stream --config-file plan.yml --skip-ttl-deletes

  # Apply what happened so far, then exit (cutovers, scripts)
  ddbsync stream -c plan.yml --until-caught-up

  # One of several workers sharing the stream (run the same command on each)
  ddbsync stream -c plan.yml --checkpoint-table ddbsync-checkpoints

  # Apply only the changes of live items; log and count the ones the filter fails on
  ddbsync stream -c plan.yml --filter '!has(item.deletedAt)' --skip-failed-items

  # A result object for a pipeline (logs on standard error)
  ddbsync stream -c plan.yml --until-caught-up --output json > result.json

  # What would be read, writing nothing
  ddbsync stream -c plan.yml --dry-run

  # Against DynamoDB Local
  ddbsync stream --endpoint-url http://localhost:8000 --input-table orders --output-table orders-copy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := opts.PlanFlags.Load(cmd, plan.ModeStream, f.IOStreams.In)
			if err != nil {
				return err
			}
			if err := opts.LeaseFlags.Apply(cmd, p, plan.ModeStream); err != nil {
				return err
			}
			if opts.UntilCaughtUp && p.CheckpointTable != nil {
				return cmdutil.FlagErrorf("--until-caught-up cannot be combined with --checkpoint-table: with leases no worker sees the whole stream; stop the workers with SIGTERM instead (they checkpoint and release their shards), or run one worker without --checkpoint-table")
			}
			opts.Plan = p
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return streamRun(opts)
		},
	}
	cmdutil.AddPlanFlags(cmd, &opts.PlanFlags)
	cmdutil.AddLeaseFlags(cmd, &opts.LeaseFlags)
	cmdutil.AddOutputFlags(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.BoolVar(&opts.SkipTTLDeletes, "skip-ttl-deletes", false, "do not copy deletions made by DynamoDB's time to live (for an output table with its own TTL)")
	fl.BoolVar(&opts.UntilCaughtUp, "until-caught-up", false, "exit once every shard has been read up to the time the run started")
	return cmd
}

func streamRun(opts *Options) error {
	f := opts.Factory
	defer opts.Output.Begin(f)()
	r, err := f.SetupEntries(opts.Ctx, opts.Plan, &opts.LeaseFlags, func(e plan.Entry) string {
		if e.Stream.Disabled {
			return "Stream disabled for this entry; skipped"
		}
		return ""
	})
	if err != nil {
		return err
	}
	cfgs := make([]stream.Config, len(r.Entries))
	for i, e := range r.Entries {
		prog, err := e.Entry.Program() // compiled once already by the plan's validation
		if err != nil {
			return &plan.Error{Msg: err.Error()}
		}
		cfgs[i] = stream.Config{
			Common: job.Common{
				InputTable:  e.Entry.Input.Table,
				OutputTable: e.Entry.Output.Table,
				Store:       r.Store,
				StateKey:    e.Entry.ID(),
				Stats:       e.Stats,
				Logger:      e.Log,
				Now:         f.Now,
				Program:     prog,
				Names:       cmdutil.OptionNames,

				SkipFailedItems: opts.PlanFlags.SkipFailedItems,
			},
			Streams:        e.In.Streams,
			Source:         e.In.DynamoDB,
			Dest:           e.Out.DynamoDB,
			SkipTTLDeletes: opts.SkipTTLDeletes,
			UntilCaughtUp:  opts.UntilCaughtUp,
			MaxWCU:         e.Entry.Backfill.MaxWCU,
		}
		// With a checkpoint table, the workers share each stream's shards
		// through leases.
		if r.Leases != nil {
			cfgs[i].Leases = &job.Leases{Manager: r.Leases, Entry: e.Entry}
		}
		if opts.Tune != nil {
			opts.Tune(&cfgs[i])
		}
	}
	check := func(i int) error {
		// A first stream after a copy made by backfill: the copy must be
		// finished and young enough for the stream to cover it.
		c := cfgs[i]
		if err := syncer.CheckCopy(r.Ctx, syncer.CopyCheck{Common: c.Common, Source: c.Source}); err != nil {
			return err
		}
		return stream.Check(r.Ctx, c)
	}
	if opts.Output.DryRun {
		return r.DryRun(&opts.Output, "stream", check, func(i int) (*cmdutil.Estimate, error) {
			return shared.StreamEntryEstimate(r.Ctx, cfgs[i], r.Leases, shared.StreamStartOldest)
		})
	}
	if err := r.Check(check); err != nil {
		if r.Interrupted() {
			// Interrupted before anything started.
			return opts.Output.Finish(f, r, "stream", nil)
		}
		return err
	}

	// A stream runs until stopped: one failed entry stops the run (exit 3)
	// instead of leaving it running with a dead entry.
	r.FailFast = true
	r.Run("stream", func(ctx context.Context, i int) error { return stream.Run(ctx, cfgs[i]) })
	for _, e := range r.Entries {
		e.Log.Info(shared.StreamSummary(e.Stats, time.Since(r.Start), e.Err))
	}
	return opts.Output.Finish(f, r, "stream", r.Err(false))
}
