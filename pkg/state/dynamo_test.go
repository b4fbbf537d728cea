package state_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

type doc struct {
	Segment int               `json:"segment"`
	LEK     map[string]string `json:"lek,omitempty"`
	Done    bool              `json:"done"`
}

// newDynamoStore creates a fresh checkpoint table through EnsureTable and
// drops it after the test.
func newDynamoStore(t *testing.T) (*state.DynamoStore, *dynamodb.Client, *observer.ObservedLogs) {
	t.Helper()
	c, _ := ddbtest.Clients(t)
	name := ddbtest.Name(t, "ckpt")
	core, logs := observer.New(zap.InfoLevel)
	st := state.NewDynamoStore(c, name, state.DynamoOptions{Writer: "test-worker", Logger: zap.New(core)})
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	if err := st.EnsureTable(context.Background()); err != nil {
		t.Fatalf("EnsureTable: %v", err)
	}
	return st, c, logs
}

// storeSuite is the behaviour every Store must have.
func storeSuite(t *testing.T, st state.Store) {
	ctx := context.Background()
	var got doc
	ok, err := st.Get(ctx, "E1/backfill/segment-0", &got)
	if err != nil || ok {
		t.Fatalf("Get of a missing key = %v, %v; want false, nil", ok, err)
	}
	want := map[string]doc{
		"E1/backfill/segment-0":  {Segment: 0, LEK: map[string]string{"pk": "a\"b/ü"}},
		"E1/backfill/segment-1":  {Segment: 1, Done: true},
		"E1/backfill/segment-10": {Segment: 10},
		"E1/stream/shard-abc":    {Segment: -1},
		"E12/backfill/segment-0": {Segment: 5},
		"E2":                     {Segment: 2},
	}
	for k, v := range want {
		if err := st.Put(ctx, k, v); err != nil {
			t.Fatalf("Put %s: %v", k, err)
		}
	}
	for k, v := range want {
		got = doc{}
		ok, err := st.Get(ctx, k, &got)
		if err != nil || !ok {
			t.Fatalf("Get %s = %v, %v", k, ok, err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("Get %s = %+v, want %+v", k, got, v)
		}
	}
	// Overwrite.
	if err := st.Put(ctx, "E1/backfill/segment-0", doc{Segment: 0, Done: true}); err != nil {
		t.Fatal(err)
	}
	got = doc{}
	if _, err := st.Get(ctx, "E1/backfill/segment-0", &got); err != nil || !got.Done || got.LEK != nil {
		t.Errorf("after overwrite Get = %+v, %v; want the new document only", got, err)
	}
	lists := map[string][]string{
		"E1/backfill/": {"E1/backfill/segment-0", "E1/backfill/segment-1", "E1/backfill/segment-10"},
		"E1/":          {"E1/backfill/segment-0", "E1/backfill/segment-1", "E1/backfill/segment-10", "E1/stream/shard-abc"},
		"E1":           {"E1/backfill/segment-0", "E1/backfill/segment-1", "E1/backfill/segment-10", "E1/stream/shard-abc", "E12/backfill/segment-0"},
		"E":            {"E1/backfill/segment-0", "E1/backfill/segment-1", "E1/backfill/segment-10", "E1/stream/shard-abc", "E12/backfill/segment-0", "E2"},
		"E3/":          nil,
	}
	for prefix, w := range lists {
		keys, err := st.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List %q: %v", prefix, err)
		}
		if !reflect.DeepEqual(keys, w) {
			t.Errorf("List %q = %q, want %q", prefix, keys, w)
		}
	}
	if err := st.Delete(ctx, "E1/backfill/segment-1"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "E1/backfill/never-written"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if ok, err := st.Get(ctx, "E1/backfill/segment-1", &got); ok || err != nil {
		t.Errorf("Get after Delete = %v, %v; want false, nil", ok, err)
	}
	keys, _ := st.List(ctx, "E1/backfill/")
	if !reflect.DeepEqual(keys, []string{"E1/backfill/segment-0", "E1/backfill/segment-10"}) {
		t.Errorf("List after Delete = %q", keys)
	}
}

func TestStoreSuite(t *testing.T) {
	t.Run("memory", func(t *testing.T) { storeSuite(t, state.NewMemory()) })
	t.Run("file", func(t *testing.T) {
		fs, err := state.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		storeSuite(t, fs)
	})
	t.Run("dynamo", func(t *testing.T) {
		st, _, _ := newDynamoStore(t)
		storeSuite(t, st)
	})
}

func TestDynamoStoreBookkeepingAndCreation(t *testing.T) {
	st, c, logs := newDynamoStore(t)
	ctx := context.Background()
	if n := logs.FilterMessageSnippet("creating it (on-demand billing").Len(); n != 1 {
		t.Errorf("want one log line announcing the table creation, got %d: %v", n, logs.All())
	}
	desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(st.Table())})
	if err != nil {
		t.Fatal(err)
	}
	if desc.Table.BillingModeSummary == nil || desc.Table.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("checkpoint table billing = %+v, want on-demand", desc.Table.BillingModeSummary)
	}
	// EnsureTable on the existing table checks it and creates nothing.
	if err := st.EnsureTable(ctx); err != nil {
		t.Fatalf("second EnsureTable: %v", err)
	}
	if n := logs.FilterMessageSnippet("creating it").Len(); n != 1 {
		t.Errorf("second EnsureTable logged a creation again (%d lines)", n)
	}

	for i := 0; i < 3; i++ {
		if err := st.Put(ctx, "E/backfill/segment-0", doc{Segment: i}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(st.Table()),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "E"}, "sk": &types.AttributeValueMemberS{Value: "E/backfill/segment-0"}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil || out.Item == nil {
		t.Fatalf("raw GetItem: %v, %v", out, err)
	}
	if v, _ := out.Item[state.AttrVersion].(*types.AttributeValueMemberN); v == nil || v.Value != "3" {
		t.Errorf("version = %v, want 3 after three writes", out.Item[state.AttrVersion])
	}
	if w, _ := out.Item[state.AttrWriter].(*types.AttributeValueMemberS); w == nil || w.Value != "test-worker" {
		t.Errorf("writer = %v, want test-worker", out.Item[state.AttrWriter])
	}
	if d, _ := out.Item[state.AttrDoc].(*types.AttributeValueMemberS); d == nil || d.Value != `{"segment":2,"done":false}` {
		t.Errorf("doc = %v", out.Item[state.AttrDoc])
	}
	if a, _ := out.Item[state.AttrUpdatedAt].(*types.AttributeValueMemberS); a == nil || !strings.Contains(a.Value, "T") {
		t.Errorf("updated_at = %v, want an RFC 3339 time", out.Item[state.AttrUpdatedAt])
	}

	// Items that are not documents (leases) are never listed or read as documents.
	_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.Table()), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "E"}, "sk": &types.AttributeValueMemberS{Value: "~lease/backfill/segment-0"},
		"unit": &types.AttributeValueMemberS{Value: "segment-0"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"E/", "E", ""} {
		keys, err := st.List(ctx, prefix)
		if err != nil || !reflect.DeepEqual(keys, []string{"E/backfill/segment-0"}) {
			t.Errorf("List %q = %q, %v; want only the document", prefix, keys, err)
		}
	}
}

func TestDynamoStoreBadKeys(t *testing.T) {
	st := state.NewDynamoStore(nil, "unused", state.DynamoOptions{}) // the keys are refused before any call
	ctx := context.Background()
	for _, k := range []string{"", "~lease/x", "E//x", "E/", "/E", strings.Repeat("x", 1025)} {
		if err := st.Put(ctx, k, doc{}); err == nil {
			t.Errorf("Put %q: no error", k)
		}
		if _, err := st.Get(ctx, k, &doc{}); err == nil {
			t.Errorf("Get %q: no error", k)
		}
	}
}

func TestDynamoStoreWrongSchema(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	ctx := context.Background()
	for name, spec := range map[string]ddbtest.KeySpec{
		"hash only":      ddbtest.StringKey,
		"other names":    {Hash: "id", HashType: types.ScalarAttributeTypeS, Range: "sk", RangeType: types.ScalarAttributeTypeS},
		"numeric range":  {Hash: "pk", HashType: types.ScalarAttributeTypeS, Range: "sk", RangeType: types.ScalarAttributeTypeN},
		"swapped":        {Hash: "sk", HashType: types.ScalarAttributeTypeS, Range: "pk", RangeType: types.ScalarAttributeTypeS},
		"numeric hash":   {Hash: "pk", HashType: types.ScalarAttributeTypeN, Range: "sk", RangeType: types.ScalarAttributeTypeS},
		"other sort key": {Hash: "pk", HashType: types.ScalarAttributeTypeS, Range: "id", RangeType: types.ScalarAttributeTypeS},
	} {
		t.Run(name, func(t *testing.T) {
			table := ddbtest.Name(t, "wrong")
			ddbtest.CreateTable(t, c, table, spec)
			st := state.NewDynamoStore(c, table, state.DynamoOptions{})
			err := st.EnsureTable(ctx)
			var pe *plan.Error
			if !errors.As(err, &pe) {
				t.Fatalf("EnsureTable on a table keyed %+v = %v; want a *plan.Error (exit 2)", spec, err)
			}
			for _, want := range []string{table, "pk (S, hash) and sk (S, range)", "name another table"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if n := len(ddbtest.ScanAll(t, c, table)); n != 0 {
				t.Errorf("%d items were written to the refused table", n)
			}
		})
	}
}

// The command-line side: --checkpoint-table and the factory's store.
func TestFactoryCheckpointStore(t *testing.T) {
	ctx := context.Background()
	ios, _, out, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Globals: cmdutil.DefaultGlobals()}
	f.Globals.EndpointURL = ddbtest.Endpoint(t)
	f.Globals.StateDir = t.TempDir()
	p := &plan.Plan{Entries: []plan.Entry{{Input: plan.Table{Table: "orders", Region: ddbtest.Region}, Output: plan.Table{Table: "orders2"}}}}
	p.Normalize()

	st, err := f.CheckpointStore(ctx, p, nil, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*state.FileStore); !ok {
		t.Errorf("without a checkpoint table the store is %T, want the file store", st)
	}

	if err := cmdutil.ApplyCheckpointTable(p, "bad name!", plan.ModeBackfill); err == nil {
		t.Error("an invalid --checkpoint-table name was accepted")
	}
	p.CheckpointTable = nil
	name := ddbtest.Name(t, "flagckpt")
	if err := cmdutil.ApplyCheckpointTable(p, name, plan.ModeBackfill); err != nil {
		t.Fatal(err)
	}
	if p.CheckpointTable.Region != ddbtest.Region {
		t.Errorf("checkpoint table region %q, want the input's", p.CheckpointTable.Region)
	}
	if err := cmdutil.ApplyCheckpointTable(p, "another", plan.ModeBackfill); err == nil {
		t.Error("a --checkpoint-table different from the plan's was accepted")
	}
	c, _ := ddbtest.Clients(t)
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	st, err = f.CheckpointStore(ctx, p, nil, "w1")
	if err != nil {
		t.Fatal(err)
	}
	ds, ok := st.(*state.DynamoStore)
	if !ok || ds.Table() != name {
		t.Fatalf("store %T %v; want a DynamoStore on %s", st, st, name)
	}
	if err := st.Put(ctx, "E/backfill/segment-0", doc{Segment: 1}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "checkpoint table "+name+" does not exist: creating it") {
		t.Errorf("no creation line on stdout: %q", out.String())
	}
}

// PutIfAbsent: of several workers racing to record a document, exactly
// one writes; everyone then reads the winner's document.
func TestDynamoStorePutIfAbsent(t *testing.T) {
	st, _, _ := newDynamoStore(t)
	ctx := context.Background()
	const key = "entry-1/sync/handover"
	type doc struct{ Worker int }
	var wg sync.WaitGroup
	var wins atomic.Int32
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wrote, err := st.PutIfAbsent(ctx, key, doc{Worker: w})
			if err != nil {
				errs <- err
				return
			}
			if wrote {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if wins.Load() != 1 {
		t.Fatalf("%d workers wrote the document; want exactly 1", wins.Load())
	}
	var got doc
	if ok, err := st.Get(ctx, key, &got); err != nil || !ok {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if wrote, err := st.PutIfAbsent(ctx, key, doc{Worker: 99}); err != nil || wrote {
		t.Fatalf("PutIfAbsent over an existing document = %v, %v", wrote, err)
	}
	var again doc
	if _, err := st.Get(ctx, key, &again); err != nil || again != got {
		t.Fatalf("document changed to %+v (%v); want %+v", again, err, got)
	}
	if _, err := st.PutIfAbsent(ctx, "~lease/x", doc{}); err == nil {
		t.Fatal("PutIfAbsent accepted a reserved key")
	}
}
