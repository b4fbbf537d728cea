package diff_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/diff"
)

// The master deletes or changes an item after diff's consistent re-read
// and before its repair write reaches the slave (the replication's delete
// of a missing slave item is then a no-op): diff must not leave an item
// the master deleted on the slave, nor count a write of a master item
// that changed meanwhile as a repair. Every such repair is skipped
// (changed during diff); a write that resurrected a deleted item is
// undone.
func TestMasterChangeDuringRepair(t *testing.T) {
	for _, tc := range []struct {
		name      string
		differing bool // repair differing items (else missing ones)
		delete    bool // the master deletes the item (else changes it)
		version   string
	}{
		{name: "missing, master deletes", delete: true},
		{name: "missing, master deletes, version attribute", delete: true, version: "n"},
		{name: "missing, master changes"},
		{name: "differing, master deletes", differing: true, delete: true},
		{name: "differing, master changes", differing: true},
		{name: "differing, master changes, version attribute", differing: true, version: "n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := ddbtest.Clients(t)
			ctx := context.Background()
			sc := newScenario(t, c, 300)
			var mu sync.Mutex
			meddled := map[string]bool{}
			// Between diff's re-read and its write: the master changes.
			slave := &hookClient{Client: c, beforePut: func(in *dynamodb.PutItemInput) {
				key := in.Item["pk"].(*types.AttributeValueMemberS).Value
				mu.Lock()
				defer mu.Unlock()
				if meddled[key] {
					return
				}
				meddled[key] = true
				var err error
				if tc.delete {
					_, err = c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(sc.master), Key: map[string]av{"pk": s(key)}})
				} else {
					it := clone(in.Item)
					it["name"] = s("changed on the master")
					it["n"] = n("9999999")
					_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(sc.master), Item: it})
				}
				if err != nil {
					t.Errorf("master change: %v", err)
				}
			}}
			var rep bytes.Buffer
			res := run(t, diff.Config{
				Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, slave)},
				WriteMissing: !tc.differing, WriteDiffering: tc.differing, VersionAttribute: tc.version, Report: &rep,
			})
			repaired := sc.missing
			if tc.differing {
				repaired = sc.differing
			}
			wantCounts(t, res.Slaves[0], diff.SlaveResult{
				Scanned: 300, Matching: int64(300 - sc.missing - sc.differing),
				Missing: int64(sc.missing), Differing: int64(sc.differing),
				Skipped: int64(repaired),
			})
			if len(meddled) != repaired {
				t.Fatalf("%d repair writes, want %d", len(meddled), repaired)
			}
			skipped := 0
			for _, l := range reportLines(t, &rep) {
				if l["action"] == diff.ActionSkipped {
					skipped++
					if r, _ := l["reason"].(string); !strings.Contains(r, "changed during diff") {
						t.Errorf("skip reason %q", r)
					}
				}
			}
			if skipped != repaired {
				t.Fatalf("report has %d skipped lines, want %d", skipped, repaired)
			}
			// What the master deleted is not on the slave.
			if tc.delete {
				for _, it := range ddbtest.ScanAll(t, c, sc.slave) {
					if key := it["pk"].(*types.AttributeValueMemberS).Value; meddled[key] {
						t.Errorf("item %s, deleted on the master during the repair, is on the slave", key)
					}
				}
			}
		})
	}
}
