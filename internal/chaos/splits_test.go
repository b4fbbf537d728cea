package chaos

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
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

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/faultproxy"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

// DynamoDB Local never splits shards, so the same idea — random changes,
// the consumer stopped and crashed at random points, the output compared
// with the input at the end — runs here in process, over a fake stream
// whose shards split at random (lineage: a key's later changes go to a
// child of the shard that held its earlier ones). The output is a real
// DynamoDB Local table behind the fault proxy (throttling, 5xx, dropped
// connections and partial batches, which DynamoDB Local never produces).
func TestStreamSplitsRandomized(t *testing.T) {
	if testing.Short() {
		t.Skip("randomized stream test skipped under -short")
	}
	list, _ := seeds(t)
	for _, seed := range list {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runSplitSeed(t, seed) })
	}
}

// splitShard is one shard of the fake stream; it covers the key hashes
// [lo, hi).
type splitShard struct {
	id, parent string
	lo, hi     uint64
	recs       []st.Record
	closed     bool
	end        string // ending sequence number, once closed
}

type splitStream struct {
	mu     sync.Mutex
	arn    string
	shards []*splitShard
	seq    int64
	want   map[string]map[string]av // the input as the changes left it
	log    []string
}

func hashKey(k string) uint64 {
	h := fnv.New32a()
	h.Write([]byte(k))
	return uint64(h.Sum32())
}

func (f *splitStream) shard(id string) *splitShard {
	for _, s := range f.shards {
		if s.id == id {
			return s
		}
	}
	return nil
}

// change appends a put (item != nil) or a delete of k to the open shard
// covering k.
func (f *splitStream) change(k string, item map[string]av) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := hashKey(k)
	for _, s := range f.shards {
		if s.closed || h < s.lo || h >= s.hi {
			continue
		}
		f.seq++
		rec := st.Record{EventName: st.OperationTypeModify, Dynamodb: &st.StreamRecord{
			// Sequence numbers of 21 digits: more than a uint64 holds.
			SequenceNumber:              aws.String(fmt.Sprintf("4%020d", f.seq)),
			ApproximateCreationDateTime: aws.Time(time.Now()),
			Keys:                        map[string]st.AttributeValue{"pk": &st.AttributeValueMemberS{Value: k}},
			StreamViewType:              st.StreamViewTypeNewAndOldImages,
		}}
		if item == nil {
			rec.EventName = st.OperationTypeRemove
			delete(f.want, k)
		} else {
			rec.Dynamodb.NewImage = toStreamItem(item)
			f.want[k] = item
		}
		s.recs = append(s.recs, rec)
		return
	}
	panic("no open shard covers " + k)
}

// split closes an open shard and opens two children that share its range.
func (f *splitStream) split(r *rand.Rand) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var open []*splitShard
	for _, s := range f.shards {
		if !s.closed && s.hi-s.lo > 1 {
			open = append(open, s)
		}
	}
	if len(open) == 0 {
		return
	}
	p := open[r.IntN(len(open))]
	p.closed = true
	p.end = fmt.Sprintf("4%020d", f.seq)
	mid := p.lo + (p.hi-p.lo)/2
	n := len(f.shards)
	f.shards = append(f.shards,
		&splitShard{id: fmt.Sprintf("shardId-%03d", n), parent: p.id, lo: p.lo, hi: mid},
		&splitShard{id: fmt.Sprintf("shardId-%03d", n+1), parent: p.id, lo: mid, hi: p.hi})
	f.log = append(f.log, fmt.Sprintf("%s split into shardId-%03d and shardId-%03d after %d records", p.id, n, n+1, len(p.recs)))
}

func toStreamItem(it map[string]av) map[string]st.AttributeValue {
	out := map[string]st.AttributeValue{}
	for k, v := range it {
		switch x := v.(type) {
		case *types.AttributeValueMemberS:
			out[k] = &st.AttributeValueMemberS{Value: x.Value}
		case *types.AttributeValueMemberN:
			out[k] = &st.AttributeValueMemberN{Value: x.Value}
		}
	}
	return out
}

func (f *splitStream) DescribeStream(_ context.Context, in *dynamodbstreams.DescribeStreamInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	limit := min(int(aws.ToInt32(in.Limit)), 3) // small pages: the listing is paged through
	if limit <= 0 {
		limit = 3
	}
	start := 0
	if id := aws.ToString(in.ExclusiveStartShardId); id != "" {
		for i, s := range f.shards {
			if s.id == id {
				start = i + 1
			}
		}
	}
	d := &st.StreamDescription{StreamArn: aws.String(f.arn), StreamStatus: st.StreamStatusEnabled, StreamViewType: st.StreamViewTypeNewAndOldImages}
	end := min(start+limit, len(f.shards))
	for _, s := range f.shards[start:end] {
		sh := st.Shard{ShardId: aws.String(s.id), SequenceNumberRange: &st.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
		if s.parent != "" {
			sh.ParentShardId = aws.String(s.parent)
		}
		if s.closed {
			sh.SequenceNumberRange.EndingSequenceNumber = aws.String(s.end)
		}
		d.Shards = append(d.Shards, sh)
	}
	if end < len(f.shards) {
		d.LastEvaluatedShardId = aws.String(f.shards[end-1].id)
	}
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: d}, nil
}

func (f *splitStream) GetShardIterator(_ context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shard(aws.ToString(in.ShardId))
	if s == nil {
		return nil, &st.ResourceNotFoundException{Message: aws.String("no shard")}
	}
	pos := 0
	switch in.ShardIteratorType {
	case st.ShardIteratorTypeTrimHorizon:
	case st.ShardIteratorTypeAfterSequenceNumber, st.ShardIteratorTypeAtSequenceNumber:
		seq := aws.ToString(in.SequenceNumber)
		pos = len(s.recs)
		for i, r := range s.recs {
			c := strings.Compare(aws.ToString(r.Dynamodb.SequenceNumber), seq) // same length: string order is number order
			if c > 0 || (c == 0 && in.ShardIteratorType == st.ShardIteratorTypeAtSequenceNumber) {
				pos = i
				break
			}
		}
	default:
		return nil, fmt.Errorf("iterator type %s not faked", in.ShardIteratorType)
	}
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s|%d", s.id, pos))}, nil
}

func (f *splitStream) GetRecords(_ context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, p, _ := strings.Cut(aws.ToString(in.ShardIterator), "|")
	pos, _ := strconv.Atoi(p)
	s := f.shard(id)
	limit := int(aws.ToInt32(in.Limit))
	if limit <= 0 || limit > 17 {
		limit = 17 // small pages: more batches, more checkpoints
	}
	end := min(pos+limit, len(s.recs))
	out := &dynamodbstreams.GetRecordsOutput{Records: append([]st.Record{}, s.recs[pos:end]...)}
	if end < len(s.recs) || !s.closed {
		out.NextShardIterator = aws.String(fmt.Sprintf("%s|%d", id, end))
	}
	return out, nil
}

// source is the input table as the engine sees it: a description with the
// fake stream.
type source struct{ arn string }

func (s source) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{
		TableName:            in.TableName,
		TableStatus:          types.TableStatusActive,
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		StreamSpecification:  &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages},
		LatestStreamArn:      aws.String(s.arn),
	}}, nil
}

func (source) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, errors.New("GetItem is not expected with a NEW_AND_OLD_IMAGES stream")
}

// freezable is a checkpoint store that can stop saving, silently: a run
// cancelled after freeze looks, to the next run, like a process killed at
// the moment of the freeze.
type freezable struct {
	state.Store
	mu     sync.Mutex
	frozen bool
}

func (f *freezable) Put(ctx context.Context, key string, v any) error {
	f.mu.Lock()
	frozen := f.frozen
	f.mu.Unlock()
	if frozen {
		return nil
	}
	return f.Store.Put(ctx, key, v)
}

func (f *freezable) freeze(b bool) {
	f.mu.Lock()
	f.frozen = b
	f.mu.Unlock()
}

func runSplitSeed(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x73706c6974))
	c, _ := ddbtest.Clients(t)
	dst := ddbtest.Name(t, "chaos-split")
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	p, err := faultproxy.New(faultproxy.Options{Upstream: ddbtest.Endpoint(t), Seed: seed,
		Rules: []faultproxy.Rule{{Kind: faultproxy.Any, Rate: 0.15}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	cl, err := creds.New(creds.Options{EndpointURL: p.URL, MaxRetries: 10, RetryBase: time.Millisecond, MaxBackoff: 20 * time.Millisecond}).
		For(context.Background(), plan.Table{Table: dst, Region: ddbtest.Region})
	if err != nil {
		t.Fatal(err)
	}

	f := &splitStream{arn: "arn:aws:dynamodb:us-east-1:000000000000:table/in/stream/chaos", want: map[string]map[string]av{},
		shards: []*splitShard{{id: "shardId-000", lo: 0, hi: 1 << 31}, {id: "shardId-001", lo: 1 << 31, hi: 1 << 32}}}
	store := &freezable{Store: state.NewMemory()}
	cfg := func(untilCaughtUp bool) stream.Config {
		return stream.Config{
			Common: job.Common{
				InputTable:  "in",
				OutputTable: dst,
				Store:       store,
				StateKey:    "chaos",
			},
			Streams:          f,
			Source:           source{arn: f.arn},
			Dest:             cl.DynamoDB,
			UntilCaughtUp:    untilCaughtUp,
			PollInterval:     10 * time.Millisecond,
			MinReadInterval:  time.Millisecond,
			DiscoverInterval: 50 * time.Millisecond,
		}
	}
	var events []string
	fail := func(format string, args ...any) {
		t.Helper()
		f.mu.Lock()
		defer f.mu.Unlock()
		t.Fatalf("seed %d: %s\nwhat happened:\n  %s\nsplits:\n  %s\nfault proxy: %s\nreplay: make chaos SEED=%d (TestStreamSplitsRandomized)",
			seed, fmt.Sprintf(format, args...), strings.Join(events, "\n  "), strings.Join(f.log, "\n  "), p.Summary(), seed)
	}

	// Changes and splits go on while runs of the engine are stopped
	// (context cancelled: checkpoints saved) or crashed (checkpoints frozen
	// first) at random points, and started again.
	keys := 40 + r.IntN(40)
	rounds := 4 + r.IntN(5)
	for round := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- stream.Run(ctx, cfg(false)) }()
		for range 20 + r.IntN(80) {
			k := key(r.IntN(keys))
			if r.IntN(4) == 0 {
				f.change(k, nil)
			} else {
				f.change(k, map[string]av{"pk": &types.AttributeValueMemberS{Value: k}, "v": &types.AttributeValueMemberN{Value: strconv.Itoa(r.IntN(1e6))}})
			}
			if r.IntN(40) == 0 {
				f.split(r)
			}
			if r.IntN(10) == 0 {
				time.Sleep(time.Duration(r.IntN(20)) * time.Millisecond)
			}
		}
		crash := r.IntN(2) == 0
		if crash {
			store.freeze(true)
		}
		time.Sleep(time.Duration(r.IntN(200)) * time.Millisecond)
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			fail("round %d: the engine failed: %v", round, err)
		}
		store.freeze(false)
		events = append(events, fmt.Sprintf("round %d: %d shards so far; the run was %s", round, len(f.shards), map[bool]string{true: "crashed (checkpoints frozen)", false: "stopped"}[crash]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := stream.Run(ctx, cfg(true)); err != nil {
		fail("the final run (until caught up) failed: %v", err)
	}
	got := map[string]map[string]av{}
	for _, it := range ddbtest.ScanAll(t, c, dst) {
		got[it["pk"].(*types.AttributeValueMemberS).Value] = it
	}
	var problems []string
	for k, w := range f.want {
		if g, ok := got[k]; !ok {
			problems = append(problems, k+" missing")
		} else if g["v"].(*types.AttributeValueMemberN).Value != w["v"].(*types.AttributeValueMemberN).Value {
			problems = append(problems, fmt.Sprintf("%s: v=%s, want %s", k, g["v"].(*types.AttributeValueMemberN).Value, w["v"].(*types.AttributeValueMemberN).Value))
		}
	}
	for k := range got {
		if _, ok := f.want[k]; !ok {
			problems = append(problems, k+" present, but deleted last")
		}
	}
	if len(problems) > 0 {
		fail("the output differs from the input in %d keys: %v", len(problems), problems)
	}
	t.Logf("seed %d: %d keys, %d shards, %d records; %s", seed, len(f.want), len(f.shards), f.seq, p.Summary())
}
