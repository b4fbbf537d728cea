package stream_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	st "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

// countingListing counts DescribeStream calls (one listing round each,
// the fake answers in one page).
type countingListing struct {
	*fakeStreams
	describes atomic.Int64
}

func (c *countingListing) DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	c.describes.Add(1)
	return c.fakeStreams.DescribeStream(ctx, in, o...)
}

// TestFinishedLeasesArePruned: a finished shard's lease is deleted once
// its child has a checkpoint and the shard has left the stream's listing
// (trimmed, 24 h after it closed); the lease table does not grow with
// every shard the stream ever had. A listing that shows the old shard
// again (DescribeStream is eventually consistent) neither re-creates its
// lease nor applies its records a second time.
func TestFinishedLeasesArePruned(t *testing.T) {
	var parentRecs []st.Record
	for i := range 20 {
		parentRecs = append(parentRecs, rec(100+i, fmt.Sprintf("p%d", i%3), strconv.Itoa(100+i)))
	}
	parent := &fakeShard{id: "shard-parent", recs: parentRecs, closed: true}
	child := &fakeShard{id: "shard-child", parent: "shard-parent", recs: []st.Record{rec(500, "c", "500")}}
	s, tb := newFakes(parent, child)
	listing := &countingListing{fakeStreams: s}
	store := checkpointTable(t)
	entry := plan.Entry{Input: plan.Table{Table: "src"}, Output: plan.Table{Table: "dst"}}
	scope := lease.Scope(entry.ID(), lease.KindStream)
	m := lease.NewManager(store, "worker-0", lease.Options{Duration: 2 * time.Second, Logger: zaptest.NewLogger(t)})
	cfg := fakeConfig(t, s, tb, store)
	cfg.Streams = listing
	cfg.StateKey = entry.ID()
	cfg.UntilCaughtUp = false
	cfg.Stats = stats.NewEntry("src", "dst")
	cfg.Leases = &job.Leases{Manager: m, Entry: entry, Poll: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() { defer wg.Done(); runErr = stream.Run(ctx, cfg) }()

	leases := func() map[string]lease.Info {
		infos, err := m.List(context.Background(), scope)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]lease.Info{}
		for _, in := range infos {
			out[in.Unit] = in
		}
		return out
	}
	// rounds waits until the worker listed the stream n more times.
	rounds := func(n int64) {
		from := listing.describes.Load()
		waitFor(t, fmt.Sprintf("%d more listings", n), func() bool { return listing.describes.Load() >= from+n })
	}
	waitFor(t, "the child to apply its record", func() bool {
		ls := leases()
		return ls["shard-parent"].Finished && len(ls["shard-child"].Checkpoint) > 0
	})
	// Still listed: the lease stays.
	rounds(3)
	if _, ok := leases()["shard-parent"]; !ok {
		t.Fatalf("the finished parent's lease was deleted while the stream still lists the shard")
	}
	parentWrites := func() int {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		n := 0
		for i := range 3 {
			n += len(tb.writes[fmt.Sprintf("p%d", i)])
		}
		return n
	}
	applied := parentWrites()
	if applied == 0 {
		t.Fatal("the parent's records were never applied")
	}

	// The parent is trimmed from the listing: its lease goes.
	s.mu.Lock()
	s.shards = []*fakeShard{child}
	s.mu.Unlock()
	waitFor(t, "the finished parent's lease to be deleted", func() bool {
		_, ok := leases()["shard-parent"]
		return !ok
	})

	// The listing shows it again: no lease, nothing applied again.
	s.mu.Lock()
	s.shards = []*fakeShard{parent, child}
	s.mu.Unlock()
	rounds(5)
	ls := leases()
	if in, ok := ls["shard-parent"]; ok {
		t.Fatalf("the deleted lease of shard-parent was registered again: %+v", in)
	}
	if got := parentWrites(); got != applied {
		t.Fatalf("the parent's records were applied again: %d writes, had %d", got, applied)
	}
	if in := ls["shard-child"]; in.Finished || len(in.Checkpoint) == 0 {
		t.Fatalf("child lease %+v", in)
	}
	// A new record in the child is still applied.
	s.mu.Lock()
	child.recs = append(child.recs, rec(501, "c", "501"))
	s.mu.Unlock()
	waitFor(t, "the child's new record", func() bool {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		return tb.items["c"] == "501"
	})
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
}
