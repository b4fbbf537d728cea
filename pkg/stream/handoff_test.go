package stream_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

// event is one thing a worker did to a shard: "read" (GetShardIterator),
// "write-begin" and "write-end" (a BatchWriteItem with the shard's keys).
type event struct {
	worker int
	shard  string
	kind   string
}

// events is the one order in which the workers' events happened.
type events struct {
	mu  sync.Mutex
	all []event
}

func (e *events) add(w int, shard, kind string) {
	e.mu.Lock()
	e.all = append(e.all, event{w, shard, kind})
	e.mu.Unlock()
}

func (e *events) snapshot() []event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]event(nil), e.all...)
}

// shardOfKey: the keys of shard-N are "sN-…".
func shardOfKey(pk string) string {
	n, _, _ := strings.Cut(strings.TrimPrefix(pk, "s"), "-")
	return "shard-" + n
}

func batchKeys(in *dynamodb.BatchWriteItemInput) (keys []string, vals []int) {
	for _, reqs := range in.RequestItems {
		for _, r := range reqs {
			if r.PutRequest != nil {
				keys = append(keys, r.PutRequest.Item["pk"].(*types.AttributeValueMemberS).Value)
				v, _ := strconv.Atoi(r.PutRequest.Item["v"].(*types.AttributeValueMemberN).Value)
				vals = append(vals, v)
			} else {
				keys = append(keys, r.DeleteRequest.Key["pk"].(*types.AttributeValueMemberS).Value)
				vals = append(vals, -1)
			}
		}
	}
	return keys, vals
}

// workerDest is one worker's view of the output: it logs each write and
// may hold it (slow) before it reaches the table. A held write is on the
// wire: it lands whatever happens to the worker's context.
type workerDest struct {
	tb   *fakeTables
	w    int
	log  *events
	slow func(in *dynamodb.BatchWriteItemInput)
}

func (d *workerDest) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, o ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return d.tb.DescribeTable(ctx, in, o...)
}

func (d *workerDest) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	keys, _ := batchKeys(in)
	shard := shardOfKey(keys[0])
	d.log.add(d.w, shard, "write-begin")
	if d.slow != nil {
		d.slow(in)
	}
	out, err := d.tb.BatchWriteItem(context.Background(), in)
	d.log.add(d.w, shard, "write-end")
	return out, err
}

// workerStreams logs when a worker starts reading a shard, and fails
// calls under a cancelled context as the SDK does.
type workerStreams struct {
	*fakeStreams
	w   int
	log *events
}

func (s *workerStreams) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.log.add(s.w, *in.ShardId, "read")
	return s.fakeStreams.GetShardIterator(ctx, in, o...)
}

func (s *workerStreams) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.fakeStreams.GetRecords(ctx, in, o...)
}

// TestLeasedHandoffKeepsOrder: worker 0 holds every shard and is behind
// (its output is slow: its first batch of each shard is still on the
// wire) when worker 1 joins and asks for its share. Worker 1 must start a
// shard only after worker 0 has finished its batch, checkpointed and
// released the shard, so no older change of a key ever lands after a
// newer one.
func TestLeasedHandoffKeepsOrder(t *testing.T) {
	const nShards, nKeys, nRecs = 4, 10, 3000 // three GetRecords pages per shard
	var shards []*fakeShard
	final := map[string]string{}
	for i := range nShards {
		sh := &fakeShard{id: fmt.Sprintf("shard-%d", i)} // open
		for j := range nRecs {
			seq := 10000*(i+1) + j
			pk := fmt.Sprintf("s%d-k%d", i, j%nKeys)
			sh.recs = append(sh.recs, rec(seq, pk, strconv.Itoa(seq)))
			final[pk] = strconv.Itoa(seq)
		}
		shards = append(shards, sh)
	}
	s, tb := newFakes(shards...)
	store := checkpointTable(t)
	entry := plan.Entry{Input: plan.Table{Table: "src"}, Output: plan.Table{Table: "dst"}}
	scope := lease.Scope(entry.ID(), lease.KindStream)
	log := &events{}

	// Worker 0's first write of each shard is slow: it lands once worker 1
	// has written a newer value of one of its keys (which is what a steal
	// that does not wait allows), or after a few seconds.
	var firstMu sync.Mutex
	first := map[string]bool{}
	held := 0
	slow := func(in *dynamodb.BatchWriteItemInput) {
		keys, vals := batchKeys(in)
		shard := shardOfKey(keys[0])
		firstMu.Lock()
		if first[shard] {
			firstMu.Unlock()
			return
		}
		first[shard] = true
		held++
		firstMu.Unlock()
		end := time.Now().Add(4 * time.Second)
		for time.Now().Before(end) {
			tb.mu.Lock()
			newer := false
			for i, k := range keys {
				if w := tb.writes[k]; len(w) > 0 {
					if v, _ := strconv.Atoi(w[len(w)-1]); v > vals[i] {
						newer = true
					}
				}
			}
			tb.mu.Unlock()
			if newer {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	managers := make([]*lease.Manager, 2)
	start := func(w int, dest *workerDest) {
		managers[w] = lease.NewManager(store, fmt.Sprintf("worker-%d", w), lease.Options{Duration: 2 * time.Second, Logger: zaptest.NewLogger(t).Named(fmt.Sprint("lease-", w))})
		cfg := fakeConfig(t, s, tb, store)
		cfg.Streams = &workerStreams{fakeStreams: s, w: w, log: log}
		cfg.Dest = dest
		cfg.StateKey = entry.ID()
		cfg.UntilCaughtUp = false
		cfg.Stats = stats.NewEntry("src", "dst")
		cfg.Logger = zaptest.NewLogger(t).Named(fmt.Sprint("worker-", w))
		cfg.Leases = &job.Leases{Manager: managers[w], Entry: entry, Poll: 50 * time.Millisecond}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = stream.Run(ctx, cfg)
		}()
	}
	start(0, &workerDest{tb: tb, w: 0, log: log, slow: slow})
	// Worker 1 joins once worker 0 holds every shard with a write in flight.
	waitFor(t, "worker 0 to hold every shard with a write in flight", func() bool {
		firstMu.Lock()
		defer firstMu.Unlock()
		return held == nShards
	})
	start(1, &workerDest{tb: tb, w: 1, log: log})

	waitFor(t, "every key to reach its last value", func() bool {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for pk, v := range final {
			if tb.items[pk] != v {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", w, err)
		}
	}

	// No older write of a key after a newer one.
	tb.mu.Lock()
	for pk, vals := range tb.writes {
		last := -1
		for _, v := range vals {
			n, _ := strconv.Atoi(v)
			if n < last {
				t.Errorf("key %s: %d written after %d (writes %v)", pk, n, last, vals)
				break
			}
			last = n
		}
	}
	tb.mu.Unlock()

	// Worker 1 read a shard only after worker 0's last write to it ended:
	// nothing of worker 0 touches a shard after worker 1 started it.
	evs := log.snapshot()
	moved := 0
	for i := range nShards {
		shard := fmt.Sprintf("shard-%d", i)
		takerStart := -1
		for k, e := range evs {
			if e.shard != shard {
				continue
			}
			if e.worker == 1 && takerStart < 0 {
				takerStart = k
				moved++
			}
			if e.worker == 0 && takerStart >= 0 {
				t.Errorf("%s: worker 0 %s after worker 1 started reading it (event %d, worker 1 started at event %d)", shard, e.kind, k, takerStart)
				break
			}
		}
	}
	if moved == 0 {
		t.Fatalf("no shard moved to worker 1: the test did not exercise a handoff")
	}
	t.Logf("%d of %d shards handed over to worker 1", moved, nShards)
	infos, err := managers[0].List(context.Background(), scope)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Owner != "" {
			t.Errorf("lease %s still owned by %s after a clean stop", in.Unit, in.Owner)
		}
	}
}

// waitFor polls cond with a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up after 30 s waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
