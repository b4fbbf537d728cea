package stream_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	st "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

// fakeShard is one shard of the fake stream; records[i] has sequence
// number seqs[i]. Records before trimmed are gone.
type fakeShard struct {
	id, parent string
	recs       []st.Record
	closed     bool
	trimmed    int  // index of the first record still available
	spurious   bool // AFTER_SEQUENCE_NUMBER answers TrimmedDataAccessException anyway
	// emptyPages is how many GetRecords calls answer an empty page before
	// the records show, as DynamoDB Streams does on a stretch of a shard
	// without records.
	emptyPages int
}

// fakeStreams is a DynamoDB Streams API over fakeShards.
type fakeStreams struct {
	mu      sync.Mutex
	arn     string
	shards  []*fakeShard // listing order
	errs    []error      // returned by the next GetRecords calls
	calls   int
	pageMax int // DescribeStream page size (the service allows at most 100)
	status  st.StreamStatus
}

func (f *fakeStreams) shard(id string) *fakeShard {
	for _, s := range f.shards {
		if s.id == id {
			return s
		}
	}
	return nil
}

func (f *fakeStreams) DescribeStream(_ context.Context, in *dynamodbstreams.DescribeStreamInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	limit := int(aws.ToInt32(in.Limit))
	if limit <= 0 || limit > 100 {
		return nil, fmt.Errorf("DescribeStream limit %d out of range", limit)
	}
	limit = min(limit, f.pageMax)
	start := 0
	if in.ExclusiveStartShardId != nil {
		for i, s := range f.shards {
			if s.id == *in.ExclusiveStartShardId {
				start = i + 1
			}
		}
	}
	d := &st.StreamDescription{StreamArn: aws.String(f.arn), StreamStatus: st.StreamStatusEnabled, StreamViewType: st.StreamViewTypeNewAndOldImages}
	if f.status != "" {
		d.StreamStatus = f.status
	}
	end := min(start+limit, len(f.shards))
	for _, s := range f.shards[start:end] {
		sh := st.Shard{ShardId: aws.String(s.id), SequenceNumberRange: &st.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
		if s.parent != "" {
			sh.ParentShardId = aws.String(s.parent)
		}
		if s.closed {
			sh.SequenceNumberRange.EndingSequenceNumber = aws.String("99999999999999999999")
		}
		d.Shards = append(d.Shards, sh)
	}
	if end < len(f.shards) {
		d.LastEvaluatedShardId = aws.String(f.shards[end-1].id)
	}
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: d}, nil
}

func seqNum(r st.Record) string { return aws.ToString(r.Dynamodb.SequenceNumber) }

func cmpSeq(a, b string) int {
	x, _ := strconv.ParseUint(a, 10, 64)
	y, _ := strconv.ParseUint(b, 10, 64)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func (f *fakeStreams) GetShardIterator(_ context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shard(aws.ToString(in.ShardId))
	if s == nil {
		return nil, &st.ResourceNotFoundException{Message: aws.String("no shard")}
	}
	pos := s.trimmed
	switch in.ShardIteratorType {
	case st.ShardIteratorTypeTrimHorizon:
	case st.ShardIteratorTypeAfterSequenceNumber:
		seq := aws.ToString(in.SequenceNumber)
		if s.spurious || (s.trimmed > 0 && cmpSeq(seq, seqNum(s.recs[s.trimmed-1])) <= 0) {
			return nil, &st.TrimmedDataAccessException{Message: aws.String("trimmed")}
		}
		pos = len(s.recs)
		for i, r := range s.recs {
			if cmpSeq(seqNum(r), seq) > 0 {
				pos = i
				break
			}
		}
	default:
		return nil, fmt.Errorf("iterator type %s not faked", in.ShardIteratorType)
	}
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s|%d", s.id, pos))}, nil
}

func (f *fakeStreams) GetRecords(_ context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	id, p, _ := strings.Cut(aws.ToString(in.ShardIterator), "|")
	pos, _ := strconv.Atoi(p)
	s := f.shard(id)
	if pos < s.trimmed {
		return nil, &st.TrimmedDataAccessException{Message: aws.String("trimmed")}
	}
	if s.emptyPages > 0 {
		s.emptyPages--
		return &dynamodbstreams.GetRecordsOutput{Records: []st.Record{}, NextShardIterator: in.ShardIterator}, nil
	}
	end := min(pos+int(aws.ToInt32(in.Limit)), len(s.recs))
	out := &dynamodbstreams.GetRecordsOutput{Records: append([]st.Record(nil), s.recs[pos:end]...)}
	if end < len(s.recs) || !s.closed {
		out.NextShardIterator = aws.String(fmt.Sprintf("%s|%d", id, end))
	}
	return out, nil
}

// fakeTables is the source (DescribeTable with a stream) and the
// destination (BatchWriteItem) in one, logging every write in order.
type fakeTables struct {
	arn    string
	mu     sync.Mutex
	items  map[string]string   // pk → v of the destination
	writes map[string][]string // pk → values written, in order ("" for a delete)
}

func (t *fakeTables) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	d := &types.TableDescription{
		TableName:            in.TableName,
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		StreamSpecification:  &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages},
		LatestStreamArn:      aws.String(t.arn),
	}
	return &dynamodb.DescribeTableOutput{Table: d}, nil
}

func (t *fakeTables) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, errors.New("GetItem not expected for a NEW_AND_OLD_IMAGES stream")
}

func (t *fakeTables) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, reqs := range in.RequestItems {
		seen := map[string]bool{}
		for _, r := range reqs {
			var pk, v string
			if r.PutRequest != nil {
				pk = r.PutRequest.Item["pk"].(*types.AttributeValueMemberS).Value
				v = r.PutRequest.Item["v"].(*types.AttributeValueMemberN).Value
			} else {
				pk = r.DeleteRequest.Key["pk"].(*types.AttributeValueMemberS).Value
			}
			if seen[pk] {
				return nil, errors.New("ValidationException: Provided list of item keys contains duplicates")
			}
			seen[pk] = true
			t.writes[pk] = append(t.writes[pk], v)
			if v == "" {
				delete(t.items, pk)
			} else {
				t.items[pk] = v
			}
		}
	}
	return &dynamodb.BatchWriteItemOutput{}, nil
}

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// rec builds a record: v "" is a REMOVE.
func rec(seq int, pk, v string) st.Record {
	keys := map[string]st.AttributeValue{"pk": &st.AttributeValueMemberS{Value: pk}}
	r := st.Record{EventName: st.OperationTypeRemove, Dynamodb: &st.StreamRecord{
		Keys: keys, SequenceNumber: aws.String(strconv.Itoa(seq)), ApproximateCreationDateTime: aws.Time(created.Add(time.Duration(seq) * time.Millisecond)),
		StreamViewType: st.StreamViewTypeNewAndOldImages,
	}}
	if v != "" {
		r.EventName = st.OperationTypeModify
		r.Dynamodb.NewImage = map[string]st.AttributeValue{"pk": keys["pk"], "v": &st.AttributeValueMemberN{Value: v}}
	}
	return r
}

func newFakes(shards ...*fakeShard) (*fakeStreams, *fakeTables) {
	arn := "arn:aws:dynamodb:us-east-1:1:table/src/stream/x"
	return &fakeStreams{arn: arn, shards: shards, pageMax: 100}, &fakeTables{arn: arn, items: map[string]string{}, writes: map[string][]string{}}
}

func fakeConfig(t *testing.T, s *fakeStreams, tb *fakeTables, store state.Store) stream.Config {
	return stream.Config{
		Common: job.Common{
			InputTable:  "src",
			OutputTable: "dst",
			Store:       store,
			StateKey:    "e",
			Stats:       stats.NewEntry("src", "dst"),
			Logger:      zaptest.NewLogger(t),
			Now:         func() time.Time { return created.Add(time.Hour) },
		},
		Streams:          s,
		Source:           tb,
		Dest:             tb,
		UntilCaughtUp:    true,
		PollInterval:     time.Millisecond,
		MinReadInterval:  time.Microsecond,
		DiscoverInterval: 5 * time.Millisecond,
	}
}

func runFake(t *testing.T, cfg stream.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := stream.Run(ctx, cfg)
	if ctx.Err() != nil {
		t.Fatal("run did not finish within 60 s")
	}
	return err
}

// TestChildAfterParent: a key's changes span a shard split; the child is
// listed first and its records would win if read early. Sequence numbers
// cross a power of ten, so comparing them as strings would break.
func TestChildAfterParent(t *testing.T) {
	var parentRecs []st.Record
	for i := range 2500 { // three GetRecords pages
		parentRecs = append(parentRecs, rec(900+i, fmt.Sprintf("k%d", i%7), strconv.Itoa(i)))
	}
	child := &fakeShard{id: "shard-child", parent: "shard-parent", recs: []st.Record{rec(5000, "k1", "99999"), rec(5001, "k2", "")}}
	grandchild := &fakeShard{id: "shard-grandchild", parent: "shard-child"}
	shards := []*fakeShard{grandchild, child}
	// 150 old shards whose parent was trimmed: the listing needs two pages.
	for i := range 150 {
		shards = append(shards, &fakeShard{id: fmt.Sprintf("shard-old-%03d", i), parent: "trimmed-away", closed: true})
	}
	child.closed = true
	shards = append(shards, &fakeShard{id: "shard-parent", recs: parentRecs, closed: true})
	s, tb := newFakes(shards...)
	s.pageMax = 100
	cfg := fakeConfig(t, s, tb, state.NewMemory())
	if err := runFake(t, cfg); err != nil {
		t.Fatal(err)
	}
	for pk, vals := range tb.writes {
		last := -1
		for _, v := range vals {
			n := 1 << 30
			if v != "" {
				n, _ = strconv.Atoi(v)
			}
			if pk == "k2" && v == "" && last < 2400 {
				t.Fatalf("k2 deleted (child record) before its parent's last write %d: writes %v", last, vals)
			}
			if v != "" && n < last {
				t.Fatalf("key %s written out of order: %v", pk, vals)
			}
			last = max(last, n)
		}
	}
	if got := tb.items["k1"]; got != "99999" {
		t.Fatalf("k1 = %q, want the child's 99999", got)
	}
	if _, ok := tb.items["k2"]; ok {
		t.Fatalf("k2 still present; the child deleted it")
	}
	if got := tb.items["k3"]; got != "2495" {
		t.Fatalf("k3 = %q, want the parent's last value 2495", got)
	}
	if r, a := cfg.Stats.RecordsRead.Load(), cfg.Stats.RecordsApplied.Load(); r != 2502 || a != 2502 {
		t.Fatalf("read %d, applied %d; want 2502 each", r, a)
	}
}

func TestCompareSeq(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"999", "1000", -1},
		{"100000000000000000000000000000000000001", "99999999999999999999999999999999999999", 1},
		{"000000000000000000001", "1", 0},
		{"", "1", -1},
	}
	for _, c := range cases {
		if got := stream.CompareSeq(c.a, c.b); got != c.want {
			t.Errorf("CompareSeq(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestResumesAfterCheckpointAndRecovers(t *testing.T) {
	sh := &fakeShard{id: "s1"}
	for i := range 10 {
		sh.recs = append(sh.recs, rec(i+1, "k", strconv.Itoa(i+1)))
	}
	s, tb := newFakes(sh)
	store := state.NewMemory()
	cfg := fakeConfig(t, s, tb, store)
	// Throttling (LimitExceededException) slows down; an expired iterator
	// is replaced from the checkpoint.
	s.errs = []error{
		&st.LimitExceededException{Message: aws.String("slow down")},
		&st.LimitExceededException{Message: aws.String("slow down")},
		&st.ExpiredIteratorException{Message: aws.String("expired")},
	}
	if err := runFake(t, cfg); err != nil {
		t.Fatal(err)
	}
	if tb.items["k"] != "10" || cfg.Stats.Throttles.Load() != 2 {
		t.Fatalf("k = %q, throttles %d; want 10 and 2", tb.items["k"], cfg.Stats.Throttles.Load())
	}
	var cp struct{ Seq string }
	if ok, _ := store.Get(context.Background(), "e/stream/shards/s1", &cp); !ok || cp.Seq != "10" {
		t.Fatalf("checkpoint = %+v (found %v), want seq 10", cp, ok)
	}

	// New records: a restart reads only them.
	s.mu.Lock()
	sh.recs = append(sh.recs, rec(11, "k", "11"), rec(12, "j", "12"))
	s.mu.Unlock()
	cfg2 := fakeConfig(t, s, tb, store)
	if err := runFake(t, cfg2); err != nil {
		t.Fatal(err)
	}
	if r := cfg2.Stats.RecordsRead.Load(); r != 2 {
		t.Fatalf("restart read %d records, want the 2 after the checkpoint", r)
	}
	if tb.items["k"] != "11" || tb.items["j"] != "12" {
		t.Fatalf("items %v", tb.items)
	}
}

// TestTrimmedButCovered: the service answers TrimmedDataAccessException
// (DynamoDB Local does on a shard idle ~30 s) while the records after the
// checkpoint are all there: reading continues, nothing is re-applied.
func TestTrimmedButCovered(t *testing.T) {
	sh := &fakeShard{id: "s1", spurious: true, trimmed: 2}
	for i := range 8 {
		sh.recs = append(sh.recs, rec(i+1, fmt.Sprintf("k%d", i), strconv.Itoa(i+1)))
	}
	s, tb := newFakes(sh)
	store := state.NewMemory()
	_ = store.Put(context.Background(), "e/stream/arn", map[string]string{"arn": s.arn})
	_ = store.Put(context.Background(), "e/stream/shards/s1", map[string]any{"seq": "5", "created": created})
	cfg := fakeConfig(t, s, tb, store)
	if err := runFake(t, cfg); err != nil {
		t.Fatal(err)
	}
	if len(tb.items) != 3 || tb.items["k7"] != "8" || tb.items["k4"] != "" {
		t.Fatalf("items %v, want only k5..k7 (after checkpoint 5)", tb.items)
	}
}

// TestTrimmedGap: records after the checkpoint were trimmed: a loud error
// naming the shard and the time span, never a silent skip.
func TestTrimmedGap(t *testing.T) {
	sh := &fakeShard{id: "shard-42", trimmed: 6}
	for i := range 8 {
		sh.recs = append(sh.recs, rec(i+1, fmt.Sprintf("k%d", i), strconv.Itoa(i+1)))
	}
	s, tb := newFakes(sh)
	store := state.NewMemory()
	_ = store.Put(context.Background(), "e/stream/shards/shard-42", map[string]any{"seq": "3", "created": created})
	cfg := fakeConfig(t, s, tb, store)
	err := runFake(t, cfg)
	var gap *stream.GapError
	if !errors.As(err, &gap) {
		t.Fatalf("err = %v, want a GapError", err)
	}
	msg := err.Error()
	for _, want := range []string{"shard-42", created.Format(time.RFC3339), "may be lost"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if len(tb.items) != 0 {
		t.Fatalf("items written past a gap: %v", tb.items)
	}
}

func TestTTLDeletes(t *testing.T) {
	ttl := rec(3, "a", "")
	ttl.UserIdentity = &st.Identity{Type: aws.String("Service"), PrincipalId: aws.String("dynamodb.amazonaws.com")}
	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprint("skip=", skip), func(t *testing.T) {
			sh := &fakeShard{id: "s", recs: []st.Record{rec(1, "a", "1"), rec(2, "b", "2"), ttl}}
			s, tb := newFakes(sh)
			cfg := fakeConfig(t, s, tb, state.NewMemory())
			cfg.SkipTTLDeletes = skip
			if err := runFake(t, cfg); err != nil {
				t.Fatal(err)
			}
			_, present := tb.items["a"]
			if present != skip {
				t.Fatalf("item a present = %v with skip-ttl-deletes %v", present, skip)
			}
			wantSkipped := map[bool]int64{false: 0, true: 1}[skip]
			if got := cfg.Stats.RecordsSkipped.Load(); got != wantSkipped {
				t.Fatalf("skipped %d, want %d", got, wantSkipped)
			}
		})
	}
}

func TestSkipBefore(t *testing.T) {
	sh := &fakeShard{id: "s", recs: []st.Record{rec(1, "a", "1"), rec(2000, "b", "2"), rec(3000, "a", "3")}}
	s, tb := newFakes(sh)
	cfg := fakeConfig(t, s, tb, state.NewMemory())
	cfg.SkipBefore = created.Add(time.Second)
	if err := runFake(t, cfg); err != nil {
		t.Fatal(err)
	}
	if len(tb.writes["a"]) != 1 || tb.items["a"] != "3" || tb.items["b"] != "2" {
		t.Fatalf("writes %v", tb.writes)
	}
	if cfg.Stats.RecordsSkipped.Load() != 1 || cfg.Stats.RecordsApplied.Load() != 2 {
		t.Fatalf("skipped %d applied %d", cfg.Stats.RecordsSkipped.Load(), cfg.Stats.RecordsApplied.Load())
	}
}

func TestFixEmptyMapsJSON(t *testing.T) {
	in := `{"Records":[{"dynamodb":{"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"},"l":{"L":[{}]},"m":{},"n":{"M":{"e":{}}},"s":{"S":"{}"}}}}]}`
	out := string(stream.FixEmptyMapsJSON([]byte(in)))
	for _, want := range []string{`"m":{"M":{}}`, `"l":{"L":[{"M":{}}]}`, `"n":{"M":{"e":{"M":{}}}}`, `"s":{"S":"{}"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("fixed body %s lacks %s", out, want)
		}
	}
	for _, plain := range []string{
		`{"Records":[]}`,
		// DynamoDB's own encoding of empty maps, also nested and in lists.
		`{"Records":[{"dynamodb":{"NewImage":{"m":{"M":{}},"n":{"M":{"x":{"M":{}}}},"l":{"L":[{"M":{}}]}}}}]}`,
		`{"Records":[{"dynamodb":{"NewImage":{"s":{"S":"a:{}"}}}}]}`,
	} {
		if got := string(stream.FixEmptyMapsJSON([]byte(plain))); got != plain {
			t.Errorf("body without a bare {} changed: %s", got)
		}
	}
}

// TestDisabledStreamEnds: once the stream is disabled (or the table
// deleted) and every shard is applied, the run ends with an error instead
// of waiting for ever.
func TestDisabledStreamEnds(t *testing.T) {
	sh := &fakeShard{id: "s", recs: []st.Record{rec(1, "a", "1")}, closed: true}
	s, tb := newFakes(sh)
	s.status = st.StreamStatusDisabled
	cfg := fakeConfig(t, s, tb, state.NewMemory())
	cfg.UntilCaughtUp = false
	err := runFake(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "was disabled") {
		t.Fatalf("err = %v, want the stream disabled", err)
	}
	if tb.items["a"] != "1" {
		t.Fatalf("the shard's changes were not applied first: %v", tb.items)
	}
}

// TestUntilCaughtUpIsNotFooledByEmptyPages: an open shard answers empty
// pages before its records, as DynamoDB Streams may; --until-caught-up
// must not take the first empty page for the end of the shard.
func TestUntilCaughtUpIsNotFooledByEmptyPages(t *testing.T) {
	sh := &fakeShard{id: "shard-open", emptyPages: 2, recs: []st.Record{rec(10, "a", "1"), rec(11, "b", "2")}}
	s, tb := newFakes(sh)
	if err := runFake(t, fakeConfig(t, s, tb, state.NewMemory())); err != nil {
		t.Fatal(err)
	}
	if tb.items["a"] != "1" || tb.items["b"] != "2" {
		t.Fatalf("destination = %v; the records after the empty pages were not applied", tb.items)
	}
}

// TestSkipBeforeKeepsUndatedRecords: a record without a creation time
// cannot be shown to be older than the backfill, so it is applied.
func TestSkipBeforeKeepsUndatedRecords(t *testing.T) {
	undated := rec(5, "c", "7")
	undated.Dynamodb.ApproximateCreationDateTime = nil
	sh := &fakeShard{id: "s", recs: []st.Record{rec(1, "a", "1"), undated}}
	s, tb := newFakes(sh)
	cfg := fakeConfig(t, s, tb, state.NewMemory())
	cfg.SkipBefore = created.Add(time.Second)
	if err := runFake(t, cfg); err != nil {
		t.Fatal(err)
	}
	if tb.items["c"] != "7" {
		t.Fatalf("the undated record was not applied: %v", tb.writes)
	}
	if _, ok := tb.items["a"]; ok {
		t.Fatalf("the record older than SkipBefore was applied: %v", tb.writes)
	}
}

// TestTrimmedBeforeFirstRead: a shard with no checkpoint answers
// TrimmedDataAccessException (DynamoDB Local does on a stream enabled on a
// loaded table once the shard idled, before its first record): nothing
// the run needs can be lost, so it reads again from the trim horizon. It
// used to fail with a gap "between 0001-01-01T00:00:00Z and now".
func TestTrimmedBeforeFirstRead(t *testing.T) {
	sh := &fakeShard{id: "s1"}
	for i := range 5 {
		sh.recs = append(sh.recs, rec(i+1, fmt.Sprintf("k%d", i), strconv.Itoa(i+1)))
	}
	s, tb := newFakes(sh)
	s.errs = []error{&st.TrimmedDataAccessException{Message: aws.String("trimmed")}, &st.TrimmedDataAccessException{Message: aws.String("trimmed")}}
	cfg := fakeConfig(t, s, tb, state.NewMemory())
	if err := runFake(t, cfg); err != nil {
		t.Fatal(err)
	}
	if len(tb.items) != 5 || tb.items["k4"] != "5" {
		t.Fatalf("items %v, want k0..k4", tb.items)
	}
}

// TestGapErrorNeverShowsZeroTime: an undated checkpoint gives a span with
// only its end.
func TestGapErrorNeverShowsZeroTime(t *testing.T) {
	msg := (&stream.GapError{Table: "t", Shard: "s", Detail: "d"}).Error()
	if strings.Contains(msg, "0001-01-01") || !strings.Contains(msg, "up to now") {
		t.Fatalf("message %q", msg)
	}
}

// TestCheckpointedShardGone: a shard with a checkpoint, not finished, is
// no longer listed (the consumer was stopped past the retention): the run
// refuses with a gap naming the shard and the span, before writing
// anything — its child used to be read from its trim horizon silently.
func TestCheckpointedShardGone(t *testing.T) {
	child := &fakeShard{id: "child", parent: "gone"}
	for i := range 3 {
		child.recs = append(child.recs, rec(100+i, fmt.Sprintf("k%d", i), "1"))
	}
	s, tb := newFakes(child)
	store := state.NewMemory()
	_ = store.Put(context.Background(), "e/stream/arn", map[string]string{"arn": s.arn})
	_ = store.Put(context.Background(), "e/stream/shards/gone", map[string]any{"seq": "42", "created": created})
	_ = store.Put(context.Background(), "e/stream/shards/old-done", map[string]any{"seq": "7", "created": created, "done": true})
	cfg := fakeConfig(t, s, tb, store)
	cfg.Now = func() time.Time { return created.Add(30 * time.Hour) }
	err := runFake(t, cfg)
	var gap *stream.GapError
	if !errors.As(err, &gap) || gap.Shard != "gone" {
		t.Fatalf("err = %v, want a GapError for shard gone", err)
	}
	for _, want := range []string{"gone", "42", created.Format(time.RFC3339)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(tb.items) != 0 {
		t.Fatalf("items written past a gap: %v", tb.items)
	}
}

// TestRecentCheckpointNotListedYet: a checkpoint younger than the
// retention cannot belong to a trimmed shard; the listing lags (it is
// eventually consistent), so that is no gap.
func TestRecentCheckpointNotListedYet(t *testing.T) {
	sh := &fakeShard{id: "s1"}
	sh.recs = append(sh.recs, rec(1, "k", "1"))
	s, tb := newFakes(sh)
	store := state.NewMemory()
	_ = store.Put(context.Background(), "e/stream/shards/new-one", map[string]any{"seq": "42", "created": created.Add(30 * time.Minute)})
	cfg := fakeConfig(t, s, tb, store)
	if err := runFake(t, cfg); err != nil {
		t.Fatal(err)
	}
}
