package syncer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

// changeBetweenRuns updates, deletes and inserts items of the input, as an
// application does between an operator's two runs.
func (f *fixture) changeBetweenRuns(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := f.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.src), Item: item(fmt.Sprintf("k%04d", i), 9000+i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(f.src),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("k%04d", 100+i)}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.src), Item: item(fmt.Sprintf("new%04d", i), i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) load(t *testing.T, n int) {
	var items []map[string]types.AttributeValue
	for i := range n {
		items = append(items, item(fmt.Sprintf("k%04d", i), i))
	}
	ddbtest.PutItems(t, f.c, f.src, items)
}

// later makes the sync start as if its first run began minutes after the
// changes made between the runs: with the safety margin, the stream phase
// then leaves those changes out, as it does on a real table when the
// second run comes more than two minutes later.
func later(cfg *syncer.Config) {
	cfg.Now = func() time.Time { return time.Now().Add(5 * time.Minute) }
}

// TestSyncAfterBackfill: a backfill, changes, then sync. The backfill made
// before sync's handover must not count toward it (it did, and every
// change in between was lost with "caught up").
func TestSyncAfterBackfill(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewAndOldImages)
	f.load(t, 300)
	cfg := f.config(t)
	bc := cfg.BackfillConfig
	bc.Source, bc.Dest, bc.InputTable, bc.OutputTable = f.c, f.c, f.src, f.dst
	bc.Store, bc.StateKey, bc.TotalSegments = f.store, "entry", 4
	if _, err := backfill.Run(context.Background(), bc); err != nil {
		t.Fatal(err)
	}
	f.changeBetweenRuns(t, 20)

	core, logs := observer.New(zap.InfoLevel)
	cfg.Logger = zap.New(core)
	cfg.BackfillConfig.TotalSegments = 4
	later(&cfg)
	if err := syncer.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ddbtest.AssertSameItems(t, f.c, f.src, f.dst, "pk", "")
	if logs.FilterMessageSnippet("an earlier copy of this entry").Len() == 0 {
		t.Errorf("no warning names the earlier copy; logs: %v", logs.All())
	}
}

// TestSyncAfterSyncWithoutStream: the split the plan validation suggested,
// sync with the stream disabled, then sync.
func TestSyncAfterSyncWithoutStream(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewImage)
	f.load(t, 300)
	cfg := f.config(t)
	cfg.BackfillConfig.TotalSegments = 4
	first := cfg
	first.Stream = false
	if err := syncer.Run(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	f.changeBetweenRuns(t, 20)
	later(&cfg)
	if err := syncer.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ddbtest.AssertSameItems(t, f.c, f.src, f.dst, "pk", "")
}

// TestSyncIntoNonEmptyOutput: items another program left in the output
// are kept (with a warning) unless DeleteExtra reconciles the output.
func TestSyncIntoNonEmptyOutput(t *testing.T) {
	for _, deleteExtra := range []bool{false, true} {
		t.Run(fmt.Sprint("delete-extra=", deleteExtra), func(t *testing.T) {
			f := newFixture(t, types.StreamViewTypeNewImage)
			f.load(t, 100)
			var stale []map[string]types.AttributeValue
			for i := range 30 {
				stale = append(stale, item(fmt.Sprintf("gone%04d", i), i))
			}
			ddbtest.PutItems(t, f.c, f.dst, stale)
			core, logs := observer.New(zap.InfoLevel)
			cfg := f.config(t)
			cfg.Logger = zap.New(core)
			cfg.BackfillConfig.TotalSegments = 2
			cfg.DeleteExtra = deleteExtra
			if err := syncer.Run(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			out := ddbtest.ScanAll(t, f.c, f.dst)
			if deleteExtra {
				ddbtest.AssertSameItems(t, f.c, f.src, f.dst, "pk", "")
				return
			}
			if len(out) != 130 {
				t.Fatalf("output has %d items, want the 100 copied and the 30 kept", len(out))
			}
			warned := false
			for _, e := range logs.All() {
				if strings.Contains(e.Message, "already holds items") && strings.Contains(e.Message, "(DeleteExtra)") {
					warned = true
				}
			}
			if !warned {
				t.Errorf("no warning about the non-empty output; logs: %v", logs.All())
			}
		})
	}
}

// TestReconcileKeepsConcurrentChange: an output item the input lacks at
// the scan but has again at the confirming read is kept.
func TestReconcileOnlyOnce(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewImage)
	f.load(t, 50)
	ddbtest.PutItems(t, f.c, f.dst, []map[string]types.AttributeValue{item("gone", 1)})
	cfg := f.config(t)
	cfg.BackfillConfig.TotalSegments = 2
	cfg.DeleteExtra = true
	if err := syncer.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	var rec struct{ Deleted int64 }
	var h struct{ Generation string }
	if ok, err := f.store.Get(context.Background(), "entry/sync/handover", &h); err != nil || !ok || h.Generation == "" {
		t.Fatalf("handover record: ok=%v err=%v %+v, want a generation", ok, err, h)
	}
	if ok, err := f.store.Get(context.Background(), "entry/sync/reconciled-"+h.Generation, &rec); err != nil || !ok || rec.Deleted != 1 {
		t.Fatalf("reconciliation record: ok=%v err=%v %+v, want 1 deleted", ok, err, rec)
	}
	// A resumed sync does not reconcile again: an item put into the output
	// by hand afterwards stays.
	ddbtest.PutItems(t, f.c, f.dst, []map[string]types.AttributeValue{item("mine", 1)})
	if err := syncer.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if n := len(ddbtest.ScanAll(t, f.c, f.dst)); n != 51 {
		t.Fatalf("output has %d items after the resumed run, want 51", n)
	}
}

// TestStartOverReconcilesAgain: a sync started over by removing its
// handover record (and not every other record of the entry) makes a new
// copy, which is reconciled again: the record of the earlier copy's
// reconciliation does not count for it (it did, and an output item the
// input lacks was kept).
func TestStartOverReconcilesAgain(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewImage)
	f.load(t, 50)
	cfg := f.config(t)
	cfg.BackfillConfig.TotalSegments = 2
	cfg.DeleteExtra = true
	if err := syncer.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Delete(context.Background(), "entry/sync/handover"); err != nil {
		t.Fatal(err)
	}
	ddbtest.PutItems(t, f.c, f.dst, []map[string]types.AttributeValue{item("stale", 1)})
	later(&cfg)
	if err := syncer.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ddbtest.AssertSameItems(t, f.c, f.src, f.dst, "pk", "")
}

// TestResumeWithRecordsOfAnEarlierVersion: a sync in its stream phase whose
// records were written by an earlier version (under the keys without the
// generation) resumes without checking the handover again or reconciling
// again: a stream-started record written during this handover counts.
func TestResumeWithRecordsOfAnEarlierVersion(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewImage)
	f.load(t, 50)
	cfg := f.config(t)
	cfg.BackfillConfig.TotalSegments = 2
	cfg.DeleteExtra = true
	if err := syncer.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var h struct {
		Generation string
		T0         time.Time `json:"t0"`
	}
	if ok, err := f.store.Get(ctx, "entry/sync/handover", &h); err != nil || !ok || h.Generation == "" {
		t.Fatalf("handover: ok=%v err=%v %+v", ok, err, h)
	}
	for _, name := range []string{"stream-started", "reconciled"} {
		var rec map[string]any
		if ok, err := f.store.Get(ctx, "entry/sync/"+name+"-"+h.Generation, &rec); err != nil || !ok {
			t.Fatalf("%s: ok=%v err=%v", name, ok, err)
		}
		if err := f.store.Put(ctx, "entry/sync/"+name, rec); err != nil {
			t.Fatal(err)
		}
		if err := f.store.Delete(ctx, "entry/sync/"+name+"-"+h.Generation); err != nil {
			t.Fatal(err)
		}
	}
	// A run long after T0 would find the handover lost if it checked again.
	ddbtest.PutItems(t, f.c, f.dst, []map[string]types.AttributeValue{item("mine", 1)})
	cfg.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	if err := syncer.Run(ctx, cfg); err != nil {
		t.Fatalf("resumed sync: %v", err)
	}
	if n := len(ddbtest.ScanAll(t, f.c, f.dst)); n != 51 {
		t.Fatalf("output has %d items: the resumed sync reconciled again", n)
	}
}
