package stream_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	st "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

// checkpointTable creates a checkpoint table on DynamoDB Local.
func checkpointTable(t *testing.T) *state.DynamoStore {
	t.Helper()
	c, _ := ddbtest.Clients(t)
	name := ddbtest.Name(t, "ckpt")
	s := state.NewDynamoStore(c, name, state.DynamoOptions{Logger: zaptest.NewLogger(t)})
	if err := s.EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return s
}

// Two workers share a stream whose shards split (DynamoDB Local never
// splits shards: the stream is a fake, the leases are real): each shard is
// read by one worker at a time, a child only after its parent's lease is
// finished, so every key's changes reach the output in order.
func TestLeasedWorkersKeepLineage(t *testing.T) {
	var parentRecs []st.Record
	for i := range 2500 { // three GetRecords pages
		parentRecs = append(parentRecs, rec(900+i, fmt.Sprintf("k%d", i%7), strconv.Itoa(i)))
	}
	child := &fakeShard{id: "shard-child", parent: "shard-parent", closed: true, recs: []st.Record{rec(5000, "k1", "99999"), rec(5001, "k2", "")}}
	grandchild := &fakeShard{id: "shard-grandchild", parent: "shard-child", recs: []st.Record{rec(6000, "k3", "77777")}}
	shards := []*fakeShard{grandchild, child}
	for i := range 6 { // independent shards, to be spread over the workers
		shards = append(shards, &fakeShard{id: fmt.Sprintf("shard-other-%d", i), closed: true,
			recs: []st.Record{rec(100+i, fmt.Sprintf("o%d", i), strconv.Itoa(i))}})
	}
	shards = append(shards, &fakeShard{id: "shard-parent", recs: parentRecs, closed: true})
	s, tb := newFakes(shards...)
	store := checkpointTable(t)
	entry := plan.Entry{Input: plan.Table{Table: "src"}, Output: plan.Table{Table: "dst"}}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	managers := make([]*lease.Manager, 2)
	for w := range 2 {
		managers[w] = lease.NewManager(store, fmt.Sprintf("worker-%d", w), lease.Options{Duration: 2 * time.Second, Logger: zaptest.NewLogger(t)})
		cfg := fakeConfig(t, s, tb, store)
		cfg.StateKey = entry.ID()
		cfg.UntilCaughtUp = false
		cfg.Stats = stats.NewEntry("src", "dst")
		cfg.Leases = &job.Leases{Manager: managers[w], Entry: entry, Poll: 50 * time.Millisecond}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = stream.Run(ctx, cfg)
		}()
	}
	scope := lease.Scope(entry.ID(), lease.KindStream)
	deadline := time.Now().Add(60 * time.Second)
	for {
		infos, err := managers[0].List(context.Background(), scope)
		if err != nil {
			t.Fatal(err)
		}
		finished := 0
		for _, in := range infos {
			if in.Finished {
				finished++
			}
		}
		tb.mu.Lock()
		k3 := tb.items["k3"]
		tb.mu.Unlock()
		// Every closed shard is finished; the open grandchild applied its record.
		if len(infos) == len(shards) && finished == len(shards)-1 && k3 == "77777" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not done after 60 s: %d leases, %d finished, k3=%q", len(infos), finished, k3)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
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
	for i := range 6 {
		if got := tb.items[fmt.Sprintf("o%d", i)]; got != strconv.Itoa(i) {
			t.Fatalf("o%d = %q", i, got)
		}
	}
	// A clean stop released every lease; the open shard kept its checkpoint.
	infos, err := managers[0].List(context.Background(), scope)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Owner != "" {
			t.Errorf("lease %s still owned by %s after a clean stop", in.Unit, in.Owner)
		}
		if in.Unit == "shard-grandchild" && len(in.Checkpoint) == 0 {
			t.Errorf("the open shard has no checkpoint in its lease")
		}
	}

	// --until-caught-up is refused with leases.
	other := lease.NewManager(store, "worker-x", lease.Options{Duration: 2 * time.Second})
	cfg := fakeConfig(t, s, tb, store)
	cfg.StateKey = entry.ID()
	cfg.Leases = &job.Leases{Manager: other, Entry: entry}
	var pe *plan.Error
	if err := stream.Check(context.Background(), cfg); !errors.As(err, &pe) {
		t.Fatalf("until-caught-up with leases: err = %v, want a *plan.Error", err)
	}
}
