package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

func item(pk string, v int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"v":  &types.AttributeValueMemberN{Value: fmt.Sprint(v)},
		"s":  &types.AttributeValueMemberS{Value: strings.Repeat("x", 64)},
	}
}

// dropTable deletes a table the test did not create itself (the
// checkpoint table ddbsync creates) when the test ends.
func dropTable(t *testing.T, c *dynamodb.Client, name string) {
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
}

// Two stream workers share one checkpoint table; the one reading the
// shard is SIGKILLed during a burst of writes; the other takes the shard
// over after the lease expires, resumes from its checkpoint, and the
// output converges to the input.
func testStreamKill(t *testing.T, bin string) {
	c, _ := ddbtest.Clients(t)
	src, dst, ckpt := ddbtest.Name(t, "e2e-ssrc"), ddbtest.Name(t, "e2e-sdst"), ddbtest.Name(t, "e2e-sckpt")
	k := ddbtest.StringKey
	k.Stream = types.StreamViewTypeNewAndOldImages
	ddbtest.CreateTable(t, c, src, k)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	dropTable(t, c, ckpt)

	var first []map[string]types.AttributeValue
	for i := range 200 {
		first = append(first, item(fmt.Sprintf("k%04d", i), i))
	}
	ddbtest.PutItems(t, c, src, first)

	args := []string{"stream", "--endpoint-url", ddbtest.Endpoint(t), "--log-level", "debug",
		"--input-table", src, "--output-table", dst,
		"--checkpoint-table", ckpt, "--lease-duration", "2s"}
	workers := []*proc{
		start(t, bin, "stream-worker-0", append(args, "--state-dir", t.TempDir())...),
		start(t, bin, "stream-worker-1", append(args, "--state-dir", t.TempDir())...),
	}
	poll(t, 90*time.Second, "the first 200 items to reach the output", func() bool { return countItems(t, c, dst) == 200 })

	// The shard's holder logged that it took the shard's lease.
	took := regexp.MustCompile(`took \S+/stream shard`)
	victim, survivor := workers[0], workers[1]
	if countLines(workers[1].out.String(), took) > 0 && countLines(workers[0].out.String(), took) == 0 {
		victim, survivor = workers[1], workers[0]
	}

	// A burst: new items, updates and deletes; the holder dies in the middle.
	ctx := context.Background()
	for i := 0; i < 600; i++ {
		var err error
		switch {
		case i < 300:
			_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(src), Item: item(fmt.Sprintf("k%04d", 200+i), i)})
		case i < 500:
			_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(src), Item: item(fmt.Sprintf("k%04d", i-300), 1000+i)})
		default:
			_, err = c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(src), Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("k%04d", i)}}})
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 250 {
			victim.signal(t, syscall.SIGKILL)
		}
	}
	victim.wait(t, 30*time.Second)

	poll(t, 120*time.Second, "the output to converge to the input", func() bool { return sameItems(t, c, src, dst) })
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	if !strings.Contains(survivor.out.String(), "took over") {
		t.Errorf("the survivor never logged taking over the dead worker's shard")
	}

	survivor.signal(t, syscall.SIGTERM)
	if code := survivor.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("survivor exited %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(survivor.out.String(), "Summary: stream stopped") {
		t.Errorf("no summary line from the survivor")
	}
}

// Two sync workers on one checkpoint table: one records the handover, both
// share the copy and then the stream, with writes going on all along; the
// output converges to the input and both stop cleanly on SIGTERM.
func testSyncTwoWorkers(t *testing.T, bin string) {
	c, _ := ddbtest.Clients(t)
	src, dst, ckpt := ddbtest.Name(t, "e2e-ysrc"), ddbtest.Name(t, "e2e-ydst"), ddbtest.Name(t, "e2e-yckpt")
	k := ddbtest.StringKey
	k.Stream = types.StreamViewTypeNewAndOldImages
	ddbtest.CreateTable(t, c, src, k)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	dropTable(t, c, ckpt)
	var first []map[string]types.AttributeValue
	for i := range 3000 {
		first = append(first, item(fmt.Sprintf("k%05d", i), i))
	}
	ddbtest.PutItems(t, c, src, first)

	args := []string{"sync", "--endpoint-url", ddbtest.Endpoint(t), "--input-table", src, "--output-table", dst,
		"--checkpoint-table", ckpt, "--backfill-total-segments", "6", "--lease-duration", "2s"}
	workers := []*proc{
		start(t, bin, "sync-worker-0", append(args, "--state-dir", t.TempDir())...),
		start(t, bin, "sync-worker-1", append(args, "--state-dir", t.TempDir())...),
	}
	ctx := context.Background()
	for i := range 300 { // changes during the copy
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(src), Item: item(fmt.Sprintf("k%05d", i*10), 50000+i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 2*time.Minute, "the output to converge to the input", func() bool { return sameItems(t, c, src, dst) })
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	recorded := 0
	for _, w := range workers {
		recorded += strings.Count(w.out.String(), "recorded the stream for the handover")
	}
	if recorded != 1 {
		t.Errorf("%d workers recorded the handover; want exactly 1", recorded)
	}
	for _, w := range workers {
		w.signal(t, syscall.SIGTERM)
	}
	for _, w := range workers {
		if code := w.wait(t, time.Minute); code != 0 && code != 130 {
			t.Errorf("%s exited %d after SIGTERM, want 0 (streaming) or 130 (still copying)", w.name, code)
		}
	}
}
