package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
)

func TestKeyRoundTripsExactly(t *testing.T) {
	keys := []map[string]types.AttributeValue{
		{"pk": &types.AttributeValueMemberS{Value: "plain"}},
		{"pk": &types.AttributeValueMemberS{Value: "ünïcødé ☃ <&> \"quoted\" \\ \x01"}},
		{"pk": &types.AttributeValueMemberN{Value: "12345678901234567890123456789012345678"}},
		{"pk": &types.AttributeValueMemberN{Value: "-1.5E-130"}},
		{"pk": &types.AttributeValueMemberB{Value: []byte{0, 1, 2, 0xfe, 0xff, 0}}},
		{"pk": &types.AttributeValueMemberB{Value: []byte{0x80}}, "sk": &types.AttributeValueMemberN{Value: "0.000"}},
		{"pk": &types.AttributeValueMemberN{Value: "7"}, "sk": &types.AttributeValueMemberS{Value: ""}},
	}
	for _, k := range keys {
		enc, err := EncodeKey(k)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(enc)
		if err != nil {
			t.Fatal(err)
		}
		var back Key
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		got, err := back.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, k) {
			t.Errorf("key %v came back as %v (json %s)", k, got, data)
		}
	}
	if _, err := EncodeKey(map[string]types.AttributeValue{"pk": &types.AttributeValueMemberBOOL{Value: true}}); err == nil {
		t.Error("a BOOL key attribute was encoded; want an error")
	}
	if _, err := (Key{"pk": {Type: "X", Value: "1"}}).Decode(); err == nil {
		t.Error("an unknown type decoded; want an error")
	}
}

func TestDefaultTotalSegments(t *testing.T) {
	for _, c := range []struct {
		bytes int64
		want  int
	}{{0, 4}, {1 << 30, 4}, {10 << 30, 10}, {100 << 40, MaxSegments}} {
		if got := DefaultTotalSegments(c.bytes); got != c.want {
			t.Errorf("DefaultTotalSegments(%d) = %d, want %d", c.bytes, got, c.want)
		}
	}
}

func TestResolveTotalRefusesAnotherTotal(t *testing.T) {
	m := &Meta{TotalSegments: 8, InputTable: "in", OutputTable: "out"}
	if got, err := resolveTotal(Config{}, m, 100<<30); err != nil || got != 8 {
		t.Fatalf("resume without a total: got %d, %v; want the checkpoint's 8", got, err)
	}
	if got, err := resolveTotal(Config{TotalSegments: 8}, m, 0); err != nil || got != 8 {
		t.Fatalf("resume with the same total: got %d, %v", got, err)
	}
	_, err := resolveTotal(Config{TotalSegments: 4}, m, 0)
	var pe *plan.Error
	if !errors.As(err, &pe) {
		t.Fatalf("resume with another total: err = %v, want a *plan.Error", err)
	}
	for _, want := range []string{"made with 8 total segments", "asks for 4", "resume with 8 total segments (TotalSegments)", "remove the entry's checkpoints"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDoneFollowsSegmentFlags(t *testing.T) {
	ctx := context.Background()
	st := state.NewMemory()
	if done, err := Done(ctx, st, "e"); err != nil || done {
		t.Fatalf("no checkpoints: Done = %v, %v; want false", done, err)
	}
	must(t, st.Put(ctx, metaKey("e"), Meta{TotalSegments: 2}))
	must(t, st.Put(ctx, segmentKey("e", 0), SegmentCheckpoint{Segment: 0, TotalSegments: 2, Done: true}))
	if done, _ := Done(ctx, st, "e"); done {
		t.Fatal("one of two segments done: Done = true")
	}
	must(t, st.Put(ctx, segmentKey("e", 1), SegmentCheckpoint{Segment: 1, TotalSegments: 2, Done: true}))
	if done, err := Done(ctx, st, "e"); err != nil || !done {
		t.Fatalf("both segments done: Done = %v, %v", done, err)
	}
	// A worker that copies a subset is done when its segments are.
	must(t, st.Put(ctx, metaKey("w"), Meta{TotalSegments: 4, Segments: []int{3}}))
	must(t, st.Put(ctx, segmentKey("w", 3), SegmentCheckpoint{Segment: 3, TotalSegments: 4, Done: true}))
	if done, err := Done(ctx, st, "w"); err != nil || !done {
		t.Fatalf("subset done: Done = %v, %v", done, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
