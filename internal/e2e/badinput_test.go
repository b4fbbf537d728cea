package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

// A checkpoint table with another key schema is refused by every command
// before anything is written (exit 2); so is a plan changed under an
// existing checkpoint (another total_segments), without touching the
// existing progress.
func testBadInput(t *testing.T, bin string) {
	c, _ := ddbtest.Clients(t)
	src, dst, wrong, ckpt := ddbtest.Name(t, "e2e-bsrc"), ddbtest.Name(t, "e2e-bdst"), ddbtest.Name(t, "e2e-bwrong"), ddbtest.Name(t, "e2e-bckpt")
	k := ddbtest.StringKey
	k.Stream = types.StreamViewTypeNewAndOldImages
	ddbtest.CreateTable(t, c, src, k)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, wrong, ddbtest.KeySpec{Hash: "id", HashType: types.ScalarAttributeTypeS})
	dropTable(t, c, ckpt)
	var items []map[string]types.AttributeValue
	for i := range 500 {
		items = append(items, item(fmt.Sprintf("k%04d", i), i))
	}
	ddbtest.PutItems(t, c, src, items)
	base := []string{"--endpoint-url", ddbtest.Endpoint(t), "--state-dir", t.TempDir(), "--input-table", src, "--output-table", dst}

	for _, command := range []string{"backfill", "stream", "sync"} {
		p := start(t, bin, command+"-wrong-schema", append([]string{command, "--checkpoint-table", wrong, "--backfill-total-segments", "4"}, base...)...)
		if code := p.wait(t, time.Minute); code != 2 {
			t.Errorf("%s with a wrong checkpoint table exited %d, want 2", command, code)
		}
		if msg := p.errOut.String(); !strings.Contains(msg, "not a ddbsync checkpoint table") || !strings.Contains(msg, wrong) {
			t.Errorf("%s: error does not explain the wrong checkpoint table: %q", command, msg)
		}
	}
	if n := countItems(t, c, wrong); n != 0 {
		t.Errorf("%d items written into the foreign table", n)
	}
	if n := countItems(t, c, dst); n != 0 {
		t.Errorf("%d items written to the output despite the refusal", n)
	}

	// A backfill with 4 segments, then the same plan with 8.
	first := start(t, bin, "backfill-4", append([]string{"backfill", "--checkpoint-table", ckpt, "--backfill-total-segments", "4"}, base...)...)
	if code := first.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("first backfill exited %d", code)
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	before := ddbtest.ScanAll(t, c, ckpt)
	changed := start(t, bin, "backfill-8", append([]string{"backfill", "--checkpoint-table", ckpt, "--backfill-total-segments", "8"}, base...)...)
	if code := changed.wait(t, time.Minute); code != 2 {
		t.Fatalf("backfill with another total_segments exited %d, want 2", code)
	}
	msg := changed.errOut.String()
	for _, want := range []string{"asks for 8 total segments", "use 4", "ask for 4 (--backfill-total-segments", ckpt, "nothing was written"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal does not mention %q: %q", want, msg)
		}
	}
	if after := ddbtest.ScanAll(t, c, ckpt); len(after) != len(before) {
		t.Errorf("the checkpoint table went from %d to %d items: the refused run wrote to it", len(before), len(after))
	}
	// Without a total, a worker reads the registered one: a second run of
	// the finished backfill has nothing to do.
	again := start(t, bin, "backfill-again", append([]string{"backfill", "--checkpoint-table", ckpt}, base...)...)
	if code := again.wait(t, time.Minute); code != 0 {
		t.Fatalf("backfill without a total on a registered checkpoint exited %d", code)
	}
	// A fresh checkpoint table and no total: the worker chooses it from
	// the table size and records it for the others.
	fresh := ddbtest.Name(t, "e2e-bfresh")
	dropTable(t, c, fresh)
	none := start(t, bin, "backfill-no-total", append([]string{"backfill", "--checkpoint-table", fresh}, base...)...)
	if code := none.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("backfill without a total on a new checkpoint table exited %d, want 0; stderr:\n%s", code, none.errOut.String())
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(fresh)})
}
