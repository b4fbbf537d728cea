package diff_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/diff"
)

// The merge sizes its Scan pages from the memory limit: with a small
// limit every page has a Limit (one page per segment and table, decoded,
// must fit), the counts stay exact; with a large one DynamoDB's 1 MB
// pages fit and no Limit is sent.
func TestMergePagesFitTheMemoryLimit(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 600)
	for _, tc := range []struct {
		limit   int64
		limited bool
	}{{1 << 20, true}, {4 << 30, false}} {
		var mu sync.Mutex
		var limits []*int32
		hook := func(ctx context.Context, in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
			mu.Lock()
			limits = append(limits, in.Limit)
			mu.Unlock()
			return c.Scan(ctx, in)
		}
		hm, hs := &hookClient{Client: c, scan: hook}, &hookClient{Client: c, scan: hook}
		res := run(t, diff.Config{
			Master: table(sc.master, hm), Slaves: []diff.Table{table(sc.slave, hs)},
			Method: diff.MethodMerge, MemoryLimit: tc.limit, TotalSegments: 2, ScanForExtra: true,
		})
		wantCounts(t, res.Slaves[0], diff.SlaveResult{
			Scanned: 600, Matching: int64(600 - sc.missing - sc.differing),
			Missing: int64(sc.missing), Differing: int64(sc.differing), Extra: int64(sc.extra),
			Method: diff.MethodMerge,
		})
		if len(limits) == 0 {
			t.Fatalf("limit %d: no Scan seen", tc.limit)
		}
		for _, l := range limits {
			switch {
			case tc.limited && (l == nil || aws.ToInt32(l) < 25 || aws.ToInt32(l) >= 600):
				t.Fatalf("limit %d: a Scan with Limit %v; want pages cut to fit (25 items or more, fewer than the table)", tc.limit, aws.ToInt32(l))
			case !tc.limited && l != nil:
				t.Fatalf("limit %d: a Scan with Limit %d; want DynamoDB's 1 MB pages", tc.limit, *l)
			}
		}
		t.Logf("limit %d: %d Scan pages, Limit %v", tc.limit, len(limits), aws.ToInt32(limits[0]))
	}
}
