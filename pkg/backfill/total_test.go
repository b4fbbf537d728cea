package backfill_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/stats"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// A segment lease whose checkpoint was made with another total is found
// in the middle of a leased run, once the leases are registered and other
// segments may be written: a runtime failure (exit 3), not a usage error
// (exit 2 says nothing was written).
func TestLeasedCheckpointOfAnotherTotalIsARuntimeError(t *testing.T) {
	ctx := context.Background()
	c, _ := ddbtest.Clients(t)
	src, dst := ddbtest.Name(t, "src"), ddbtest.Name(t, "dst")
	ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	load(t, c, src, 400, simpleItem)
	store := checkpointTable(t, c)
	entry := plan.Entry{Input: plan.Table{Table: src}, Output: plan.Table{Table: dst}}
	scope := lease.Scope(entry.ID(), lease.KindBackfill)

	// Plant a checkpoint of total 8 in segment 3's lease of a total-4 run.
	m := lease.NewManager(store, "planter", lease.Options{Duration: 5 * time.Second})
	if err := m.Register(ctx, scope, lease.BackfillFingerprint(entry, 4), lease.Segments(4)); err != nil {
		t.Fatal(err)
	}
	held, err := m.Acquire(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	planted := false
	for _, l := range held {
		if l.Unit() == lease.SegmentUnit(3) {
			if err := l.Checkpoint(ctx, backfill.SegmentCheckpoint{Segment: 3, TotalSegments: 8}); err != nil {
				t.Fatal(err)
			}
			planted = true
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !planted {
		t.Fatalf("took %d leases, not segment 3's", len(held))
	}

	w := lease.NewManager(store, "worker", lease.Options{Duration: 5 * time.Second})
	_, err = backfill.Run(ctx, backfill.Config{
		Source: c, Dest: c, InputTable: src, OutputTable: dst, TotalSegments: 4,
		Store: store, StateKey: entry.ID(), Stats: stats.NewEntry(src, dst), Logger: zaptest.NewLogger(t),
		PageSize: 20, Leases: &backfill.Leases{Manager: w, Entry: entry, Poll: 100 * time.Millisecond},
	})
	if err == nil || !strings.Contains(err.Error(), "total_segments 8") {
		t.Fatalf("Run = %v, want the total_segments mismatch of segment 3", err)
	}
	var pe *plan.Error
	if errors.As(err, &pe) || cmdutil.ExitCode(err) != cmdutil.ExitRuntime {
		t.Fatalf("Run = %v (%T): exit %d, want exit %d (a failure during the run, not bad input)", err, err, cmdutil.ExitCode(err), cmdutil.ExitRuntime)
	}
}
