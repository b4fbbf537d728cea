package syncer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stream"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

// TestLeasedReconcileByOneWorker: workers sharing a sync through a
// checkpoint table reconcile the output once, through one lease, and
// stream only after it: the output ends equal to the input.
func TestLeasedReconcileByOneWorker(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewImage)
	f.load(t, 120)
	var stale []map[string]types.AttributeValue
	for i := range 25 {
		stale = append(stale, item(fmt.Sprintf("gone%04d", i), i))
	}
	ddbtest.PutItems(t, f.c, f.dst, stale)

	ckpt := ddbtest.Name(t, "ckpt")
	store := state.NewDynamoStore(f.c, ckpt, state.DynamoOptions{})
	if err := store.EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	entry := plan.Entry{Input: ddbtest.Table(f.src), Output: ddbtest.Table(f.dst)}
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for w := range 2 {
		cfg := f.config(t)
		cfg.UntilCaughtUp = false
		cfg.DeleteExtra = true
		cfg.Store, cfg.StateKey = store, entry.ID()
		cfg.BackfillConfig.TotalSegments = 4
		cfg.Logger = zap.New(core).With(zap.Int("worker", w))
		cfg.Leases = &job.Leases{Manager: lease.NewManager(store, fmt.Sprintf("worker-%d", w), lease.Options{Duration: 2 * time.Second}), Entry: entry}
		cfg.Tune = func(c *stream.Config) {
			c.PollInterval, c.MinReadInterval, c.DiscoverInterval = 50*time.Millisecond, time.Millisecond, 200*time.Millisecond
			c.Leases.Poll = 200 * time.Millisecond
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[w] = syncer.Run(ctx, cfg) }()
	}
	deadline := time.Now().Add(90 * time.Second)
	for len(ddbtest.ScanAll(t, f.c, f.dst)) != 120 || logs.FilterMessageSnippet("reconciled").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the output did not reach the input's 120 items within 90 s (has %d)", len(ddbtest.ScanAll(t, f.c, f.dst)))
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	for w, err := range errs {
		if err != nil && ctx.Err() == nil {
			t.Errorf("worker %d: %v", w, err)
		}
	}
	ddbtest.AssertSameItems(t, f.c, f.src, f.dst, "pk", "")
	if n := logs.FilterMessageSnippet("reconciled").Len(); n != 1 {
		t.Errorf("%d workers reconciled the output, want exactly one", n)
	}
}

// TestBackfillBesideStreamWorkers: a shared backfill is refused while a
// worker holds a stream lease of the entry (its copy could overwrite the
// stream's newer changes), and allowed once the stream workers released
// their leases.
func TestBackfillBesideStreamWorkers(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	ckpt := ddbtest.Name(t, "ckpt")
	store := state.NewDynamoStore(c, ckpt, state.DynamoOptions{})
	if err := store.EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	entry := plan.Entry{Input: ddbtest.Table("in"), Output: ddbtest.Table("out")}
	ctx := context.Background()
	m := lease.NewManager(store, "streamer", lease.Options{Duration: 2 * time.Second})
	if err := syncer.CheckNotStreaming(ctx, m, entry); err != nil {
		t.Fatalf("no stream lease: %v", err)
	}
	scope := lease.Scope(entry.ID(), lease.KindStream)
	if err := m.Register(ctx, scope, "stream-arn", []lease.Unit{{ID: "shard-1"}}); err != nil {
		t.Fatal(err)
	}
	held, err := m.Acquire(ctx, scope)
	if err != nil || len(held) != 1 {
		t.Fatalf("acquire: %v, %d leases", err, len(held))
	}
	other := lease.NewManager(store, "copier", lease.Options{Duration: 2 * time.Second})
	wantRefused(t, syncer.CheckNotStreaming(ctx, other, entry), "streamer", "shard-1", "stop the stream workers first")
	if err := held[0].Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syncer.CheckNotStreaming(ctx, other, entry); err != nil {
		t.Fatalf("after the stream worker released its lease: %v", err)
	}
}
