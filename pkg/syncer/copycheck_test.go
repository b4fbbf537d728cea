package syncer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

func (f *fixture) copyCheck() syncer.CopyCheck {
	return syncer.CopyCheck{
		Common: job.Common{
			InputTable:  f.src,
			OutputTable: f.dst,
			Store:       f.store,
			StateKey:    "entry",
		},
		Source: f.c,
	}
}

func (f *fixture) backfill(t *testing.T, segments []int) {
	t.Helper()
	bc := backfill.Config{
		Common: job.Common{
			InputTable:  f.src,
			OutputTable: f.dst,
			Store:       f.store,
			StateKey:    "entry",
		},
		Source:        f.c,
		Dest:          f.c,
		TotalSegments: 4,
		Segments:      segments,
	}
	if _, err := backfill.Run(context.Background(), bc); err != nil {
		t.Fatal(err)
	}
}

func wantRefused(t *testing.T, err error, says ...string) {
	t.Helper()
	var pe *plan.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a usage error (exit 2)", err)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

// TestStreamAfterCopy: a first stream (or sync --backfill=false) after a
// copy of the entry reads the whole stream: it is refused when the copy
// is unfinished (the copy's older items could overwrite newer changes),
// older than the stream's retention, or older than the stream (changes in
// between are in neither); it goes ahead after a recent finished copy.
func TestStreamAfterCopy(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, types.StreamViewTypeNewImage)
	f.load(t, 40)
	if err := syncer.CheckCopy(ctx, f.copyCheck()); err != nil {
		t.Fatalf("no copy in the state: %v", err)
	}

	f.backfill(t, []int{0, 1}) // a split copy, half done
	wantRefused(t, syncer.CheckCopy(ctx, f.copyCheck()), "not finished", "2 of 4 segments")

	f.backfill(t, []int{2, 3})
	if err := syncer.CheckCopy(ctx, f.copyCheck()); err != nil {
		t.Fatalf("a finished copy begun after the stream: %v", err)
	}

	c := f.copyCheck()
	c.Now = func() time.Time { return time.Now().Add(24 * time.Hour) }
	wantRefused(t, syncer.CheckCopy(ctx, c), "longer ago than the stream keeps changes", "ddbsync sync")

	m, _, _ := backfill.LoadMeta(ctx, f.store, "entry")
	m.Began = m.Began.Add(-time.Hour) // before the table and its stream existed
	if err := f.store.Put(ctx, "entry/backfill/meta", m); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, syncer.CheckCopy(ctx, f.copyCheck()), "before the input's stream was enabled")

	// sync --backfill=false refuses the same way before writing anything.
	cfg := f.config(t)
	cfg.Backfill = false
	wantRefused(t, syncer.Check(ctx, cfg), "before the input's stream was enabled")
}

// TestStreamDuringSyncCopy: a stream started while a sync of the entry is
// still copying is refused; the sync streams once its copy is done.
func TestStreamDuringSyncCopy(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, types.StreamViewTypeNewImage)
	cfg := f.config(t)
	cfg.RunBackfill = func(context.Context, backfill.Config) (backfill.Result, error) {
		return backfill.Result{}, context.Canceled
	}
	cfg.BackfillDone = func(context.Context, state.Store, string) (bool, error) { return false, nil }
	if err := syncer.Run(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	wantRefused(t, syncer.CheckCopy(ctx, f.copyCheck()), "has not finished its copy", "ddbsync sync")
}
