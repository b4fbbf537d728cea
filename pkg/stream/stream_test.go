package stream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

type fixture struct {
	c        *dynamodb.Client
	s        *dynamodbstreams.Client
	src, dst string
	store    state.Store
}

func newFixture(t *testing.T, view types.StreamViewType) *fixture {
	t.Helper()
	c, s := ddbtest.Clients(t)
	f := &fixture{c: c, s: s, src: ddbtest.Name(t, "src"), dst: ddbtest.Name(t, "dst"), store: state.NewMemory()}
	k := ddbtest.StringKey
	k.Stream = view
	ddbtest.CreateTable(t, c, f.src, k)
	ddbtest.CreateTable(t, c, f.dst, ddbtest.StringKey)
	return f
}

func (f *fixture) config(t *testing.T, st *stats.Entry) stream.Config {
	return stream.Config{
		Common: job.Common{
			InputTable:  f.src,
			OutputTable: f.dst,
			Store:       f.store,
			StateKey:    "entry",
			Stats:       st,
			Logger:      zaptest.NewLogger(t),
		},
		Streams:          f.s,
		Source:           f.c,
		Dest:             f.c,
		UntilCaughtUp:    true,
		PollInterval:     50 * time.Millisecond,
		MinReadInterval:  time.Millisecond,
		DiscoverInterval: 200 * time.Millisecond,
	}
}

func (f *fixture) run(t *testing.T, st *stats.Entry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := stream.Run(ctx, f.config(t, st)); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("stream did not catch up within 90 s")
	}
}

func item(pk string, v int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"v":  &types.AttributeValueMemberN{Value: fmt.Sprint(v)},
	}
}

func (f *fixture) put(t *testing.T, it map[string]types.AttributeValue) {
	t.Helper()
	if _, err := f.c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(f.src), Item: it}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) update(t *testing.T, pk string, v int) {
	t.Helper()
	_, err := f.c.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(f.src),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
		UpdateExpression:          aws.String("SET v = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: fmt.Sprint(v)}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) del(t *testing.T, pk string) {
	t.Helper()
	_, err := f.c.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(f.src), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}})
	if err != nil {
		t.Fatal(err)
	}
}

// history writes inserts, updates, deletes and re-inserts of the same keys.
func (f *fixture) history(t *testing.T, round int) {
	t.Helper()
	for i := range 30 {
		pk := fmt.Sprintf("k%02d", i)
		f.put(t, item(pk, round*100))
		f.update(t, pk, round*100+1)
		switch i % 3 {
		case 0:
			f.del(t, pk) // stays deleted
		case 1:
			f.del(t, pk)
			f.put(t, item(pk, round*100+2)) // re-inserted
		}
	}
}

func checkCounts(t *testing.T, st *stats.Entry) {
	t.Helper()
	read, applied, skipped := st.RecordsRead.Load(), st.RecordsApplied.Load(), st.RecordsSkipped.Load()
	if read == 0 || read != applied+skipped {
		t.Fatalf("records read %d, applied %d, skipped %d: every record read must be applied or skipped", read, applied, skipped)
	}
}

func TestAppliesChangesInOrder(t *testing.T) {
	for _, view := range []types.StreamViewType{types.StreamViewTypeNewAndOldImages, types.StreamViewTypeNewImage, types.StreamViewTypeKeysOnly, types.StreamViewTypeOldImage} {
		t.Run(string(view), func(t *testing.T) {
			f := newFixture(t, view)
			f.history(t, 1)
			// An empty map, a nested empty map and a list holding one:
			// DynamoDB Local encodes them as bare {} in stream records.
			f.put(t, map[string]types.AttributeValue{
				"pk":    &types.AttributeValueMemberS{Value: "empty"},
				"m":     &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
				"inner": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"e": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}}},
				"l":     &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}}},
			})
			st := stats.NewEntry(f.src, f.dst)
			f.run(t, st)
			ddbtest.AssertSameItems(t, f.c, f.src, f.dst, "pk", "")
			checkCounts(t, st)
			if got := stats.GetPhase(&st.StreamPhase); got != stats.Complete {
				t.Fatalf("stream phase %v, want complete", got)
			}
			if st.ConsumedWCU.Load() <= 0 {
				t.Fatalf("consumed WCU not recorded")
			}

			// A second run resumes after the checkpoint: only the new
			// changes are read.
			f.history(t, 2)
			st2 := stats.NewEntry(f.src, f.dst)
			f.run(t, st2)
			ddbtest.AssertSameItems(t, f.c, f.src, f.dst, "pk", "")
			checkCounts(t, st2)
			if got, first := st2.RecordsRead.Load(), st.RecordsRead.Load(); got >= first+1 {
				t.Fatalf("second run read %d records; the first read %d (incl. one extra item): it did not resume after the checkpoint", got, first)
			}
		})
	}
}

func TestStreamDisabledIsUsageError(t *testing.T) {
	c, s := ddbtest.Clients(t)
	src, dst := ddbtest.Name(t, "nostream"), ddbtest.Name(t, "dst")
	ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	err := stream.Run(context.Background(), stream.Config{
		Common: job.Common{
			InputTable:  src,
			OutputTable: dst,
			StateKey:    "x",
		},
		Streams: s,
		Source:  c,
		Dest:    c,
	})
	var pe *plan.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a usage error", err)
	}
	if want := "--stream-specification StreamEnabled=true"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say how to enable a stream (%q)", err, want)
	}
}

func TestOutputMissingIsUsageError(t *testing.T) {
	c, s := ddbtest.Clients(t)
	src := ddbtest.Name(t, "src")
	k := ddbtest.StringKey
	k.Stream = types.StreamViewTypeNewImage
	ddbtest.CreateTable(t, c, src, k)
	err := stream.Run(context.Background(), stream.Config{
		Common: job.Common{
			InputTable:  src,
			OutputTable: "missing-table-xyz",
			StateKey:    "x",
		},
		Streams: s,
		Source:  c,
		Dest:    c,
	})
	if err == nil || !strings.Contains(err.Error(), "missing-table-xyz does not exist") {
		t.Fatalf("err = %v, want output table missing", err)
	}
}

// TestStopAndResume cancels a running consumer while the source is being
// written to, then restarts it: no change is lost.
func TestStopAndResume(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewAndOldImages)
	cfg := f.config(t, stats.NewEntry(f.src, f.dst))
	cfg.UntilCaughtUp = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx, cfg) }()

	// Write until the consumer has applied some of it, then stop it.
	deadline := time.Now().Add(60 * time.Second)
	i := 0
	for cfg.Stats.RecordsApplied.Load() < 50 && time.Now().Before(deadline) {
		f.put(t, item(fmt.Sprintf("s%03d", i%120), i))
		i++
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stopped run returned %v, want nil", err)
	}
	for j := range 100 {
		f.put(t, item(fmt.Sprintf("s%03d", (i+j)%120), i+j))
		if j%10 == 0 {
			f.del(t, fmt.Sprintf("s%03d", j))
		}
	}
	f.run(t, stats.NewEntry(f.src, f.dst))
	ddbtest.AssertSameItems(t, f.c, f.src, f.dst, "pk", "")
}
