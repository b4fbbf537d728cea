package backfill

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// Leases makes several workers share one backfill (--checkpoint-table):
// each scan segment has a lease in the checkpoint table; a worker scans
// only the segments whose leases it holds, checkpoints each fully written
// page's LastEvaluatedKey through the lease (a write conditional on still
// owning it), stops a segment at once when its lease is lost (at most its
// pages in flight are written twice), releases its leases on a clean stop
// and takes over the segments of a dead worker once their leases expire,
// from the dead worker's last checkpoint. Run returns nil once every
// segment is finished, by this worker or another.
//
// Leases apply to a run over all segments; a static split (Segments)
// never takes leases.
type Leases struct {
	Manager *lease.Manager
	// Entry is the plan entry: its ID names the lease scope and its tables
	// go into the plan fingerprint.
	Entry plan.Entry
	// Poll is the time between two rounds of lease taking; 0: half the
	// lease duration.
	Poll time.Duration
	// Kind names the lease scope within the entry (default
	// lease.KindBackfill). sync gives each of its copies a scope of its
	// own, so that segments finished by an earlier copy never count.
	Kind string
}

// Scope is the lease scope of the entry's backfill.
func (l *Leases) Scope() string {
	kind := l.Kind
	if kind == "" {
		kind = lease.KindBackfill
	}
	return lease.Scope(l.Entry.ID(), kind)
}

// Done reports whether every segment lease of the entry is finished (sync
// uses it to resume in the stream phase).
func (l *Leases) Done(ctx context.Context) (bool, error) {
	return l.Manager.Done(ctx, l.Scope())
}

// leaseTotal resolves the total segments of a leased backfill: the user's
// value, else the number of leases registered by the first worker, else
// the total of an earlier run's checkpoint. All workers must agree, so it
// is never chosen from the table size (two workers could choose
// differently): without any of these it is a usage error.
func leaseTotal(ctx context.Context, cfg Config, m *Meta) (int, error) {
	if cfg.TotalSegments > 0 {
		return cfg.TotalSegments, nil
	}
	infos, err := cfg.Leases.Manager.List(ctx, cfg.Leases.Scope())
	if err != nil {
		return 0, err
	}
	if len(infos) > 0 {
		return len(infos), nil
	}
	if m != nil && m.TotalSegments > 0 {
		return m.TotalSegments, nil
	}
	return 0, &plan.Error{Msg: fmt.Sprintf(
		"backfill of %s ⇨ %s with a checkpoint table: give the total number of scan segments (--backfill-total-segments N, or total_segments in the plan), the same for every worker, so that all workers split the table alike; a good start is 8 to 16 segments per worker",
		cfg.InputTable, cfg.OutputTable)}
}

// segmentOf parses a segment lease's unit ID ("segment-00003").
func segmentOf(unit string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(unit, "segment-"))
	if err != nil || !strings.HasPrefix(unit, "segment-") {
		return 0, fmt.Errorf("lease %q is not a scan segment", unit)
	}
	return n, nil
}

// processLeased scans the segments whose leases this worker takes, until
// every segment is finished, ctx is cancelled or a fatal error.
func (r *run) processLeased(ctx context.Context, parallel, pages int) error {
	lc := r.cfg.Leases
	slots := make(chan struct{}, parallel)
	work := func(uctx context.Context, l *lease.Lease) error {
		n, err := segmentOf(l.Unit())
		if err != nil {
			return err
		}
		s := &segment{n: n, ckpt: SegmentCheckpoint{Segment: n, TotalSegments: r.total},
			sem: make(chan struct{}, pages), lease: l, ctx: uctx, finished: make(chan struct{})}
		var c SegmentCheckpoint
		ok, err := l.Resume(&c)
		if err != nil {
			return err
		}
		if ok {
			if c.TotalSegments != r.total {
				// Found in the middle of the run, once other segments may
				// be written: a runtime failure (exit 3), not bad input.
				return fmt.Errorf("checkpoint of segment %d in checkpoint table %s says total_segments %d, but this run has %d; stopped (other segments may have been written)",
					n, lc.Manager.Table(), c.TotalSegments, r.total)
			}
			s.ckpt = c
			if c.Done {
				return nil
			}
			r.resumed.Store(true)
		}
		select {
		case slots <- struct{}{}:
		case <-uctx.Done():
			return uctx.Err()
		}
		defer func() { <-slots }()
		if err := r.scanSegment(uctx, s); err != nil {
			return err
		}
		select {
		case <-s.finished:
			return nil
		case <-uctx.Done():
		}
		// Stopping, or the lease was lost: save what was fully written
		// (a lost lease refuses it, and its new owner goes on).
		if err := r.flush(uctx, s); err != nil {
			return err
		}
		return uctx.Err()
	}
	err := lc.Manager.Process(ctx, lc.Scope(), lease.ProcessOptions{Poll: lc.Poll}, work)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // interrupted: run reports ctx.Err()
	}
	return err
}
