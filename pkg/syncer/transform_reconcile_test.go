package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

// TestSyncWithTransformDeletesExtra: the output of an earlier migration
// holds what a correct one must not: items of input keys deleted since,
// items that have left the filter, and items still under the tenant an
// item has moved away from. sync --delete-extra, with the same transform,
// reconciles the output after its copy, comparing it with the transformed
// input (not the input itself, whose key schema is another): the output
// ends exactly the transformed, filtered input.
func TestSyncWithTransformDeletesExtra(t *testing.T) {
	c, s := ddbtest.Clients(t)
	k := ddbtest.StringKey
	k.Stream = types.StreamViewTypeNewAndOldImages
	f := &fixture{c: c, s: s, src: ddbtest.Name(t, "xsrc"), dst: ddbtest.Name(t, "xdst")}
	ddbtest.CreateTable(t, c, f.src, k)
	ddbtest.CreateTable(t, c, f.dst, ddbtest.KeySpec{Hash: "tenant", HashType: types.ScalarAttributeTypeS, Range: "id", RangeType: types.ScalarAttributeTypeS})
	f.store = state.NewMemory()
	tenants := []string{"acme", "globex", "initech"}
	prog := ddbtest.Program(t, "item.active", byTenant)

	var input, stale []map[string]types.AttributeValue
	addStale := func(it map[string]types.AttributeValue) {
		out, keep, err := prog.Apply(it)
		if err != nil || !keep {
			t.Fatalf("stale item: keep %v, %v", keep, err)
		}
		stale = append(stale, out)
	}
	wantExtra := 0
	for i := range 300 {
		pk := fmt.Sprintf("k%04d", i)
		switch i % 6 {
		case 0: // deleted from the input since the earlier migration
			addStale(tenantItem(pk, i, tenants[i%3], true))
			wantExtra++
			continue
		case 1: // left the filter since
			addStale(tenantItem(pk, i, tenants[i%3], true))
			input = append(input, tenantItem(pk, i, tenants[i%3], false))
			wantExtra++
			continue
		case 2: // moved to another tenant since: its old output item is extra
			addStale(tenantItem(pk, i, tenants[(i+1)%3], true))
			wantExtra++
		case 3: // unchanged since, already in the output
			addStale(tenantItem(pk, i, tenants[i%3], true))
		}
		input = append(input, tenantItem(pk, i, tenants[i%3], i%6 != 5))
	}
	ddbtest.PutItems(t, c, f.src, input)
	ddbtest.PutItems(t, c, f.dst, stale)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := f.config(t)
	cfg.Program = prog
	cfg.DeleteExtra = true
	cfg.BackfillConfig.TotalSegments = 4
	if err := syncer.Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	n := ddbtest.AssertTransformed(t, c, prog, f.src, f.dst, "tenant", "id")
	// 300 keys: 50 deleted, 50 out of the filter, 50 more (i%6 == 5)
	// inactive: 150 kept.
	if n != 150 {
		t.Fatalf("output has %d items, want the 150 the filter keeps", n)
	}
	t.Logf("%d stale output items, %d of them extra; output now exactly the %d transformed, filtered input items", len(stale), wantExtra, n)
}

// TestSyncResumedWithAnotherProgramRefused: the handover keeps the sync's
// filter and transform; another one is refused before anything is
// written.
func TestSyncResumedWithAnotherProgramRefused(t *testing.T) {
	f := newFixture(t, types.StreamViewTypeNewAndOldImages)
	f.load(t, 20)
	cfg := f.config(t)
	cfg.BackfillConfig.TotalSegments = 2
	cfg.Program = ddbtest.Program(t, "item.v >= 5", "")
	if err := syncer.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Program = ddbtest.Program(t, "item.v >= 6", "")
	var pe *plan.Error
	if err := syncer.Check(context.Background(), cfg); !errors.As(err, &pe) || !strings.Contains(err.Error(), "another filter or transform") {
		t.Fatalf("Check with another filter: %v; want a plan.Error", err)
	}
	if err := syncer.Run(context.Background(), cfg); !errors.As(err, &pe) {
		t.Fatalf("Run with another filter: %v; want a plan.Error", err)
	}
}
