package backfill_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// tenantItem is an item of one of three tenants (a tenth have none), with
// a 38-digit number, a set, a quantity and temporary attributes.
func tenantItem(i int) map[string]types.AttributeValue {
	it := map[string]types.AttributeValue{
		"pk":    &types.AttributeValueMemberS{Value: fmt.Sprintf("item-%05d", i)},
		"qty":   &types.AttributeValueMemberN{Value: fmt.Sprint(i % 17)},
		"big":   &types.AttributeValueMemberN{Value: "12345678901234567890123456789012345678"},
		"frac":  &types.AttributeValueMemberN{Value: "0.1000000000000000000000000000000000001"},
		"tags":  &types.AttributeValueMemberSS{Value: []string{"a", fmt.Sprint("t", i%5)}},
		"tmp1":  &types.AttributeValueMemberS{Value: "scratch"},
		"tmpXY": &types.AttributeValueMemberBOOL{Value: true},
	}
	if i%10 != 9 {
		it["tenant"] = &types.AttributeValueMemberS{Value: []string{"acme", "globex", "initech"}[i%3]}
	}
	return it
}

// countingScan counts what Scan returned and what it read.
type countingScan struct {
	backfill.SourceAPI
	returned, scanned atomic.Int64
	filterExpr        atomic.Value
}

func (c *countingScan) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	out, err := c.SourceAPI.Scan(ctx, in, optFns...)
	if err == nil {
		c.returned.Add(int64(len(out.Items)))
		c.scanned.Add(int64(out.ScannedCount))
		c.filterExpr.Store(aws.ToString(in.FilterExpression))
	}
	return out, err
}

func TestFilterCopiesExactlyTheMatchingItemsUnchanged(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "flt-in"), ddbtest.Name(t, "flt-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	const n = 600
	load(t, c, in, n, tenantItem)
	src := &countingScan{SourceAPI: c}
	cfg := config(t, src, c, in, out)
	cfg.Program = ddbtest.Program(t, `has(item.tenant) && item.tenant == "acme" && item.qty < 12`, "")
	cfg.TotalSegments = 3
	cfg.PageSize = 7 // many pages, some of them empty once filtered
	res, err := backfill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range n {
		if i%10 != 9 && i%3 == 0 && i%17 < 12 {
			want++
		}
	}
	if got := ddbtest.AssertTransformed(t, c, cfg.Program, in, out, "pk", ""); got != want {
		t.Fatalf("output holds %d items, want %d", got, want)
	}
	// Exactly the input's items: nothing changed on the way.
	inItems := map[string]map[string]types.AttributeValue{}
	for _, it := range ddbtest.ScanAll(t, c, in) {
		inItems[it["pk"].(*types.AttributeValueMemberS).Value] = it
	}
	for _, it := range ddbtest.ScanAll(t, c, out) {
		if want := inItems[it["pk"].(*types.AttributeValueMemberS).Value]; !reflect.DeepEqual(it, want) {
			t.Fatalf("a filtered item changed: %v, input %v", it, want)
		}
	}
	if res.ItemsRead != n || res.ItemsWritten != int64(want) || res.ItemsFiltered != int64(n-want) || res.ItemsSkipped != int64(n-want) || res.ItemsFailed != 0 {
		t.Fatalf("result %+v; want %d read, %d written, %d filtered and skipped", res, n, want, n-want)
	}
	checkAccounting(t, res, cfg.Stats)
	if cfg.Stats.ItemsFiltered.Load() != res.ItemsFiltered {
		t.Errorf("stats filtered %d, result %d", cfg.Stats.ItemsFiltered.Load(), res.ItemsFiltered)
	}
	// The equality and has() went to Scan as a FilterExpression: DynamoDB
	// read every item but returned fewer.
	if fe, _ := src.filterExpr.Load().(string); !strings.Contains(fe, "attribute_exists") || !strings.Contains(fe, "=") {
		t.Errorf("Scan FilterExpression = %q; want the has() and the equality", fe)
	}
	if src.scanned.Load() != n || src.returned.Load() >= n || src.returned.Load() < int64(want) {
		t.Errorf("Scan read %d items and returned %d; want %d read and between %d and %d returned", src.scanned.Load(), src.returned.Load(), n, want, n)
	}
	// Complete: checkpoints say so.
	if done, err := backfill.Done(context.Background(), cfg.Store, cfg.StateKey); err != nil || !done {
		t.Fatalf("Done = %v, %v", done, err)
	}
}

const reshape = `
set:
  id2: '"T#" + item.pk'
  label: 'item.?tenant.orValue("none").upperAscii()'
drop: ["tmp*"]
rename:
  qty: quantity
`

func TestTransformIsAppliedItemByItem(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "tr-in"), ddbtest.Name(t, "tr-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	const n = 300
	load(t, c, in, n, tenantItem)
	cfg := config(t, c, c, in, out)
	cfg.Program = ddbtest.Program(t, "", reshape)
	res, err := backfill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := ddbtest.AssertTransformed(t, c, cfg.Program, in, out, "pk", ""); got != n {
		t.Fatalf("output holds %d items, want %d", got, n)
	}
	checkAccounting(t, res, cfg.Stats)
	// Spelled out for one item: renamed, dropped, set, numbers digit for digit.
	for _, it := range ddbtest.ScanAll(t, c, out) {
		if it["pk"].(*types.AttributeValueMemberS).Value != "item-00004" {
			continue
		}
		want := map[string]string{"id2": "T#item-00004", "label": "GLOBEX"}
		for k, v := range want {
			if s, ok := it[k].(*types.AttributeValueMemberS); !ok || s.Value != v {
				t.Errorf("%s = %v, want %q", k, it[k], v)
			}
		}
		if q, ok := it["quantity"].(*types.AttributeValueMemberN); !ok || q.Value != "4" {
			t.Errorf("quantity = %v, want 4", it["quantity"])
		}
		for _, gone := range []string{"qty", "tmp1", "tmpXY"} {
			if _, ok := it[gone]; ok {
				t.Errorf("%s is still there", gone)
			}
		}
		if b := it["big"].(*types.AttributeValueMemberN).Value; b != "12345678901234567890123456789012345678" {
			t.Errorf("big = %s: a 38-digit number changed", b)
		}
		if _, ok := it["tags"].(*types.AttributeValueMemberSS); !ok {
			t.Errorf("tags = %T, want a string set", it["tags"])
		}
		return
	}
	t.Fatal("item-00004 is not in the output")
}

func TestKeyChangeAndFailedItems(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in := ddbtest.Name(t, "kc-in")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	const n = 200
	load(t, c, in, n, tenantItem) // a tenth have no tenant
	outKey := ddbtest.KeySpec{Hash: "tenant_id", HashType: types.ScalarAttributeTypeS, Range: "n", RangeType: types.ScalarAttributeTypeN}
	// The output key: the tenant (the program fails on items without one)
	// and a number computed from the input key.
	yml := "set:\n  tenant_id: 'item.tenant'\n  n: 'int(item.pk.substring(5))'\n"

	t.Run("failed items fail the run and are not checkpointed", func(t *testing.T) {
		out := ddbtest.Name(t, "kc-out")
		ddbtest.CreateTable(t, c, out, outKey)
		core, logs := observer.New(zap.ErrorLevel)
		cfg := config(t, c, c, in, out)
		cfg.Logger = zap.New(core)
		cfg.Program = ddbtest.Program(t, "", yml)
		cfg.TotalSegments = 2
		res, err := backfill.Run(context.Background(), cfg)
		if !errors.Is(err, backfill.ErrItemsFailed) {
			t.Fatalf("err = %v; want ErrItemsFailed", err)
		}
		if res.ItemsFailed != n/10 || res.ItemsWritten != n-n/10 {
			t.Fatalf("result %+v; want %d failed, %d written", res, n/10, n-n/10)
		}
		checkAccounting(t, res, cfg.Stats)
		if got := logs.FilterMessageSnippet("item failed").FilterField(zap.String("key", `{"pk":"item-00009"}`)).Len(); got != 1 {
			t.Errorf("item-00009 logged %d times with its key; logs: %v", got, logs.All())
		}
		if done, _ := backfill.Done(context.Background(), cfg.Store, cfg.StateKey); done {
			t.Fatal("the backfill is checkpointed as done although items failed")
		}
		// Again with --skip-failed-items: it resumes, reports the
		// failures and succeeds.
		cfg.SkipFailedItems = true
		cfg.Logger = zap.NewNop()
		res, err = backfill.Run(context.Background(), cfg)
		if err != nil || res.ItemsFailed == 0 {
			t.Fatalf("with SkipFailedItems: %+v, %v; want success with failed items counted", res, err)
		}
		if done, _ := backfill.Done(context.Background(), cfg.Store, cfg.StateKey); !done {
			t.Fatal("not done after the run with SkipFailedItems")
		}
		if got := len(ddbtest.ScanAll(t, c, out)); got != n-n/10 {
			t.Fatalf("output holds %d items, want %d", got, n-n/10)
		}
	})

	t.Run("a key of the wrong type is a failed item", func(t *testing.T) {
		out := ddbtest.Name(t, "kt-out")
		ddbtest.CreateTable(t, c, out, outKey)
		cfg := config(t, c, c, in, out)
		// n is a string for a tenth of the items.
		cfg.Program = ddbtest.Program(t, "has(item.tenant)", "set:\n  tenant_id: 'item.tenant'\n  n: 'item.qty == 3 ? item.pk : int(item.pk.substring(5))'\n")
		cfg.SkipFailedItems = true
		res, err := backfill.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i := range n {
			if i%10 != 9 && i%17 == 3 {
				bad++
			}
		}
		if res.ItemsFailed != int64(bad) || res.ItemsFiltered != n/10 || res.ItemsWritten != int64(n-n/10-bad) {
			t.Fatalf("result %+v; want %d failed, %d filtered", res, bad, n/10)
		}
		checkAccounting(t, res, cfg.Stats)
	})

	t.Run("an output key the transform cannot produce is refused before any write", func(t *testing.T) {
		out := ddbtest.Name(t, "kr-out")
		ddbtest.CreateTable(t, c, out, outKey)
		cfg := config(t, c, c, in, out)
		cfg.Program = ddbtest.Program(t, "", "set:\n  tenant_id: 'item.tenant'\ndrop: [n]\n")
		var pe *plan.Error
		if err := backfill.Check(context.Background(), cfg); !errors.As(err, &pe) {
			t.Fatalf("Check: %v; want a plan.Error", err)
		}
		_, err := backfill.Run(context.Background(), cfg)
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "drops it") {
			t.Fatalf("Run: %v; want a plan.Error saying the transform drops n", err)
		}
		if cfg.Stats.ItemsRead.Load() != 0 || len(ddbtest.ScanAll(t, c, out)) != 0 {
			t.Fatal("items were read or written")
		}
	})

	t.Run("create-output-table refuses a transform that renames the key away", func(t *testing.T) {
		out := ddbtest.Name(t, "kco-out")
		cfg := config(t, c, c, in, out)
		cfg.CreateOutputTable = true
		cfg.Program = ddbtest.Program(t, "", "rename:\n  pk: id\n")
		var pe *plan.Error
		if err := backfill.Check(context.Background(), cfg); !errors.As(err, &pe) || !strings.Contains(err.Error(), "(CreateOutputTable)") {
			t.Fatalf("Check: %v; want a plan.Error naming CreateOutputTable", err)
		}
		if _, err := backfill.Run(context.Background(), cfg); !errors.As(err, &pe) {
			t.Fatalf("Run: %v; want a plan.Error", err)
		}
		if _, err := c.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(out)}); err == nil {
			t.Fatal("the output table was created")
		}
	})
}

// A preview (a dry run) of a copy whose filter is a plain equality, the
// kind also passed to Scan, sizes the run like any other (it once
// dereferenced the run's missing logger) and writes nothing.
func TestPreviewWithScanFilter(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "pvf-in"), ddbtest.Name(t, "pvf-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	load(t, c, in, 20, tenantItem)
	cfg := config(t, c, c, in, out)
	cfg.Program = ddbtest.Program(t, `item.tenant == "acme"`, "")
	if _, ok := cfg.Program.ScanFilter(); !ok {
		t.Fatal("the filter is not one Scan can take; the test needs one")
	}
	cfg.TotalSegments = 3
	p, err := backfill.PreviewRun(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.TotalSegments != 3 || len(p.Segments) != 3 || p.Parallel < 1 || p.Writers < 1 || !p.OutputExists {
		t.Errorf("preview %+v", p)
	}
	if n := len(ddbtest.ScanAll(t, c, out)); n != 0 {
		t.Errorf("the preview wrote %d items", n)
	}
}

// TestResumeWithAnotherProgramRefused: a copy resumes only with the filter
// and transform it began with; another one is a usage error before
// anything is written.
func TestResumeWithAnotherProgramRefused(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "rp-in"), ddbtest.Name(t, "rp-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	load(t, c, in, 50, simpleItem)
	cfg := config(t, c, c, in, out)
	cfg.Program = ddbtest.Program(t, "item.n >= 10", "")
	if _, err := backfill.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Program = ddbtest.Program(t, "item.n >= 20", "")
	var pe *plan.Error
	if _, err := backfill.Run(context.Background(), cfg); !errors.As(err, &pe) || !strings.Contains(err.Error(), "another filter or transform") {
		t.Fatalf("resume with another filter: %v; want a plan.Error", err)
	}
	if err := backfill.Check(context.Background(), cfg); !errors.As(err, &pe) {
		t.Fatalf("Check with another filter: %v; want a plan.Error", err)
	}
}
