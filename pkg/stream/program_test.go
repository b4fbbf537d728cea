package stream_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	st "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

// movingTables is an input keyed by pk whose stream has the view type
// view, and an output keyed by the attribute out, logging every
// BatchWriteItem call.
type movingTables struct {
	arn  string
	view types.StreamViewType
	out  string

	mu    sync.Mutex
	items map[string]map[string]types.AttributeValue // output key value → item
	calls [][]string                                 // per call: "put K" / "del K"
}

func (t *movingTables) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	key := "pk"
	if aws.ToString(in.TableName) == "dst" {
		key = t.out
	}
	return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{
		TableName:            in.TableName,
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(key), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(key), AttributeType: types.ScalarAttributeTypeS}},
		StreamSpecification:  &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: t.view},
		LatestStreamArn:      aws.String(t.arn),
	}}, nil
}

func (t *movingTables) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, errors.New("GetItem not expected: the records carry new images")
}

func (t *movingTables) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var call []string
	seen := map[string]bool{}
	for _, r := range in.RequestItems["dst"] {
		var k string
		if r.PutRequest != nil {
			k = r.PutRequest.Item[t.out].(*types.AttributeValueMemberS).Value
			t.items[k] = r.PutRequest.Item
			call = append(call, "put "+k)
		} else {
			k = r.DeleteRequest.Key[t.out].(*types.AttributeValueMemberS).Value
			delete(t.items, k)
			call = append(call, "del "+k)
		}
		if seen[k] {
			return nil, errors.New("ValidationException: Provided list of item keys contains duplicates")
		}
		seen[k] = true
	}
	t.calls = append(t.calls, call)
	return &dynamodb.BatchWriteItemOutput{}, nil
}

// image is an item of the input: pk, email and active.
func image(pk, email string, active bool) map[string]st.AttributeValue {
	return map[string]st.AttributeValue{
		"pk":     &st.AttributeValueMemberS{Value: pk},
		"email":  &st.AttributeValueMemberS{Value: email},
		"active": &st.AttributeValueMemberBOOL{Value: active},
	}
}

// change is a stream record with images (nil: none).
func change(seq int, view st.StreamViewType, pk string, old, new map[string]st.AttributeValue) st.Record {
	r := st.Record{EventName: st.OperationTypeModify, Dynamodb: &st.StreamRecord{
		Keys:           map[string]st.AttributeValue{"pk": &st.AttributeValueMemberS{Value: pk}},
		SequenceNumber: aws.String(strconv.Itoa(seq)), ApproximateCreationDateTime: aws.Time(created.Add(time.Duration(seq) * time.Millisecond)),
		StreamViewType: view,
	}}
	switch {
	case old == nil:
		r.EventName = st.OperationTypeInsert
	case new == nil:
		r.EventName = st.OperationTypeRemove
	}
	if view == st.StreamViewTypeNewAndOldImages || view == st.StreamViewTypeOldImage {
		r.Dynamodb.OldImage = old
	}
	if view == st.StreamViewTypeNewAndOldImages || view == st.StreamViewTypeNewImage {
		r.Dynamodb.NewImage = new
	}
	return r
}

// The output is keyed by the input's email: an item whose email changes
// moves to another output key.
const byEmail = "set:\n  mail: item.email\n"

func movingConfig(t *testing.T, view types.StreamViewType, recs ...st.Record) (stream.Config, *movingTables) {
	s, _ := newFakes(&fakeShard{id: "shard-1", recs: recs, closed: true})
	tb := &movingTables{arn: s.arn, view: view, out: "mail", items: map[string]map[string]types.AttributeValue{}}
	cfg := fakeConfig(t, s, nil, state.NewMemory())
	cfg.Source, cfg.Dest = tb, tb
	cfg.Program = ddbtest.Program(t, "item.active", byEmail)
	return cfg, tb
}

func TestProgramNeedsOldImagesForAComputedKey(t *testing.T) {
	for _, view := range []types.StreamViewType{types.StreamViewTypeNewImage, types.StreamViewTypeKeysOnly} {
		t.Run(string(view), func(t *testing.T) {
			cfg, tb := movingConfig(t, view)
			err := stream.Check(context.Background(), cfg)
			var pe *plan.Error
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), "old image") || !strings.Contains(err.Error(), "NEW_AND_OLD_IMAGES") {
				t.Fatalf("Check: %v; want a plan.Error asking for old images", err)
			}
			if err := runFake(t, cfg); !errors.As(err, &pe) {
				t.Fatalf("Run: %v; want the same plan.Error", err)
			}
			if len(tb.calls) != 0 {
				t.Fatalf("writes: %v", tb.calls)
			}
		})
	}
	// An output key computed from the input key alone needs no old image.
	cfg, _ := movingConfig(t, types.StreamViewTypeNewImage)
	cfg.Program = ddbtest.Program(t, "item.active", "set:\n  mail: '\"u#\" + item.pk'\n")
	if err := stream.Check(context.Background(), cfg); err != nil {
		t.Fatalf("Check with a key computed from pk: %v", err)
	}
}

func TestProgramMovesAndDeletesByTheOldImage(t *testing.T) {
	nao := st.StreamViewTypeNewAndOldImages
	cfg, tb := movingConfig(t, types.StreamViewTypeNewAndOldImages,
		change(10, nao, "a", nil, image("a", "a1@x", true)),
		change(11, nao, "b", nil, image("b", "b1@x", true)),
		change(12, nao, "c", nil, image("c", "c1@x", false)), // never passes the filter
	)
	if err := runFake(t, cfg); err != nil {
		t.Fatal(err)
	}
	want := func(keys ...string) {
		t.Helper()
		var got []string
		for k := range tb.items {
			got = append(got, k)
		}
		if strings.Join(sorted(got), ",") != strings.Join(sorted(keys), ",") {
			t.Fatalf("output keys %v, want %v (calls %v)", got, keys, tb.calls)
		}
	}
	want("a1@x", "b1@x")

	// a changes its email (a move), b leaves the filter, c is deleted.
	tb.calls = nil
	cfg2, _ := movingConfig(t, types.StreamViewTypeNewAndOldImages,
		change(20, nao, "a", image("a", "a1@x", true), image("a", "a2@x", true)),
		change(21, nao, "b", image("b", "b1@x", true), image("b", "b1@x", false)),
		change(22, nao, "c", image("c", "c1@x", false), nil),
	)
	cfg2.Source, cfg2.Dest = tb, tb
	if err := runFake(t, cfg2); err != nil {
		t.Fatal(err)
	}
	want("a2@x")
	// The old output item of the move is deleted before the new one is
	// written: in an earlier BatchWriteItem.
	delAt, putAt := -1, -1
	for i, call := range tb.calls {
		for _, w := range call {
			switch w {
			case "del a1@x":
				delAt = i
			case "put a2@x":
				putAt = i
			}
		}
	}
	if delAt < 0 || putAt < 0 || delAt >= putAt {
		t.Fatalf("calls %v: want the delete of a1@x in a call before the put of a2@x", tb.calls)
	}

	// A key changed and changed back within one batch, and a REMOVE found
	// by its old image.
	tb.calls = nil
	cfg3, _ := movingConfig(t, types.StreamViewTypeNewAndOldImages,
		change(30, nao, "a", image("a", "a2@x", true), image("a", "a3@x", true)),
		change(31, nao, "a", image("a", "a3@x", true), image("a", "a2@x", true)),
		change(32, nao, "d", nil, image("d", "d1@x", true)),
		change(33, nao, "d", image("d", "d1@x", true), nil),
	)
	cfg3.Source, cfg3.Dest = tb, tb
	if err := runFake(t, cfg3); err != nil {
		t.Fatal(err)
	}
	want("a2@x")
	if cfg3.Stats.RecordsApplied.Load() != 4 || cfg3.Stats.RecordsFailed.Load() != 0 {
		t.Fatalf("applied %d, failed %d; want 4, 0", cfg3.Stats.RecordsApplied.Load(), cfg3.Stats.RecordsFailed.Load())
	}
}

func TestProgramFailedItemStopsOrIsSkipped(t *testing.T) {
	nao := st.StreamViewTypeNewAndOldImages
	noEmail := map[string]st.AttributeValue{"pk": &st.AttributeValueMemberS{Value: "e"}, "active": &st.AttributeValueMemberBOOL{Value: true}}
	recs := []st.Record{
		change(10, nao, "a", nil, image("a", "a1@x", true)),
		change(11, nao, "e", nil, noEmail),
	}
	cfg, tb := movingConfig(t, types.StreamViewTypeNewAndOldImages, recs...)
	err := runFake(t, cfg)
	if !errors.Is(err, stream.ErrItemFailed) || !strings.Contains(err.Error(), `{"pk":"e"}`) {
		t.Fatalf("err = %v; want ErrItemFailed naming the key", err)
	}
	if len(tb.calls) != 0 || cfg.Stats.RecordsFailed.Load() != 1 {
		t.Fatalf("calls %v, failed %d; want nothing written, 1 failed", tb.calls, cfg.Stats.RecordsFailed.Load())
	}
	cfg, tb = movingConfig(t, types.StreamViewTypeNewAndOldImages, recs...)
	cfg.SkipFailedItems = true
	if err := runFake(t, cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.items["a1@x"]; !ok || len(tb.items) != 1 || cfg.Stats.RecordsFailed.Load() != 1 {
		t.Fatalf("items %v, failed %d; want a1@x written and one failed record", tb.items, cfg.Stats.RecordsFailed.Load())
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
