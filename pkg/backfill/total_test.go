package backfill_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
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
		Common: job.Common{
			InputTable:  src,
			OutputTable: dst,
			Store:       store,
			StateKey:    entry.ID(),
			Stats:       stats.NewEntry(src, dst),
			Logger:      zaptest.NewLogger(t),
			Leases:      &job.Leases{Manager: w, Entry: entry, Poll: 100 * time.Millisecond},
		},
		Source:        c,
		Dest:          c,
		TotalSegments: 4,
		PageSize:      20,
	})
	if err == nil || !strings.Contains(err.Error(), "total_segments 8") {
		t.Fatalf("Run = %v, want the total_segments mismatch of segment 3", err)
	}
	var pe *plan.Error
	if errors.As(err, &pe) || cmdutil.ExitCode(err) != cmdutil.ExitRuntime {
		t.Fatalf("Run = %v (%T): exit %d, want exit %d (a failure during the run, not bad input)", err, err, cmdutil.ExitCode(err), cmdutil.ExitRuntime)
	}
}

// leasedConfig is one worker of a leased backfill of src to dst.
func leasedConfig(t *testing.T, c *dynamodb.Client, store state.Store, ds *state.DynamoStore, entry plan.Entry, worker string, total int) backfill.Config {
	m := lease.NewManager(ds, worker, lease.Options{Duration: 5 * time.Second})
	return backfill.Config{
		Common: job.Common{
			InputTable:  entry.Input.Table,
			OutputTable: entry.Output.Table,
			Store:       store,
			StateKey:    entry.ID(),
			Stats:       stats.NewEntry(entry.Input.Table, entry.Output.Table),
			Logger:      zaptest.NewLogger(t),
			Leases:      &job.Leases{Manager: m, Entry: entry, Poll: 100 * time.Millisecond},
		},
		Source:        c,
		Dest:          c,
		TotalSegments: total,
		PageSize:      50,
	}
}

// Workers started with the identical command, without a total, agree:
// the first one chooses from the table size and records the choice, the
// other reads it, and together they copy every item. A worker that then
// asks for another total is refused (exit 2) before writing anything.
func TestLeasedWorkersWithoutTotalAgree(t *testing.T) {
	ctx := context.Background()
	c, _ := ddbtest.Clients(t)
	src, dst := ddbtest.Name(t, "src"), ddbtest.Name(t, "dst")
	ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	const n = 2000
	load(t, c, src, n, simpleItem)
	store := checkpointTable(t, c)
	entry := plan.Entry{Input: plan.Table{Table: src}, Output: plan.Table{Table: dst}}

	if err := backfill.Check(ctx, leasedConfig(t, c, store, store, entry, "checker", 0)); err != nil {
		t.Fatalf("Check without a total: %v", err)
	}
	var wg sync.WaitGroup
	results := make([]backfill.Result, 2)
	errs := make([]error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[w], errs[w] = backfill.Run(ctx, leasedConfig(t, c, store, store, entry, fmt.Sprintf("worker-%d", w), 0))
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
	// A table this small gets the minimum a single-machine run chooses.
	if results[0].TotalSegments != backfill.MinSegments || results[1].TotalSegments != backfill.MinSegments {
		t.Fatalf("workers used %d and %d segments, want both %d", results[0].TotalSegments, results[1].TotalSegments, backfill.MinSegments)
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	scope := lease.Scope(entry.ID(), lease.KindBackfill)
	infos, err := lease.NewManager(store, "lister", lease.Options{}).List(ctx, scope)
	if err != nil || len(infos) != backfill.MinSegments {
		t.Fatalf("%d segment leases (%v), want %d", len(infos), err, backfill.MinSegments)
	}

	// Another explicit total: refused before anything is written.
	cfg := leasedConfig(t, c, store, store, entry, "other", 16)
	var pe *plan.Error
	if err := backfill.Check(ctx, cfg); !errors.As(err, &pe) || !strings.Contains(err.Error(), "asks for 16 total segments") {
		t.Fatalf("Check with total 16 = %v, want a *plan.Error naming 16", err)
	}
	res, err := backfill.Run(ctx, cfg)
	if !errors.As(err, &pe) || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("Run with total 16 = %v, want exit %d", err, cmdutil.ExitUsage)
	}
	if res.ItemsRead != 0 || res.ItemsWritten != 0 {
		t.Fatalf("refused run read %d and wrote %d items", res.ItemsRead, res.ItemsWritten)
	}
	if infos, err := lease.NewManager(store, "lister", lease.Options{}).List(ctx, scope); err != nil || len(infos) != backfill.MinSegments {
		t.Fatalf("%d segment leases after the refusal (%v), want %d", len(infos), err, backfill.MinSegments)
	}
	// The same explicit total as recorded is accepted.
	if err := backfill.Check(ctx, leasedConfig(t, c, store, store, entry, "same", backfill.MinSegments)); err != nil {
		t.Fatalf("Check with the recorded total: %v", err)
	}
}

// racingStore lets another worker record its total just before this
// worker's conditional write: the loser of that race.
type racingStore struct {
	*state.DynamoStore
	rival int
}

func (r *racingStore) PutIfAbsent(ctx context.Context, key string, v any) (bool, error) {
	if strings.HasSuffix(key, "/backfill/total") {
		if _, err := r.DynamoStore.PutIfAbsent(ctx, key, backfill.TotalRecord{TotalSegments: r.rival, Worker: "rival"}); err != nil {
			return false, err
		}
	}
	return r.DynamoStore.PutIfAbsent(ctx, key, v)
}

// Two workers choose at the same moment: the first conditional write
// wins, and the loser uses the winner's total, or, when it was given
// another total explicitly, stops with exit 2 before registering a lease.
func TestLeasedTotalRaceLoserUsesTheWinnersTotal(t *testing.T) {
	ctx := context.Background()
	c, _ := ddbtest.Clients(t)
	for _, tc := range []struct {
		name  string
		given int
	}{{name: "no total given"}, {name: "another total given", given: 8}} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := ddbtest.Name(t, "src"), ddbtest.Name(t, "dst")
			ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
			ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
			load(t, c, src, 600, simpleItem)
			ds := checkpointTable(t, c)
			entry := plan.Entry{Input: plan.Table{Table: src}, Output: plan.Table{Table: dst}}
			cfg := leasedConfig(t, c, &racingStore{DynamoStore: ds, rival: 6}, ds, entry, "loser", tc.given)
			res, err := backfill.Run(ctx, cfg)
			infos, lerr := cfg.Leases.Manager.List(ctx, cfg.Leases.Scope(lease.KindBackfill))
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tc.given == 0 {
				if err != nil || res.TotalSegments != 6 || len(infos) != 6 {
					t.Fatalf("Run = %+v, %v with %d leases; want the winner's 6 segments", res, err, len(infos))
				}
				ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
				return
			}
			var pe *plan.Error
			if !errors.As(err, &pe) || cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "use 6") {
				t.Fatalf("Run = %v, want exit 2 naming the recorded 6", err)
			}
			if res.ItemsWritten != 0 || len(infos) != 0 {
				t.Fatalf("refused run wrote %d items and registered %d leases", res.ItemsWritten, len(infos))
			}
		})
	}
}
