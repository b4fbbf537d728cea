// Package stream implements `ddbsync stream`.
package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/logging"
	"github.com/ddbsync/ddbsync/internal/stats"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

// Options are the inputs of one `ddbsync stream` run.
type Options struct {
	Factory *cmdutil.Factory
	Ctx     context.Context

	// Plan is the validated plan (from --config-file or the table flags).
	Plan *plan.Plan

	PlanFlags      cmdutil.PlanFlags
	SkipTTLDeletes bool
	UntilCaughtUp  bool

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
24 hours) and applies everything since, in order. The last applied record
of every shard is checkpointed in the state directory (--state-dir); a
restart, even after kill -9, continues after it, re-applying at most the
batch that was in flight. Deletions made by DynamoDB's time to live are
copied unless --skip-ttl-deletes is given (for an output with its own TTL).

The stream runs until interrupted (Ctrl-C, SIGTERM): it then finishes the
writes in flight, saves its checkpoints and exits 0. With
--until-caught-up it exits once every shard has been read up to the time
the run started. To copy the existing items first, use sync.

Logs go to standard output; the live status goes to standard error.

Exit status:
  0    stopped cleanly (interrupted, or caught up with --until-caught-up)
  2    invalid usage or configuration: a missing table, no stream on the
       input, key schemas that differ, a bad plan; nothing was written
  3    runtime failure: a table or stream lost during the run, changes
       trimmed from the stream before they could be applied, access denied`,
		Example: `  # Keep a copy in another region up to date
  ddbsync stream --input-table orders --input-region us-east-1 \
                 --output-table orders --output-region eu-west-1

  # Every entry of a plan file; the output expires its own items
  ddbsync stream --config-file plan.yml --skip-ttl-deletes

  # Apply what happened so far, then exit (cutovers, scripts)
  ddbsync stream -c plan.yml --until-caught-up

  # Against DynamoDB Local
  ddbsync stream --endpoint-url http://localhost:8000 --input-table a --output-table b`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := opts.PlanFlags.Load(cmd, plan.ModeStream, f.IOStreams.In)
			if err != nil {
				return err
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
	fl := cmd.Flags()
	fl.BoolVar(&opts.SkipTTLDeletes, "skip-ttl-deletes", false, "do not copy deletions made by DynamoDB's time to live (for an output table with its own TTL)")
	fl.BoolVar(&opts.UntilCaughtUp, "until-caught-up", false, "exit once every shard has been read up to the time the run started")
	return cmd
}

type job struct {
	entry plan.Entry
	cfg   stream.Config
	log   *zap.Logger
	err   error
}

func streamRun(opts *Options) error {
	f := opts.Factory
	ctx := opts.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	logger, err := f.Logger()
	if err != nil {
		return err
	}
	store, err := f.StateStore()
	if err != nil {
		return &cmdutil.UsageError{Err: err}
	}
	prov := f.Creds(nil)
	reg := stats.NewRegistry()

	var jobs []*job
	for _, e := range opts.Plan.Entries {
		log := logging.ForEntry(logger, e.Input.Table, e.Output.Table)
		if e.Stream.Disabled {
			log.Info("Stream disabled for this entry; skipped")
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
		st := reg.Add(stats.NewEntry(e.Input.String(), e.Output.String()))
		cfg := stream.Config{
			Streams:        in.Streams,
			Source:         in.DynamoDB,
			Dest:           out.DynamoDB,
			InputTable:     e.Input.Table,
			OutputTable:    e.Output.Table,
			SkipTTLDeletes: opts.SkipTTLDeletes,
			UntilCaughtUp:  opts.UntilCaughtUp,
			MaxWCU:         e.Backfill.MaxWCU,
			Store:          store,
			StateKey:       e.ID(),
			Stats:          st,
			Logger:         log,
			Now:            f.Now,
		}
		if opts.Tune != nil {
			opts.Tune(&cfg)
		}
		jobs = append(jobs, &job{entry: e, log: log, cfg: cfg})
	}

	// Check every entry before any of them writes.
	for _, j := range jobs {
		if err := stream.Validate(ctx, j.cfg); err != nil {
			if ctx.Err() != nil {
				return nil // interrupted before anything started
			}
			return err
		}
	}

	stop := f.Status(ctx, reg, "stream")
	start := time.Now()
	// Entries run side by side; a failed entry does not stop the others.
	var g errgroup.Group
	var mu sync.Mutex
	for _, j := range jobs {
		g.Go(func() error {
			err := stream.Run(ctx, j.cfg)
			mu.Lock()
			j.err = err
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	stop()

	var errs []error
	for _, j := range jobs {
		j.log.Info(Summary(j.cfg.Stats, time.Since(start), j.err))
		if j.err != nil {
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
	return nil
}

// Summary is the final line of an entry's stream.
func Summary(st *stats.Entry, d time.Duration, err error) string {
	status := "stopped (checkpointed)"
	if err != nil {
		status = "FAILED"
	}
	s := fmt.Sprintf("Summary: stream %s: %d records read, %d applied, %d skipped in %s; consumed %.1f WCU",
		status, st.RecordsRead.Load(), st.RecordsApplied.Load(), st.RecordsSkipped.Load(), d.Round(time.Second), st.ConsumedWCU.Load())
	if last := st.LastApplied.Load(); last > 0 {
		s += fmt.Sprintf("; last applied change made at %s", time.UnixMilli(last).UTC().Format(time.RFC3339))
	}
	return s
}
