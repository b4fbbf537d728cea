package diff_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/faultproxy"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/diff"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// replayClient stands for a write whose answer was lost: every PutItem
// and DeleteItem is applied once, then sent again (the SDK's retry), and
// the answer of that second attempt is returned. Between the two,
// meddle (when set) plays a concurrent writer. With stripItem the
// ConditionalCheckFailedException loses its Item, as from a server that
// ignores ReturnValuesOnConditionCheckFailure.
type replayClient struct {
	diff.Client
	meddle    func(key map[string]av)
	stripItem bool

	mu                  sync.Mutex
	calls, ccf, ccfItem int
}

func (r *replayClient) answer(err error) error {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		r.mu.Lock()
		r.ccf++
		if ccf.Item != nil {
			r.ccfItem++
		}
		r.mu.Unlock()
		if r.stripItem {
			return &types.ConditionalCheckFailedException{Message: ccf.Message}
		}
	}
	return err
}

func (r *replayClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	if _, err := r.Client.PutItem(ctx, in, o...); err != nil {
		return nil, err // the first attempt must apply
	}
	if r.meddle != nil {
		r.meddle(map[string]av{"pk": in.Item["pk"]})
	}
	out, err := r.Client.PutItem(ctx, in, o...)
	return out, r.answer(err)
}

func (r *replayClient) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	if _, err := r.Client.DeleteItem(ctx, in, o...); err != nil {
		return nil, err
	}
	if r.meddle != nil {
		r.meddle(in.Key)
	}
	out, err := r.Client.DeleteItem(ctx, in, o...)
	return out, r.answer(err)
}

// A conditional repair write that was applied, lost its answer and failed
// its condition on the retry counts as written or deleted, not as
// "changed during diff": the slave holds what diff meant to write.
func TestRetriedWriteIsNotAConflict(t *testing.T) {
	for _, tc := range []struct {
		name      string
		version   string
		stripItem bool
	}{
		{name: "item in the exception"},
		{name: "item re-read", stripItem: true},
		{name: "version attribute", version: "n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := ddbtest.Clients(t)
			sc := newScenario(t, c, 300)
			slave := &replayClient{Client: c, stripItem: tc.stripItem}
			res := run(t, diff.Config{
				Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, slave)},
				WriteMissing: true, WriteDiffering: true, DeleteExtra: true, VersionAttribute: tc.version,
			})
			all := sc.missing + sc.differing + sc.extra
			wantCounts(t, res.Slaves[0], diff.SlaveResult{
				Scanned: 300, Matching: int64(300 - sc.missing - sc.differing),
				Missing: int64(sc.missing), Differing: int64(sc.differing), Extra: int64(sc.extra),
				Written: int64(sc.missing + sc.differing), Deleted: int64(sc.extra),
			})
			// The replayed write fails its condition, except an overwrite
			// conditional on a version the master's item has too.
			wantCCF, wantItem := all, sc.missing+sc.differing
			if tc.version != "" {
				wantCCF, wantItem = sc.missing+sc.extra, sc.missing
			}
			if slave.calls != all || slave.ccf != wantCCF {
				t.Fatalf("%d writes, %d failed conditions on the replay; want %d and %d", slave.calls, slave.ccf, all, wantCCF)
			}
			if !tc.stripItem && slave.ccfItem != wantItem {
				// ALL_OLD returns the item for the puts (the deletes find none).
				t.Fatalf("%d exceptions carried the item, want %d", slave.ccfItem, wantItem)
			}
			ddbtest.AssertSameItems(t, c, sc.master, sc.slave, "pk", "")
		})
	}
}

// When the item really changed between the applied write and its retry,
// the repair stays skipped and the change stays.
func TestRetriedWriteAfterRealChangeIsSkipped(t *testing.T) {
	for _, stripItem := range []bool{false, true} {
		t.Run(map[bool]string{false: "item in the exception", true: "item re-read"}[stripItem], func(t *testing.T) {
			c, _ := ddbtest.Clients(t)
			sc := newScenario(t, c, 300)
			ctx := context.Background()
			var mu sync.Mutex
			changed := map[string]bool{}
			slave := &replayClient{Client: c, stripItem: stripItem, meddle: func(key map[string]av) {
				it := genItem(0)
				it["pk"] = key["pk"]
				it["name"] = s("concurrent")
				if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(sc.slave), Item: it}); err != nil {
					t.Errorf("concurrent put: %v", err)
				}
				mu.Lock()
				changed[key["pk"].(*types.AttributeValueMemberS).Value] = true
				mu.Unlock()
			}}
			res := run(t, diff.Config{
				Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, slave)},
				WriteMissing: true, WriteDiffering: true, DeleteExtra: true,
			})
			all := int64(sc.missing + sc.differing + sc.extra)
			if r := res.Slaves[0]; r.Skipped != all || r.Written != 0 || r.Deleted != 0 || r.Errors != 0 {
				t.Fatalf("got %+v, want all %d repairs skipped", r, all)
			}
			n := 0
			for _, it := range ddbtest.ScanAll(t, c, sc.slave) {
				key := it["pk"].(*types.AttributeValueMemberS).Value
				if changed[key] {
					n++
					if it["name"].(*types.AttributeValueMemberS).Value != "concurrent" {
						t.Fatalf("item %s: the concurrent change was overwritten", key)
					}
				}
			}
			if n != int(all) {
				t.Fatalf("%d changed items in the slave, want %d", n, all)
			}
		})
	}
}

// The same through the fault-injecting proxy: the first attempt of every
// repair write reaches DynamoDB Local and its connection is dropped; the
// SDK sends it again and the condition fails. Every repair must count
// as done, and the retries (and the throttled reads) must show in the
// counters.
func TestDroppedAnswerToRepairWrite(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 300)
	var p *faultproxy.Proxy
	p, err := faultproxy.New(faultproxy.Options{
		Upstream: ddbtest.Endpoint(t), Seed: 5,
		// The slave's reads are throttled half of the time.
		Rules: []faultproxy.Rule{{Op: "BatchGetItem", Kind: faultproxy.ProvisionedThroughputExceeded, Rate: 0.5}},
		// Once a write's first attempt is dropped, let its retries through.
		OnInject: func(e faultproxy.Event) {
			if e.Kind != faultproxy.DropAfter {
				return
			}
			if err := p.SetRate(e.Op, faultproxy.DropAfter, 0); err != nil {
				t.Error(err)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t.Logf("fault proxy: %s", p.Summary())
		p.Close()
	})
	prov := creds.New(creds.Options{EndpointURL: p.URL, MaxRetries: 5, RetryBase: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	pc, err := prov.For(context.Background(), plan.Table{Region: ddbtest.Region})
	if err != nil {
		t.Fatal(err)
	}
	arm := func(op string) {
		if err := p.SetRate(op, faultproxy.DropAfter, 1); err != nil {
			t.Error(err)
		}
	}
	slave := &hookClient{Client: pc.DynamoDB,
		beforePut: func(*dynamodb.PutItemInput) { arm("PutItem") },
		beforeDel: func(*dynamodb.DeleteItemInput) { arm("DeleteItem") },
	}
	st := newEntry(sc)
	res := run(t, diff.Config{
		Master: table(sc.master, c), Slaves: []diff.Table{{Name: sc.slave, Label: sc.slave, Client: slave, Stats: st}},
		WriteMissing: true, WriteDiffering: true, DeleteExtra: true,
		Writers:        1, // one write at a time: each first attempt is dropped, its retry is not
		BatchReadLimit: 10,
	})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{
		Scanned: 300, Matching: int64(300 - sc.missing - sc.differing),
		Missing: int64(sc.missing), Differing: int64(sc.differing), Extra: int64(sc.extra),
		Written: int64(sc.missing + sc.differing), Deleted: int64(sc.extra),
	})
	puts, dels := p.Count("PutItem", faultproxy.DropAfter), p.Count("DeleteItem", faultproxy.DropAfter)
	if puts != int64(sc.missing+sc.differing) || dels != int64(sc.extra) {
		t.Fatalf("dropped %d PutItem and %d DeleteItem answers, want %d and %d", puts, dels, sc.missing+sc.differing, sc.extra)
	}
	throttled := p.Count("BatchGetItem", faultproxy.Throttle)
	r := res.Slaves[0]
	if throttled == 0 || r.Throttles < throttled || r.Throttles != st.Throttles.Load() {
		t.Fatalf("throttles: result %d, stats %d; the proxy throttled %d reads", r.Throttles, st.Throttles.Load(), throttled)
	}
	if r.Retries < puts+dels+throttled || r.Retries != st.Retries.Load() {
		t.Fatalf("retries: result %d, stats %d; want at least the %d dropped answers and %d throttled reads", r.Retries, st.Retries.Load(), puts+dels, throttled)
	}
	t.Logf("%d retries, %d throttled", r.Retries, r.Throttles)
	ddbtest.AssertSameItems(t, c, sc.master, sc.slave, "pk", "")
}
