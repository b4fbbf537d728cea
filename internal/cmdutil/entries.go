package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/internal/logging"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

// EntriesRun is what a run of backfill, stream or sync shares across its
// plan entries: the logger, the checkpoint store, the leases of a
// checkpoint table, the statistics the status display reads, and one
// RunEntry per entry to run. Build it with Factory.SetupEntries, then
// call Check, Run and Err.
type EntriesRun struct {
	Ctx    context.Context
	Logger *zap.Logger
	Store  state.Store
	// Leases shares the work of several workers; nil without a
	// checkpoint table.
	Leases   *lease.Manager
	Registry *stats.Registry
	// Entries are the entries to run, in plan order (skipped ones left
	// out).
	Entries []*RunEntry
	// Start is when Run started the entries.
	Start time.Time
	// Notes are what a dry run found about the run as a whole (a
	// checkpoint table it would create).
	Notes []string
	// FailFast stops the other entries (cleanly, checkpointed) as soon as
	// one fails: for stream and sync, which would otherwise run on for
	// ever with a dead entry that only its log line reports.
	FailFast bool

	f *Factory
}

// RunEntry is one plan entry of an EntriesRun.
type RunEntry struct {
	Entry   plan.Entry
	Log     *zap.Logger // the entry's logger ("[in] ⇨ [out]: ...")
	In, Out *creds.Clients
	Stats   *stats.Entry
	// Err is what the entry's run returned (set by Run).
	Err error
	// Duration is how long the entry ran (set by Run).
	Duration time.Duration
	// Stopped: the entry returned after the run's context ended (an
	// interrupt, or another entry's failure with FailFast).
	Stopped bool
}

// SetupEntries prepares a run of the plan's entries: the logger, the
// credentials provider, the checkpoint store (a failure is a usage error
// without a checkpoint table), the lease manager of a checkpoint table,
// and for every entry its logger, the clients of its input and output and
// its statistics. skip returns why an entry is not run ("": it is run);
// the reason is logged. A nil ctx is context.Background().
func (f *Factory) SetupEntries(ctx context.Context, p *plan.Plan, lf *LeaseFlags, skip func(plan.Entry) string) (*EntriesRun, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	logger, err := f.Logger()
	if err != nil {
		return nil, err
	}
	prov := f.Creds(nil)
	worker := lease.NewWorkerID()
	var store state.Store
	var note string
	if f.ReadOnly {
		store, note, err = f.dryRunCheckpointStore(ctx, p, prov, worker)
	} else {
		store, err = f.CheckpointStore(ctx, p, prov, worker)
	}
	if err != nil {
		if p.CheckpointTable == nil {
			return nil, &UsageError{Err: err}
		}
		return nil, err
	}
	r := &EntriesRun{Ctx: ctx, Logger: logger, Store: store, Registry: stats.NewRegistry(), f: f}
	if note != "" {
		r.Notes = append(r.Notes, note)
	}
	// With a checkpoint table, the workers share the work through leases
	// (a dry run only reads them).
	under := store
	if ro, ok := store.(ReadOnlyStore); ok {
		under = ro.Store
	}
	if ds, ok := under.(*state.DynamoStore); ok {
		r.Leases = lease.NewManager(ds, worker, lf.LeaseOptions(logger))
	}
	for _, e := range p.Entries {
		log := logging.ForEntry(logger, e.Input.Table, e.Output.Table)
		if why := skip(e); why != "" {
			log.Info(why)
			continue
		}
		in, err := prov.For(ctx, e.Input)
		if err != nil {
			return nil, err
		}
		out, err := prov.For(ctx, e.Output)
		if err != nil {
			return nil, err
		}
		st := r.Registry.Add(stats.NewEntry(e.Input.String(), e.Output.String()))
		r.Entries = append(r.Entries, &RunEntry{Entry: e, Log: log, In: in, Out: out, Stats: st})
	}
	return r, nil
}

// Check calls check(i) for every entry r.Entries[i] before any of them
// runs, so that a missing table or a key mismatch in one entry stops the
// whole run with nothing written. It returns the first error, or an
// ExitError of exit code 130 wrapping the context's error when the run
// was interrupted.
func (r *EntriesRun) Check(check func(i int) error) error {
	for i := range r.Entries {
		if err := check(i); err != nil {
			if r.Interrupted() {
				return &ExitError{Code: ExitInterrupted, Err: r.Ctx.Err()}
			}
			return err
		}
	}
	return nil
}

// Interrupted reports whether the run's context is done.
func (r *EntriesRun) Interrupted() bool { return r.Ctx.Err() != nil }

// Run runs every entry side by side (a failed entry stops the others only
// with FailFast) under the status display of the given kind, with the lease
// heartbeat of a checkpoint table: run(ctx, i) runs r.Entries[i] and its
// error is stored in that entry's Err. Run returns once every entry is
// done and the status display has drawn its final state and stopped.
func (r *EntriesRun) Run(kind string, run func(ctx context.Context, i int) error) {
	stop := r.f.Status(r.Ctx, r.Registry, kind)
	r.Start = time.Now()
	if r.Leases != nil {
		// Heartbeat for the whole run, including the final checkpoints and
		// the release of the leases after an interrupt.
		hbCtx, stopHB := context.WithCancel(context.WithoutCancel(r.Ctx))
		hbDone := make(chan struct{})
		go func() { _ = r.Leases.Run(hbCtx); close(hbDone) }()
		defer func() { stopHB(); <-hbDone }()
	}
	ctx, cancel := context.WithCancel(r.Ctx)
	defer cancel()
	var g errgroup.Group
	for i, e := range r.Entries {
		g.Go(func() error {
			began := time.Now()
			e.Err = run(ctx, i) // read after g.Wait
			e.Duration = time.Since(began)
			// Stopped by another entry's failure (FailFast) or an
			// interrupt, even when it returned no error.
			e.Stopped = ctx.Err() != nil
			if r.FailFast && e.Err != nil && !errors.Is(e.Err, context.Canceled) && ctx.Err() == nil {
				if e.Log != nil {
					e.Log.Error("this entry failed; stopping the others (their progress is checkpointed)", zap.Error(e.Err))
				}
				cancel()
			}
			return nil
		})
	}
	_ = g.Wait()
	stop()
}

// Err is the run's error from the entries' errors, each prefixed with its
// entry's description: nil when there is none, the joined errors when one
// of them is a usage error (exit 2), else an ExitError of exit code 3.
// With ignoreCanceled, errors from the run's interruption
// (context.Canceled) are left out; the caller decides what they mean.
func (r *EntriesRun) Err(ignoreCanceled bool) error {
	var errs []error
	allUsage := true
	for _, e := range r.Entries {
		if e.Err == nil || ignoreCanceled && errors.Is(e.Err, context.Canceled) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %w", e.Entry.Description(), e.Err))
		allUsage = allUsage && ExitCode(e.Err) == ExitUsage
	}
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	// Exit 2 says nothing was read or written: only when every failure is
	// a usage error. A table lost mid-run in one entry is exit 3 even if
	// another entry was refused.
	if allUsage {
		return err
	}
	return &ExitError{Code: ExitRuntime, Err: err}
}
