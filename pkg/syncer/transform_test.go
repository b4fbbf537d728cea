package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

// byTenant moves the items into a table keyed by tenant and id: the input
// key pk becomes id, and an item whose tenant changes moves to another
// output key.
const byTenant = `
set:
  label: '"v" + string(item.v)'
drop: ["tmp*"]
rename:
  pk: id
`

func tenantItem(pk string, v int, tenant string, active bool) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk":     &types.AttributeValueMemberS{Value: pk},
		"v":      &types.AttributeValueMemberN{Value: fmt.Sprint(v)},
		"big":    &types.AttributeValueMemberN{Value: "98765432109876543210987654321098765432"},
		"tenant": &types.AttributeValueMemberS{Value: tenant},
		"active": &types.AttributeValueMemberBOOL{Value: active},
		"tmpA":   &types.AttributeValueMemberS{Value: "scratch"},
	}
}

// TestSyncTransformsIntoAnotherKeySchema: while a writer puts, moves
// (another tenant), deletes and toggles items in and out of the filter for
// the whole backfill, sync copies into a table keyed by (tenant, id); the
// output ends exactly the transformed, filtered input.
func TestSyncTransformsIntoAnotherKeySchema(t *testing.T) {
	c, s := ddbtest.Clients(t)
	k := ddbtest.StringKey
	k.Stream = types.StreamViewTypeNewAndOldImages
	f := &fixture{c: c, s: s, src: ddbtest.Name(t, "tsrc"), dst: ddbtest.Name(t, "tdst")}
	ddbtest.CreateTable(t, c, f.src, k)
	ddbtest.CreateTable(t, c, f.dst, ddbtest.KeySpec{Hash: "tenant", HashType: types.ScalarAttributeTypeS, Range: "id", RangeType: types.ScalarAttributeTypeS})
	f.store = state.NewMemory()
	tenants := []string{"acme", "globex", "initech"}
	var items []map[string]types.AttributeValue
	for i := range 600 {
		items = append(items, tenantItem(fmt.Sprintf("k%04d", i), i, tenants[i%3], i%4 != 0))
	}
	ddbtest.PutItems(t, c, f.src, items)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes, moves, deletes int
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		for v := 1000; ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			pk := fmt.Sprintf("k%04d", rng.IntN(700)) // some keys are new
			var err error
			switch rng.IntN(5) {
			case 0:
				deletes++
				_, err = c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(f.src), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}})
			case 1:
				// Another tenant: the output item moves.
				moves++
				_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.src), Item: tenantItem(pk, v, tenants[rng.IntN(3)], true)})
			default:
				// In or out of the filter.
				_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName: aws.String(f.src), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
					UpdateExpression: aws.String("SET active = :a, v = :v, tenant = if_not_exists(tenant, :t)"),
					ExpressionAttributeValues: map[string]types.AttributeValue{
						":a": &types.AttributeValueMemberBOOL{Value: rng.IntN(2) == 0},
						":v": &types.AttributeValueMemberN{Value: fmt.Sprint(v)},
						":t": &types.AttributeValueMemberS{Value: tenants[rng.IntN(3)]},
					},
				})
			}
			if err != nil {
				t.Errorf("write: %v", err)
				return
			}
			writes++
		}
	}()
	cfg := f.config(t)
	cfg.Program = ddbtest.Program(t, "item.active", byTenant)
	cfg.BackfillConfig.TotalSegments = 4
	cfg.BackfillConfig.PageSize = 5 // a slower copy, for more concurrent writes
	cfg.RunBackfill = func(ctx context.Context, bc backfill.Config) (backfill.Result, error) {
		defer func() { time.Sleep(300 * time.Millisecond); close(stop); wg.Wait() }()
		return backfill.Run(ctx, bc)
	}
	if err := syncer.Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes during the backfill (%d moves, %d deletes); backfill read %d, wrote %d, filtered %d; stream read %d, applied %d, skipped %d, failed %d",
		writes, moves, deletes, cfg.Stats.ItemsRead.Load(), cfg.Stats.ItemsWritten.Load(), cfg.Stats.ItemsFiltered.Load(),
		cfg.Stats.RecordsRead.Load(), cfg.Stats.RecordsApplied.Load(), cfg.Stats.RecordsSkipped.Load(), cfg.Stats.RecordsFailed.Load())
	if writes == 0 || moves == 0 || deletes == 0 {
		t.Fatal("the writer did not write, move and delete during the backfill")
	}
	n := ddbtest.AssertTransformed(t, c, cfg.Program, f.src, f.dst, "tenant", "id")
	if n == 0 {
		t.Fatal("the output is empty")
	}
	t.Logf("output: %d items, exactly the transformed, filtered input", n)
}

// TestSyncRefusesBeforeCopying: what the stream phase would refuse is
// refused before the copy writes anything.
func TestSyncRefusesBeforeCopying(t *testing.T) {
	c, s := ddbtest.Clients(t)
	k := ddbtest.StringKey
	k.Stream = types.StreamViewTypeNewImage
	f := &fixture{c: c, s: s, src: ddbtest.Name(t, "rsrc"), dst: ddbtest.Name(t, "rdst")}
	ddbtest.CreateTable(t, c, f.src, k)
	ddbtest.CreateTable(t, c, f.dst, ddbtest.KeySpec{Hash: "tenant", HashType: types.ScalarAttributeTypeS, Range: "id", RangeType: types.ScalarAttributeTypeS})
	f.store = state.NewMemory()
	ddbtest.PutItems(t, c, f.src, []map[string]types.AttributeValue{tenantItem("k1", 1, "acme", true)})

	// The output key reads tenant, which a NEW_IMAGE stream's REMOVE lacks.
	cfg := f.config(t)
	cfg.Program = ddbtest.Program(t, "", byTenant)
	var pe *plan.Error
	if err := syncer.Check(context.Background(), cfg); !errors.As(err, &pe) || !strings.Contains(err.Error(), "old image") {
		t.Fatalf("Check: %v; want a plan.Error asking for old images", err)
	}

	// A reconciliation (--delete-extra) needs the input key in the output.
	f.dst = ddbtest.Name(t, "rdst2")
	ddbtest.CreateTable(t, c, f.dst, ddbtest.KeySpec{Hash: "id", HashType: types.ScalarAttributeTypeS})
	cfg = f.config(t)
	cfg.Program = ddbtest.Program(t, "", "set:\n  id: '\"x\" + item.pk'\ndrop: [pk]\n")
	cfg.DeleteExtra = true
	if err := syncer.Check(context.Background(), cfg); !errors.As(err, &pe) || !strings.Contains(err.Error(), "no unchanged copy of the input key attribute pk") {
		t.Fatalf("Check with --delete-extra: %v; want a plan.Error about the input key", err)
	}
	if len(ddbtest.ScanAll(t, c, f.dst)) != 0 {
		t.Fatal("something was written")
	}
}
