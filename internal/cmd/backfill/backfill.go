// Package backfill implements `ddbsync backfill`.
package backfill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/cmd/shared"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

// maxScanLimit bounds --scan-limit.
const maxScanLimit = 100000

// Options are the inputs of one `ddbsync backfill` run.
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
	ScanLimit          int
	// Output is --output and --dry-run.
	Output cmdutil.OutputFlags
}

// NewCmdBackfill builds the command; runF replaces the run in tests.
func NewCmdBackfill(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Copy every item of the input table to the output table",
		Long: `Copy every item of each plan entry's input table to its output table: a
parallel Scan whose pages flow into concurrent BatchWriteItem writers.

The scan is split into segments (--backfill-total-segments; by default one
per GiB of table, at least 4). Workers on several machines can share one
table with --backfill-segments. Unprocessed items and throttling are
retried with backoff until written; an error that retrying cannot fix
(validation, a table deleted during the run, access denied) stops the run.

Progress is checkpointed per segment in the state directory (--state-dir):
interrupted or killed, the same command continues where it stopped. Once
a backfill is complete, running it again does nothing; remove the state
directory to copy again. Resuming needs the same total segments.

Several workers: run the same command, with the same plan and the same
--checkpoint-table (a DynamoDB table, created on first use), on every
machine. The first worker takes --backfill-total-segments or, without
it, chooses the total from the table size, and records it in the
checkpoint table (a conditional write: of two workers starting at once,
the first wins and the other uses its total); the others read it, and a
worker that asks for another total is refused (exit 2) before writing
anything. The segments are then shared through leases:
each worker scans the segments it holds, checkpoints every fully written
page in the lease, and exits 0 once every segment is finished, by it or
another worker. The segments of a worker that dies are taken over by the
others after --lease-duration, from its last checkpoint; at most its
pages in flight are written twice (--scan-limit makes pages smaller).
With --backfill-segments a worker copies just those segments and takes
no leases. See docs/scale-out.md.

--skip-expired leaves out exactly the items DynamoDB's time to live will
delete: the table's TTL attribute holds a number of epoch seconds before
now, and not more than five years before now. DynamoDB ignores TTL values
more than five years in the past and never deletes those items, so they
are copied, as are items without the attribute or with a non-number in it.

--filter keeps only the items for which a CEL expression is true, and
--transform FILE reshapes them on the way (set, drop, rename; a plan
entry takes filter: and transform:; docs/transform.md). The scan still
reads, and is billed for, the whole table. An item the filter or
transform fails on (an evaluation error such as a missing attribute, or
an output key that is missing or of the wrong type) is logged with its
key and counted as failed, and the copy goes on; at the end the run
exits 3, and the pages holding such items are not checkpointed, so that
running again copies them. A copy resumes only with the filter and
transform it began with (exit 2 otherwise): to copy with a corrected
transform, remove the entry's checkpoints first. With
--skip-failed-items they are only logged and counted, and the run
succeeds.

--dry-run makes every check a run makes before it writes (the plan, the
tables and their key schemas, existing checkpoints), writes nothing (no
table, no state directory, no checkpoint, no item), and prints what the
run would do: the input's approximate items and bytes, the segments and
writers, the read and write units the copy would consume and its time at
--max-wcu/--max-rcu (upper bounds with a filter), and the filter and
transform. Exit 0 when the run would start, 2 when refused.

Logs go to standard output; the live status goes to standard error. With
--output json the logs go to standard error too, and at the end (also when
interrupted, and after a failure once the run started) standard output
gets one JSON object: per entry its phase, counts, capacity consumed,
retries, error and duration (docs/usage.md).

Exit status:
  0    every item was copied (or skipped with --skip-expired or by the
       filter, or failed with --skip-failed-items)
  2    invalid usage or configuration: a missing table, key schemas that
       differ, a bad plan, a filter or transform that does not compile
       (the expression and position are named), a checkpoint table that
       is not ddbsync's or holds progress of another plan (another total
       segments); nothing was read or written
  3    runtime failure: items that could not be written, items the
       filter or transform failed on (without --skip-failed-items; each
       logged with its key, the run ending after the copy), a table lost
       during the run, access denied; any failure found once the copy
       started (such as a segment checkpoint of another total met in the
       middle of a shared backfill)
  130  interrupted; progress is checkpointed, run the same command to resume`,
		Example: `  # Copy a table to another region
  ddbsync backfill --input-table orders --input-region us-east-1 \
                   --output-table orders --output-region eu-west-1

  # Copy into a new table shaped like the input (keys, indexes, billing)
  ddbsync backfill --input-table orders --output-table orders-copy --create-output-table

  # Every entry of a plan file, leaving out items whose TTL has passed
  ddbsync backfill --config-file plan.yml --skip-expired

  # Split a big table across two machines (same command, other segments)
  ddbsync backfill -c plan.yml --backfill-total-segments 8 --backfill-segments 0,1,2,3
  ddbsync backfill -c plan.yml --backfill-total-segments 8 --backfill-segments 4,5,6,7

  # One of several workers sharing the copy (run the same command on each)
  ddbsync backfill -c plan.yml --checkpoint-table ddbsync-checkpoints

  # Stay under 500 write units per second on the output
  ddbsync backfill -c plan.yml --max-wcu 500

  # Copy one tenant's items, reshaped by a transform file (set, drop, rename)
  ddbsync backfill --input-table orders --output-table orders-acme \
                   --filter 'item.tenant == "acme"' --transform acme.yml

  # A result object for a pipeline (logs on standard error)
  ddbsync backfill -c plan.yml --output json > result.json

  # What the copy would do and cost, writing nothing
  ddbsync backfill -c plan.yml --create-output-table --max-wcu 500 --dry-run

  # Against DynamoDB Local
  ddbsync backfill --endpoint-url http://localhost:8000 --input-table orders --output-table orders-copy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := opts.PlanFlags.Load(cmd, plan.ModeBackfill, f.IOStreams.In)
			if err != nil {
				return err
			}
			if err := opts.LeaseFlags.Apply(cmd, p, plan.ModeBackfill); err != nil {
				return err
			}
			if opts.ScanLimit < 0 || opts.ScanLimit > maxScanLimit {
				return cmdutil.FlagErrorf("--scan-limit is %d; allowed: 0 (pages of up to 1 MB) to %d", opts.ScanLimit, maxScanLimit)
			}
			if opts.CreateOutputStream && !opts.CreateOutputTable {
				return cmdutil.FlagErrorf("--create-output-stream applies to the table --create-output-table creates: add --create-output-table")
			}
			opts.Plan = p
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return backfillRun(opts)
		},
	}
	cmdutil.AddPlanFlags(cmd, &opts.PlanFlags)
	cmdutil.AddLeaseFlags(cmd, &opts.LeaseFlags)
	cmdutil.AddOutputFlags(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.IntVar(&opts.ScanLimit, "scan-limit", 0, "items per Scan page (0: DynamoDB's pages of up to 1 MB); smaller pages mean finer checkpoints")
	fl.BoolVar(&opts.CreateOutputTable, "create-output-table", false, "create a missing output table like the input: keys, indexes, billing mode, capacities, TTL, table class, deletion protection, point-in-time recovery, tags, throughput limits, encryption (docs/usage.md)")
	fl.BoolVar(&opts.CreateOutputStream, "create-output-stream", false, "with --create-output-table: give the created table the input's stream (for a copy that will itself be a source)")
	fl.BoolVar(&opts.SkipExpired, "skip-expired", false, "leave out the items DynamoDB's time to live will delete: a number of epoch seconds in the past, but not more than five years in the past (DynamoDB never deletes those, so they are copied)")
	return cmd
}

func backfillRun(opts *Options) error {
	defer opts.Output.Begin(opts.Factory)()
	r, err := opts.Factory.SetupEntries(opts.Ctx, opts.Plan, &opts.LeaseFlags, func(e plan.Entry) string {
		if e.Backfill.Disabled {
			return "Backfill disabled for this entry; skipped"
		}
		return ""
	})
	if err != nil {
		return err
	}
	cfgs := make([]backfill.Config, len(r.Entries))
	for i, e := range r.Entries {
		if cfgs[i], err = shared.BackfillConfig(e, r.Store, opts.SkipExpired, opts.CreateOutputTable, opts.ScanLimit); err != nil {
			return err
		}
		cfgs[i].CreateOutputStream = opts.CreateOutputStream
		cfgs[i].SkipFailedItems = opts.PlanFlags.SkipFailedItems
		// With a checkpoint table, the workers share the segments through
		// leases (unless a static split names this worker's segments).
		if r.Leases != nil && len(cfgs[i].Segments) == 0 {
			cfgs[i].Leases = &job.Leases{Manager: r.Leases, Entry: e.Entry}
		}
	}
	check := func(i int) error {
		// Not beside workers applying the stream to the same output.
		if l := cfgs[i].Leases; l != nil {
			if err := syncer.CheckNotStreaming(r.Ctx, l.Manager, l.Entry); err != nil {
				return err
			}
		}
		return backfill.Check(r.Ctx, cfgs[i])
	}
	if opts.Output.DryRun {
		return r.DryRun(&opts.Output, "backfill", check, func(i int) (*cmdutil.Estimate, error) { return shared.BackfillEstimate(r.Ctx, cfgs[i]) })
	}
	if err := r.Check(check); err != nil {
		if r.Interrupted() {
			// Interrupted before anything started: every entry stopped.
			return opts.Output.Finish(opts.Factory, r, "backfill", err)
		}
		return err
	}

	results := make([]backfill.Result, len(r.Entries))
	r.Run("backfill", func(ctx context.Context, i int) (err error) {
		results[i], err = backfill.Run(ctx, cfgs[i])
		return err
	})
	for i, e := range r.Entries {
		e.Log.Info(summary(results[i], e.Err) + fmt.Sprintf("; %d retries (%d throttled)", e.Stats.Retries.Load(), e.Stats.Throttles.Load()))
	}
	return opts.Output.Finish(opts.Factory, r, "backfill", backfillErr(r))
}

// backfillErr is the outcome of a run: the entries' errors, or exit 130
// when interrupted.
func backfillErr(r *cmdutil.EntriesRun) error {
	if err := r.Err(true); err != nil {
		return err
	}
	if r.Interrupted() {
		return &cmdutil.ExitError{Code: cmdutil.ExitInterrupted, Err: r.Ctx.Err()}
	}
	return nil
}

// summary is the final line of an entry.
func summary(res backfill.Result, err error) string {
	status := "complete"
	switch {
	case res.AlreadyDone:
		status = "already complete (checkpoints)"
	case err != nil && errors.Is(err, context.Canceled):
		status = "interrupted (checkpointed; run again to resume)"
	case err != nil:
		status = "FAILED"
	}
	secs := res.Duration.Seconds()
	if secs <= 0 {
		secs = 1
	}
	skipped := fmt.Sprintf("%d skipped", res.ItemsSkipped)
	if res.ItemsFiltered > 0 {
		skipped += fmt.Sprintf(" (%d by the filter)", res.ItemsFiltered)
	}
	s := fmt.Sprintf("Summary: backfill %s: %d items read, %d written, %s, %d failed in %s; consumed %.1f WCU (%.1f/s), %.1f RCU (%.1f/s)",
		status, res.ItemsRead, res.ItemsWritten, skipped, res.ItemsFailed, res.Duration.Round(time.Second),
		res.ConsumedWCU, res.ConsumedWCU/secs, res.ConsumedRCU, res.ConsumedRCU/secs)
	if res.ItemsUnfinished > 0 {
		s += fmt.Sprintf("; %d items in flight will be copied again on resume", res.ItemsUnfinished)
	}
	return s
}
