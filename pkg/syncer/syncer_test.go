package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/stream"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

type fixture struct {
	c        *dynamodb.Client
	s        *dynamodbstreams.Client
	src, dst string
	store    *state.Memory
}

func newFixture(t *testing.T, view types.StreamViewType) *fixture {
	c, s := ddbtest.Clients(t)
	f := &fixture{c: c, s: s, src: ddbtest.Name(t, "src"), dst: ddbtest.Name(t, "dst"), store: state.NewMemory()}
	k := ddbtest.StringKey
	k.Stream = view
	ddbtest.CreateTable(t, c, f.src, k)
	ddbtest.CreateTable(t, c, f.dst, ddbtest.StringKey)
	return f
}

func (f *fixture) config(t *testing.T) syncer.Config {
	return syncer.Config{
		Common: job.Common{
			InputTable:  f.src,
			OutputTable: f.dst,
			Store:       f.store,
			StateKey:    "entry",
			Stats:       stats.NewEntry(f.src, f.dst),
			Logger:      zaptest.NewLogger(t),
		},
		Source:        f.c,
		Dest:          f.c,
		Streams:       f.s,
		Backfill:      true,
		Stream:        true,
		UntilCaughtUp: true,
		Tune: func(c *stream.Config) {
			c.PollInterval = 50 * time.Millisecond
			c.MinReadInterval = time.Millisecond
			c.DiscoverInterval = 200 * time.Millisecond
		},
	}
}

func item(pk string, v int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"v":  &types.AttributeValueMemberN{Value: fmt.Sprint(v)},
	}
}

// TestSyncWhileWriting writes puts, updates and deletes to the source for
// the whole backfill: the output ends equal to the source.
func TestSyncWhileWriting(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewAndOldImages)
	var items []map[string]types.AttributeValue
	for i := range 600 {
		items = append(items, item(fmt.Sprintf("k%04d", i), i))
	}
	ddbtest.PutItems(t, f.c, f.src, items)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes int
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for v := 1000; ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			pk := fmt.Sprintf("k%04d", rng.IntN(800)) // some keys are new
			var err error
			if rng.IntN(4) == 0 {
				_, err = f.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(f.src), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}})
			} else {
				_, err = f.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.src), Item: item(pk, v)})
			}
			if err != nil {
				t.Errorf("write: %v", err)
				return
			}
			writes++
		}
	}()
	cfg := f.config(t)
	cfg.BackfillConfig.TotalSegments = 4
	cfg.RunBackfill = func(ctx context.Context, bc backfill.Config) (backfill.Result, error) {
		// Keep writing for the whole backfill and a little after it.
		defer func() { time.Sleep(300 * time.Millisecond); close(stop); wg.Wait() }()
		return backfill.Run(ctx, bc)
	}
	if err := syncer.Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes during the backfill; stream read %d, applied %d, skipped %d", writes, cfg.Stats.RecordsRead.Load(), cfg.Stats.RecordsApplied.Load(), cfg.Stats.RecordsSkipped.Load())
	if writes == 0 {
		t.Fatal("no write happened during the backfill")
	}
	ddbtest.AssertSameItems(t, f.c, f.src, f.dst, "pk", "")
}

// TestResumesInPhase: an interrupted backfill leaves the handover recorded;
// the next run reuses T0 and the stream ARN, and a finished backfill is not
// run again.
func TestResumesInPhase(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewImage)
	cfg := f.config(t)
	calls := 0
	cfg.RunBackfill = func(context.Context, backfill.Config) (backfill.Result, error) {
		calls++
		return backfill.Result{}, context.Canceled
	}
	cfg.BackfillDone = func(context.Context, state.Store, string) (bool, error) { return false, nil }
	if err := syncer.Run(context.Background(), cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted backfill: err = %v, want context.Canceled", err)
	}
	var h1 syncer.Handover
	if ok, _ := f.store.Get(context.Background(), "entry/sync/handover", &h1); !ok || h1.StreamARN == "" || h1.T0.IsZero() || len(h1.Shards) == 0 {
		t.Fatalf("handover not recorded: %+v", h1)
	}

	ddbtest.PutItems(t, f.c, f.src, []map[string]types.AttributeValue{item("after", 1)})
	cfg.Now = func() time.Time { return time.Now().Add(time.Hour) } // a later run
	cfg.BackfillDone = func(context.Context, state.Store, string) (bool, error) { return true, nil }
	if err := syncer.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("backfill ran %d times, want once (the second run resumes in the stream phase)", calls)
	}
	var h2 syncer.Handover
	_, _ = f.store.Get(context.Background(), "entry/sync/handover", &h2)
	if !h2.T0.Equal(h1.T0) {
		t.Fatalf("T0 changed on resume: %v then %v", h1.T0, h2.T0)
	}
	ddbtest.AssertSameItems(t, f.c, f.src, f.dst, "pk", "")
}

// TestBackfillOutlivedRetention: when the stream phase begins after the
// stream's retention, sync fails instead of reporting success.
func TestBackfillOutlivedRetention(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewImage)
	cfg := f.config(t)
	now := time.Now()
	cfg.Now = func() time.Time { return now }
	cfg.BackfillDone = func(context.Context, state.Store, string) (bool, error) { return false, nil }
	cfg.RunBackfill = func(context.Context, backfill.Config) (backfill.Result, error) {
		now = now.Add(25 * time.Hour) // a very long backfill
		return backfill.Result{}, nil
	}
	err := syncer.Run(context.Background(), cfg)
	if !errors.Is(err, syncer.ErrHandoverLost) {
		t.Fatalf("err = %v, want ErrHandoverLost", err)
	}
	t.Log(err)
}

func TestStreamChangedOrDisabled(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewImage)
	cfg := f.config(t)
	_ = f.store.Put(context.Background(), "entry/sync/handover", syncer.Handover{StreamARN: "arn:aws:dynamodb:x:1:table/t/stream/old", T0: time.Now()})
	var pe *plan.Error
	if err := syncer.Check(context.Background(), cfg); !errors.As(err, &pe) {
		t.Fatalf("Check on a changed stream: err = %v, want a usage error", err)
	}
	if err := syncer.Run(context.Background(), cfg); !errors.As(err, &pe) {
		t.Fatalf("Run on a changed stream: err = %v, want a usage error", err)
	}

	c := f.c
	plain := ddbtest.Name(t, "plain")
	ddbtest.CreateTable(t, c, plain, ddbtest.StringKey)
	cfg.InputTable = plain
	cfg.Store = state.NewMemory()
	if err := syncer.Check(context.Background(), cfg); !errors.As(err, &pe) {
		t.Fatalf("no stream: err = %v, want a usage error", err)
	}
}
