package stream

import (
	"context"
	"errors"
	"fmt"

	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/retry"
)

// Config.Leases (a job.Leases) makes several workers share one stream
// (--checkpoint-table): each shard has a lease in the checkpoint table, a
// worker reads only the shards whose leases it holds, checkpoints through
// the lease (a write conditional on still owning it), stops a shard at
// once when its lease is lost, releases its leases on a clean stop and
// takes over the shards of a dead worker once their leases expire,
// resuming from its checkpoint. A child shard's lease is claimable only
// once its parent's is finished, so the changes of a key are applied in
// order across splits and workers. Leases.Poll also paces shard
// discovery.

func (e *engine) leaseScope() string { return e.cfg.Leases.Scope(lease.KindStream) }

func (e *engine) fingerprint() string { return lease.StreamFingerprint(e.cfg.Leases.Entry, e.info.ARN) }

// checkLeases is the read-only part of the lease setup: the leases already
// in the table were made by the same plan.
func (e *engine) checkLeases(ctx context.Context) error {
	if e.cfg.UntilCaughtUp {
		return &plan.Error{Msg: UntilCaughtUpWithLeases(e.cfg.Names)}
	}
	return e.cfg.Leases.Manager.CheckFingerprint(ctx, e.leaseScope(), e.fingerprint())
}

// runLeased consumes the shards whose leases this worker holds until ctx
// is cancelled or a fatal error.
func (e *engine) runLeased(ctx context.Context) error {
	lc := e.cfg.Leases
	m := lc.Manager
	scope := e.leaseScope()
	fp := e.fingerprint()
	poll := lc.Poll
	if poll <= 0 {
		poll = m.Options().Duration / 2
	}
	finished := map[string]bool{}
	for _, id := range e.cfg.FinishedShards {
		finished[id] = true
	}
	// A write is sent only while its shard's lease is held: a worker
	// paused past its lease sends nothing more when it resumes.
	e.writer.Client = lease.GuardWrites(e.writer.Client)
	e.log.Info(fmt.Sprintf("sharing the stream's shards with other workers through leases (worker %s, lease duration %s)", m.Worker(), m.Options().Duration))

	refresh := func(ctx context.Context) error { return e.registerShards(ctx, scope, fp) }
	work := func(ctx context.Context, l *lease.Lease) error { return e.consumeLeased(ctx, l, finished) }

	if err := e.checkLostLeased(ctx); err != nil {
		return err
	}
	for {
		err := m.Process(ctx, scope, lease.ProcessOptions{BeforeAcquire: refresh, Poll: poll}, work)
		switch {
		case ctx.Err() != nil:
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			if err != nil && !isOnly(err, ctx.Err()) {
				// Releasing failed: the leases expire instead.
				e.log.Warn("could not release every lease; other workers take the shards over once they expire", zap.Error(err))
			}
			return ctx.Err()
		case err != nil:
			return err
		}
		// Every known shard is finished, but the stream is enabled: its
		// new shards are not listed yet (DescribeStream is eventually
		// consistent). Look again.
		if err := retry.Sleep(ctx, poll); err != nil {
			return err
		}
	}
}

// registerShards lists the stream's shards and registers a lease for each
// new one (with its parent), before each round of lease taking. A
// disabled stream whose leases are all finished ends the run.
func (e *engine) registerShards(ctx context.Context, scope, fp string) error {
	m := e.cfg.Leases.Manager
	l, err := ListShards(ctx, e.cfg.Streams, e.info.ARN)
	if err != nil {
		if dynamo.IsNotFound(err) {
			return &dynamo.TableError{Table: e.cfg.InputTable, Op: "DescribeStream", Err: err}
		}
		return err
	}
	units := make([]lease.Unit, 0, len(l.Shards))
	open := int64(0)
	for _, s := range l.Shards {
		u := lease.Unit{ID: s.ID}
		if s.Parent != "" {
			u.Parents = []string{s.Parent}
		}
		units = append(units, u)
		if !s.Closed() {
			open++
		}
	}
	e.st.OpenShards.Store(open)
	// Registers new shards, and deletes the leases of finished shards no
	// longer listed whose children have started.
	if err := m.RegisterLineage(ctx, scope, fp, units); err != nil {
		return err
	}
	if l.Status == streamtypes.StreamStatusDisabled {
		done, err := m.Done(ctx, scope)
		if err != nil {
			return err
		}
		if done {
			return fmt.Errorf("the stream of table %s was disabled (or the table deleted): every change it holds was applied, but later changes are not recorded any more; enable the stream again and copy the table with sync", e.cfg.InputTable)
		}
	}
	return nil
}

// consumeLeased reads the shard of a lease this worker holds, from the
// checkpoint in the lease; finished are shards closed before a sync's
// copy began, which the scan saw whole.
func (e *engine) consumeLeased(ctx context.Context, l *lease.Lease, finished map[string]bool) error {
	if finished[l.Unit()] {
		return nil // closed before the sync's copy began: the scan saw all of it
	}
	var cp checkpoint
	if _, err := l.Resume(&cp); err != nil {
		return err
	}
	if cp.Done {
		return nil
	}
	sh := &shardState{Shard: Shard{ID: l.Unit()}, started: true}
	return e.consume(ctx, sh, cp, unitIO{
		save: func(ctx context.Context, cp checkpoint) error { return l.Checkpoint(ctx, cp) },
		// A batch in flight at a stop, or when another worker asks for
		// the shard, is still written and checkpointed (the lease is
		// released only after that); a lost lease ends it at once.
		finishing: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return l.WithContext(context.WithoutCancel(ctx))
		},
	})
}

// isOnly reports whether err is target and nothing else.
func isOnly(err, target error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !errors.Is(e, target) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, target)
}

// UntilCaughtUpWithLeases is why a stream that stops once caught up cannot
// be shared through leases.
func UntilCaughtUpWithLeases(names job.Names) string {
	return fmt.Sprintf("stopping once caught up (%s) cannot be combined with leases (%s): no worker sees the whole stream; stop the workers with SIGTERM instead (they checkpoint and release their shards), or run one worker without leases",
		names.Of("UntilCaughtUp"), names.Of("Leases"))
}
