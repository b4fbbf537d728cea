// Package sync implements `ddbsync sync`.
package sync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	streamcmd "github.com/ddbsync/ddbsync/internal/cmd/stream"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/logging"
	"github.com/ddbsync/ddbsync/internal/stats"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stream"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

// Options are the inputs of one `ddbsync sync` run.
type Options struct {
	Factory *cmdutil.Factory
	Ctx     context.Context

	// Plan is the validated plan (from --config-file or the table flags).
	Plan *plan.Plan

	PlanFlags         cmdutil.PlanFlags
	LeaseFlags        cmdutil.LeaseFlags
	CreateOutputTable bool
	SkipExpired       bool
	SkipTTLDeletes    bool
	UntilCaughtUp     bool

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
split the copy across machines with backfill segments and stream.disabled).

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

Logs go to standard output; the live status goes to standard error.

Exit status:
  0    stopped cleanly while streaming, or done (--until-caught-up,
       --stream=false)
  2    invalid usage or configuration: a missing table, no stream on the
       input, key schemas that differ, a bad plan, a checkpoint table
       that is not ddbsync's or holds progress of another plan; nothing
       was written
  3    runtime failure: items that could not be written, a table lost
       during the run, changes no longer in the stream
  130  interrupted during the copy; run the same command to resume`,
		Example: `  # Copy a table to another region and keep it up to date
  ddbsync sync --input-table orders --input-region us-east-1 \
               --output-table orders --output-region eu-west-1

  # Every entry of a plan file, creating missing output tables
  ddbsync sync --config-file plan.yml --create-output-table

  # Copy and catch up, then exit (a cutover)
  ddbsync sync -c plan.yml --until-caught-up

  # Only the stream part of a sync whose copy was done elsewhere
  ddbsync sync -c plan.yml --backfill=false

  # One of several workers sharing the copy and the stream
  ddbsync sync -c plan.yml --checkpoint-table ddbsync-checkpoints --backfill-total-segments 64

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
	fl := cmd.Flags()
	fl.BoolVar(&opts.PlanFlags.Backfill, "backfill", true, "copy the existing items first (--backfill=false: stream only)")
	fl.BoolVar(&opts.PlanFlags.Stream, "stream", true, "apply the stream after the copy (--stream=false: copy only)")
	fl.BoolVar(&opts.CreateOutputTable, "create-output-table", false, "create a missing output table from the input's description (keys, indexes, billing mode, capacities)")
	fl.BoolVar(&opts.SkipExpired, "skip-expired", false, "leave out items whose time to live lies in the past but which DynamoDB has not deleted yet")
	fl.BoolVar(&opts.SkipTTLDeletes, "skip-ttl-deletes", false, "do not copy deletions made by DynamoDB's time to live (for an output table with its own TTL)")
	fl.BoolVar(&opts.UntilCaughtUp, "until-caught-up", false, "exit once the stream has been read up to the time its phase started")
	return cmd
}

type job struct {
	entry plan.Entry
	cfg   syncer.Config
	log   *zap.Logger
	err   error
}

func syncRun(opts *Options) error {
	f := opts.Factory
	ctx := opts.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	logger, err := f.Logger()
	if err != nil {
		return err
	}
	prov := f.Creds(nil)
	worker := lease.NewWorkerID()
	store, err := f.CheckpointStore(ctx, opts.Plan, prov, worker)
	if err != nil {
		if opts.Plan.CheckpointTable == nil {
			return &cmdutil.UsageError{Err: err}
		}
		return err
	}
	// With a checkpoint table, the workers share the work through leases.
	var leases *lease.Manager
	if ds, ok := store.(*state.DynamoStore); ok {
		leases = lease.NewManager(ds, worker, opts.LeaseFlags.LeaseOptions(logger))
	}
	reg := stats.NewRegistry()

	var jobs []*job
	for _, e := range opts.Plan.Entries {
		log := logging.ForEntry(logger, e.Input.Table, e.Output.Table)
		if e.Backfill.Disabled && e.Stream.Disabled {
			log.Info("Backfill and stream disabled for this entry; skipped")
			continue
		}
		in, err := prov.For(ctx, e.Input)
		if err != nil {
			return err
		}
		out, err := prov.For(ctx, e.Output)
		if err != nil {
			return err
		}
		segs, err := e.Backfill.SegmentList()
		if err != nil {
			return &plan.Error{Msg: err.Error()}
		}
		st := reg.Add(stats.NewEntry(e.Input.String(), e.Output.String()))
		jobs = append(jobs, &job{entry: e, log: log, cfg: syncer.Config{
			Source:            in.DynamoDB,
			Dest:              out.DynamoDB,
			Streams:           in.Streams,
			InputTable:        e.Input.Table,
			OutputTable:       e.Output.Table,
			Backfill:          !e.Backfill.Disabled,
			Stream:            !e.Stream.Disabled,
			Segments:          segs,
			TotalSegments:     e.Backfill.TotalSegments,
			MaxWCU:            e.Backfill.MaxWCU,
			MaxRCU:            e.Backfill.MaxRCU,
			SkipExpired:       opts.SkipExpired,
			CreateOutputTable: opts.CreateOutputTable,
			SkipTTLDeletes:    opts.SkipTTLDeletes,
			UntilCaughtUp:     opts.UntilCaughtUp,
			Store:             store,
			StateKey:          e.ID(),
			Stats:             st,
			Logger:            log,
			Now:               f.Now,
			Tune:              opts.Tune,
			Leases:            leases,
			Entry:             e,
		}})
	}

	// Check every entry before any of them writes.
	for _, j := range jobs {
		if err := syncer.Check(ctx, j.cfg); err != nil {
			if ctx.Err() != nil {
				return &cmdutil.ExitError{Code: cmdutil.ExitInterrupted, Err: ctx.Err()}
			}
			return err
		}
	}

	stop := f.Status(ctx, reg, "sync")
	start := time.Now()
	if leases != nil {
		// Heartbeat for the whole run, including the final checkpoints and
		// the release of the leases after an interrupt.
		hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
		hbDone := make(chan struct{})
		go func() { _ = leases.Run(hbCtx); close(hbDone) }()
		defer func() { stopHB(); <-hbDone }()
	}
	// Entries run side by side; a failed entry does not stop the others.
	var g errgroup.Group
	var mu sync.Mutex
	for _, j := range jobs {
		g.Go(func() error {
			err := syncer.Run(ctx, j.cfg)
			mu.Lock()
			j.err = err
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	stop()

	var errs []error
	interrupted := false
	for _, j := range jobs {
		switch {
		case j.err != nil && errors.Is(j.err, context.Canceled):
			interrupted = true
			j.log.Info("Summary: sync interrupted during the backfill (checkpointed; run the same command to resume)")
		case j.cfg.Stream && stats.GetPhase(&j.cfg.Stats.StreamPhase) != stats.Pending:
			j.log.Info(streamcmd.Summary(j.cfg.Stats, time.Since(start), j.err))
		case j.err != nil:
			j.log.Info("Summary: sync FAILED")
		default:
			j.log.Info("Summary: sync complete (backfill only)")
		}
		if j.err != nil && !errors.Is(j.err, context.Canceled) {
			errs = append(errs, fmt.Errorf("%s: %w", j.entry.Description(), j.err))
		}
	}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		if cmdutil.ExitCode(err) == cmdutil.ExitUsage {
			return err
		}
		return &cmdutil.ExitError{Code: cmdutil.ExitRuntime, Err: err}
	}
	if interrupted {
		return &cmdutil.ExitError{Code: cmdutil.ExitInterrupted, Err: ctx.Err()}
	}
	return nil
}
