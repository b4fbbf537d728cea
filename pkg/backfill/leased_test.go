package backfill_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func checkpointTable(t *testing.T, c *dynamodb.Client) *state.DynamoStore {
	t.Helper()
	name := ddbtest.Name(t, "ckpt")
	s := state.NewDynamoStore(c, name, state.DynamoOptions{})
	if err := s.EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return s
}

// Two workers share a backfill through segment leases: together they
// copy every item (twice at most the pages in flight of segments the
// joining worker takes from the first to even out the load), every
// segment lease ends finished, and a second run has nothing to do.
func TestLeasedWorkersSplitTheTable(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	src, dst := ddbtest.Name(t, "src"), ddbtest.Name(t, "dst")
	ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	const n = 3000
	load(t, c, src, n, simpleItem)
	store := checkpointTable(t, c)
	entry := plan.Entry{Input: plan.Table{Table: src}, Output: plan.Table{Table: dst}}
	cfgFor := func(w int, total int) backfill.Config {
		m := lease.NewManager(store, fmt.Sprintf("worker-%d", w), lease.Options{Duration: 5 * time.Second, Logger: zaptest.NewLogger(t)})
		return backfill.Config{
			Common: job.Common{
				InputTable:  src,
				OutputTable: dst,
				Store:       store,
				StateKey:    entry.ID(),
				Stats:       stats.NewEntry(src, dst),
				Logger:      zaptest.NewLogger(t),
				Leases:      &job.Leases{Manager: m, Entry: entry, Poll: 100 * time.Millisecond},
			},
			Source:        c,
			Dest:          c,
			TotalSegments: total,
			PageSize:      50,
		}
	}

	var pe *plan.Error

	var wg sync.WaitGroup
	results := make([]backfill.Result, 2)
	errs := make([]error, 2)
	for w := range 2 {
		cfg := cfgFor(w, 8)
		if w == 1 {
			cfg.TotalSegments = 0 // the second worker may read it from the leases once registered
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w == 1 {
				// Join once the first worker registered the leases.
				m := cfg.Leases.Manager
				deadline := time.Now().Add(30 * time.Second)
				for {
					infos, err := m.List(context.Background(), cfg.Leases.Scope(lease.KindBackfill))
					if err != nil || len(infos) == 8 || time.Now().After(deadline) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			results[w], errs[w] = backfill.Run(context.Background(), cfg)
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	written := results[0].ItemsWritten + results[1].ItemsWritten
	read := results[0].ItemsRead + results[1].ItemsRead
	if written < n || read < written || written > n+8*backfill.DefaultPagesInFlight*50 {
		t.Fatalf("read %d, written %d for %d items", read, written, n)
	}
	if results[1].TotalSegments != 8 {
		t.Errorf("the second worker used %d segments, want the registered 8", results[1].TotalSegments)
	}
	done, err := backfill.LeasesDone(context.Background(), cfgFor(0, 8).Leases)
	if err != nil || !done {
		t.Fatalf("Done = %v, %v after both workers returned", done, err)
	}
	// Another run: nothing to do.
	res, err := backfill.Run(context.Background(), cfgFor(2, 0))
	if err != nil || !res.AlreadyDone || res.ItemsRead != 0 {
		t.Fatalf("second run: %+v, %v; want already done", res, err)
	}
	// A changed total is refused before anything is written.
	if err := backfill.Check(context.Background(), cfgFor(3, 16)); !errors.As(err, &pe) {
		t.Fatalf("Check with another total = %v, want a *plan.Error", err)
	}
	if _, err := backfill.Run(context.Background(), cfgFor(3, 16)); !errors.As(err, &pe) {
		t.Fatalf("Run with another total = %v, want a *plan.Error", err)
	}
}

// A worker interrupted mid-run releases its segments with their
// checkpoints; the next worker resumes them and copies the rest.
func TestLeasedInterruptAndResume(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	src, dst := ddbtest.Name(t, "src"), ddbtest.Name(t, "dst")
	ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	const n = 3000
	load(t, c, src, n, simpleItem)
	store := checkpointTable(t, c)
	entry := plan.Entry{Input: plan.Table{Table: src}, Output: plan.Table{Table: dst}}
	newCfg := func(worker string) backfill.Config {
		m := lease.NewManager(store, worker, lease.Options{Duration: 5 * time.Second})
		return backfill.Config{
			Common: job.Common{
				InputTable:  src,
				OutputTable: dst,
				Store:       store,
				StateKey:    entry.ID(),
				Stats:       stats.NewEntry(src, dst),
				Logger:      zaptest.NewLogger(t),
				Leases:      &job.Leases{Manager: m, Entry: entry, Poll: 100 * time.Millisecond},
			},
			Source:        c,
			Dest:          c,
			TotalSegments: 4,
			PageSize:      20,
			Parallel:      2,
		}
	}
	first := newCfg("first")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		deadline := time.Now().Add(60 * time.Second)
		for first.Stats.ItemsWritten.Load() < n/4 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	res1, err := backfill.Run(ctx, first)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
	infos, err := first.Leases.Manager.List(context.Background(), first.Leases.Scope(lease.KindBackfill))
	if err != nil {
		t.Fatal(err)
	}
	checkpointed := 0
	for _, in := range infos {
		if in.Owner != "" {
			t.Errorf("segment %s still owned by %s after the interrupt", in.Unit, in.Owner)
		}
		if len(in.Checkpoint) > 0 {
			checkpointed++
		}
	}
	if checkpointed == 0 {
		t.Fatal("no segment lease holds a checkpoint after the interrupt")
	}
	res2, err := backfill.Run(context.Background(), newCfg("second"))
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Resumed {
		t.Errorf("the second run did not resume from checkpoints")
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	// What the first run wrote but did not checkpoint is at most its
	// pages in flight: Parallel segments × PagesInFlight pages × PageSize.
	if extra := res1.ItemsWritten + res2.ItemsWritten - n; extra < 0 || extra > 2*backfill.DefaultPagesInFlight*20 {
		t.Fatalf("first run wrote %d, second %d: %d more than the %d items", res1.ItemsWritten, res2.ItemsWritten, extra, n)
	}
}
