package backfill

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
)

// Checkpoint layout in the state store, under Config.StateKey:
//
//	<StateKey>/backfill/meta          the run: total segments, selection
//	<StateKey>/backfill/segment-00003 one segment: last fully written key, done
//
// A segment's LastKey is the LastEvaluatedKey of the last Scan page whose
// items, and the items of every earlier page of that segment, were all
// acknowledged by BatchWriteItem: a resumed Scan starts right after it.

// Meta is the checkpoint document of a whole backfill.
type Meta struct {
	TotalSegments int       `json:"total_segments"`
	Segments      []int     `json:"segments,omitempty"` // selection of the latest run; empty: all
	InputTable    string    `json:"input_table"`
	OutputTable   string    `json:"output_table"`
	Started       time.Time `json:"started"` // the latest run's start
	// Began is when the copy's first run started, kept by every resumed
	// run (zero in checkpoints of versions before it: unknown). A stream
	// applied after the copy must hold every change since then.
	Began time.Time `json:"began,omitempty"`
	// Program is the fingerprint of the filter and transform the copy
	// applies (transform.Program.Fingerprint; empty: none). A copy is
	// resumed only with the same one, or its output would mix two.
	Program string `json:"program,omitempty"`
}

// SegmentCheckpoint is the checkpoint document of one scan segment.
type SegmentCheckpoint struct {
	Segment       int       `json:"segment"`
	TotalSegments int       `json:"total_segments"`
	Done          bool      `json:"done"`
	LastKey       Key       `json:"last_key,omitempty"`
	ItemsWritten  int64     `json:"items_written"` // items up to LastKey, over all runs
	ItemsSkipped  int64     `json:"items_skipped"`
	ItemsFailed   int64     `json:"items_failed,omitempty"` // left behind with --skip-failed-items
	Pages         int64     `json:"pages"`
	Updated       time.Time `json:"updated"`
}

// Key is a DynamoDB key (a LastEvaluatedKey) in a form that round-trips
// through JSON exactly: attribute name → typed scalar, binaries in base64.
type Key map[string]KeyValue

// KeyValue is one scalar key attribute: Type is "S", "N" or "B"; Value is
// the string, the number's text as DynamoDB returned it, or the bytes in
// standard base64.
type KeyValue struct {
	Type  string `json:"t"`
	Value string `json:"v"`
}

// EncodeKey turns a LastEvaluatedKey into a Key. Keys hold only scalar
// attributes (S, N, B); anything else is an error.
func EncodeKey(k map[string]types.AttributeValue) (Key, error) {
	if k == nil {
		return nil, nil
	}
	out := make(Key, len(k))
	for name, v := range k {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			out[name] = KeyValue{Type: "S", Value: v.Value}
		case *types.AttributeValueMemberN:
			out[name] = KeyValue{Type: "N", Value: v.Value}
		case *types.AttributeValueMemberB:
			out[name] = KeyValue{Type: "B", Value: base64.StdEncoding.EncodeToString(v.Value)}
		default:
			return nil, fmt.Errorf("key attribute %q has type %T; only S, N and B can be checkpointed", name, v)
		}
	}
	return out, nil
}

// Decode turns a Key back into DynamoDB attribute values.
func (k Key) Decode() (map[string]types.AttributeValue, error) {
	if k == nil {
		return nil, nil
	}
	out := make(map[string]types.AttributeValue, len(k))
	for name, v := range k {
		switch v.Type {
		case "S":
			out[name] = &types.AttributeValueMemberS{Value: v.Value}
		case "N":
			out[name] = &types.AttributeValueMemberN{Value: v.Value}
		case "B":
			b, err := base64.StdEncoding.DecodeString(v.Value)
			if err != nil {
				return nil, fmt.Errorf("key attribute %q: bad base64: %v", name, err)
			}
			out[name] = &types.AttributeValueMemberB{Value: b}
		default:
			return nil, fmt.Errorf("key attribute %q has unknown type %q", name, v.Type)
		}
	}
	return out, nil
}

func metaKey(stateKey string) string { return stateKey + "/backfill/meta" }

func segmentKey(stateKey string, seg int) string {
	return fmt.Sprintf("%s/backfill/segment-%05d", stateKey, seg)
}

// LoadMeta reads the backfill checkpoint document under stateKey.
func LoadMeta(ctx context.Context, store state.Store, stateKey string) (*Meta, bool, error) {
	var m Meta
	ok, err := store.Get(ctx, metaKey(stateKey), &m)
	if err != nil || !ok {
		return nil, ok, err
	}
	return &m, true, nil
}

// LoadSegment reads one segment's checkpoint.
func LoadSegment(ctx context.Context, store state.Store, stateKey string, seg int) (*SegmentCheckpoint, bool, error) {
	var c SegmentCheckpoint
	ok, err := store.Get(ctx, segmentKey(stateKey, seg), &c)
	if err != nil || !ok {
		return nil, ok, err
	}
	return &c, true, nil
}

// Done reports whether the checkpoints under stateKey say the backfill of
// those segments already completed (sync uses it to resume in the stream
// phase): the segments of the latest run (all of them when it copied the
// whole table) are all marked done.
func Done(ctx context.Context, store state.Store, stateKey string) (bool, error) {
	m, ok, err := LoadMeta(ctx, store, stateKey)
	if err != nil || !ok {
		return false, err
	}
	for _, seg := range selection(m.Segments, m.TotalSegments) {
		c, ok, err := LoadSegment(ctx, store, stateKey, seg)
		if err != nil {
			return false, err
		}
		if !ok || !c.Done {
			return false, nil
		}
	}
	return true, nil
}

// selection is the sorted list of segments a run covers.
func selection(segs []int, total int) []int {
	if len(segs) == 0 {
		all := make([]int, total)
		for i := range all {
			all[i] = i
		}
		return all
	}
	out := append([]int(nil), segs...)
	sort.Ints(out)
	return out
}

// resolveTotal decides the total segments of a run from the user's value,
// an existing checkpoint and the table size. A user value that differs
// from the checkpoint's is a usage error.
func resolveTotal(cfg Config, m *Meta, tableBytes int64) (int, error) {
	user := cfg.TotalSegments
	if m != nil && m.TotalSegments > 0 {
		if user != 0 && user != m.TotalSegments {
			return 0, &plan.Error{Msg: fmt.Sprintf(
				"the backfill checkpoints of %s ⇨ %s were made with %d total segments, but this run asks for %d: "+
					"resume with %d total segments (%s), or remove the entry's checkpoints "+
					"(state key %s in the %s) to start the copy over",
				m.InputTable, m.OutputTable, m.TotalSegments, user, m.TotalSegments, cfg.Names.Of("TotalSegments"), cfg.StateKey, state.Where(cfg.Store))}
		}
		return m.TotalSegments, nil
	}
	if user > 0 {
		return user, nil
	}
	return DefaultTotalSegments(tableBytes), nil
}

// DefaultTotalSegments chooses the number of scan segments for a table of
// the given size: one per GiB, at least MinSegments, at most MaxSegments.
func DefaultTotalSegments(tableBytes int64) int {
	n := int(tableBytes >> 30)
	return max(MinSegments, min(n, MaxSegments))
}

// Bounds of the default segment count.
const (
	MinSegments = 4
	MaxSegments = 256
)
