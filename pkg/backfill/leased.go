package backfill

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// Config.Leases (an job.Leases) makes several workers share one
// backfill (--checkpoint-table): each scan segment has a lease in the
// checkpoint table; a worker scans only the segments whose leases it
// holds, checkpoints each fully written page's LastEvaluatedKey through
// the lease (a write conditional on still owning it), stops a segment at
// once when its lease is lost (at most its pages in flight are written
// twice), releases its leases on a clean stop and takes over the segments
// of a dead worker once their leases expire, from the dead worker's last
// checkpoint. Run returns nil once every segment is finished, by this
// worker or another. The lease scope is the entry's lease.KindBackfill
// unless Leases.Kind names another (sync's copies).
//
// Leases apply to a run over all segments; a static split (Segments)
// never takes leases.

// LeasesDone reports whether every segment lease of the entry's backfill
// is finished (sync uses it to resume in the stream phase).
func LeasesDone(ctx context.Context, l *job.Leases) (bool, error) {
	return l.Manager.Done(ctx, l.Scope(lease.KindBackfill))
}

// leaseTotal resolves the total segments of a leased backfill without
// writing anything: the total recorded in the checkpoint table by the
// first worker (TotalRecord), else the number of leases already
// registered or an earlier run's checkpoint (runs of older versions),
// else this worker's choice: the user's value, or one chosen from the
// table size as a single-machine run does. A user value that differs
// from a recorded one is a usage error. recorded reports whether the
// total came from the checkpoint table; otherwise the run records its
// choice (recordTotal) before it registers any lease.
func leaseTotal(ctx context.Context, cfg Config, m *Meta, tableBytes int64) (total int, recorded bool, err error) {
	var rec TotalRecord
	ok, err := cfg.Store.Get(ctx, totalKey(cfg.StateKey), &rec)
	if err != nil {
		return 0, false, err
	}
	have, from := 0, ""
	switch {
	case ok && rec.TotalSegments > 0:
		have, from = rec.TotalSegments, fmt.Sprintf("recorded in checkpoint table %s by worker %s", cfg.Leases.Manager.Table(), rec.Worker)
	default:
		infos, err := cfg.Leases.Manager.List(ctx, cfg.Leases.Scope(lease.KindBackfill))
		if err != nil {
			return 0, false, err
		}
		switch {
		case len(infos) > 0:
			have, from = len(infos), fmt.Sprintf("the number of segment leases in checkpoint table %s", cfg.Leases.Manager.Table())
		case m != nil && m.TotalSegments > 0:
			have, from = m.TotalSegments, fmt.Sprintf("the backfill checkpoint in checkpoint table %s", cfg.Leases.Manager.Table())
		}
	}
	if have > 0 {
		if cfg.TotalSegments > 0 && cfg.TotalSegments != have {
			return 0, false, totalMismatch(cfg, have, from)
		}
		return have, true, nil
	}
	if cfg.TotalSegments > 0 {
		return cfg.TotalSegments, false, nil
	}
	return DefaultTotalSegments(tableBytes), false, nil
}

func totalMismatch(cfg Config, have int, from string) error {
	return &plan.Error{Msg: fmt.Sprintf(
		"backfill of %s ⇨ %s: this worker asks for %d total segments, but the workers sharing it use %d (%s); ask for %d (%s) or for none, to use the recorded value; nothing was written",
		cfg.InputTable, cfg.OutputTable, cfg.TotalSegments, have, from, have, cfg.Names.Of("TotalSegments"))}
}

// TotalRecord is the checkpoint document in which the first worker of a
// leased backfill records the total segments every worker uses.
type TotalRecord struct {
	TotalSegments int       `json:"total_segments"`
	Worker        string    `json:"worker"`
	Given         bool      `json:"given"` // the user's value (else chosen from the table size)
	Recorded      time.Time `json:"recorded"`
}

func totalKey(stateKey string) string { return stateKey + "/backfill/total" }

// putIfAbsent is what a checkpoint table offers to record a value once.
type putIfAbsent interface {
	PutIfAbsent(ctx context.Context, key string, v any) (bool, error)
}

// recordTotal records this worker's choice of total with a conditional
// write, before any lease is registered. The first writer wins: when
// another worker recorded first, its total is read back and used (or, if
// the user gave another value, refused as a usage error).
func recordTotal(ctx context.Context, cfg Config, total int) (int, error) {
	st, ok := cfg.Store.(putIfAbsent)
	if !ok {
		return 0, fmt.Errorf("backfill with leases: the checkpoint store %T cannot record the total segments (a checkpoint table is needed)", cfg.Store)
	}
	key := totalKey(cfg.StateKey)
	won, err := st.PutIfAbsent(ctx, key, TotalRecord{
		TotalSegments: total, Worker: cfg.Leases.Manager.Worker(), Given: cfg.TotalSegments > 0, Recorded: time.Now().UTC(),
	})
	if err != nil || won {
		return total, err
	}
	var rec TotalRecord
	ok, err = cfg.Store.Get(ctx, key, &rec)
	switch {
	case err != nil:
		return 0, err
	case !ok || rec.TotalSegments <= 0:
		return 0, fmt.Errorf("backfill of %s ⇨ %s: the total segments recorded under %s in checkpoint table %s is unreadable", cfg.InputTable, cfg.OutputTable, key, cfg.Leases.Manager.Table())
	case rec.TotalSegments != total && cfg.TotalSegments > 0:
		return 0, totalMismatch(cfg, rec.TotalSegments, fmt.Sprintf("recorded in checkpoint table %s by worker %s", cfg.Leases.Manager.Table(), rec.Worker))
	}
	return rec.TotalSegments, nil
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
	// A write is sent only while its segment's lease is held: a worker
	// paused past its lease sends nothing more when it resumes. (The
	// writers receive their first batch after this, through r.jobs.)
	r.writer.Client = lease.GuardWrites(r.writer.Client)
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
			s.mu.Lock()
			stuck := s.stuck
			s.mu.Unlock()
			if stuck {
				// Not finished: the lease keeps the checkpoint before the
				// first page with failed items, for a run with a corrected
				// transform (or --skip-failed-items).
				return fmt.Errorf("segment %d: %w (the filter or transform failed on some; each is logged with its key)", n, ErrItemsFailed)
			}
			return nil
		case <-uctx.Done():
		}
		// Stopping, handing the segment over to the worker that asked
		// for it, or the lease was lost: no more batches of the segment
		// start (s.ctx is done); wait for those being written, so that
		// none lands after the next owner's writes, then save what was
		// fully written (a lost lease refuses it, and its new owner goes
		// on).
		s.mu.Lock()
		//lint:ignore SA2001 a barrier: every Add of s.writing happened before it
		s.mu.Unlock()
		s.writing.Wait()
		if err := r.flush(uctx, s); err != nil {
			return err
		}
		return uctx.Err()
	}
	err := lc.Manager.Process(ctx, lc.Scope(lease.KindBackfill), lease.ProcessOptions{Poll: lc.Poll}, work)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // interrupted: run reports ctx.Err()
	}
	return err
}
