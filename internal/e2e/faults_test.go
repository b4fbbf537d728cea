package e2e

import (
	"context"
	"fmt"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/faultproxy"
)

// Backfill, stream and diff run through the fault proxy with 10% of all
// requests failing in every way it knows (throttling, 5xx, connections
// dropped before or after the request was applied, partial batches):
// each completes, the output equals the input, and the retries show in
// the summaries.
func testFaults(t *testing.T, bin string) {
	c, _ := ddbtest.Clients(t)
	src, dst, ckpt := ddbtest.Name(t, "e2e-fsrc"), ddbtest.Name(t, "e2e-fdst"), ddbtest.Name(t, "e2e-fckpt")
	k := ddbtest.StringKey
	k.Stream = types.StreamViewTypeNewAndOldImages
	ddbtest.CreateTable(t, c, src, k)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	dropTable(t, c, ckpt)
	var items []map[string]types.AttributeValue
	for i := range 3000 {
		items = append(items, item(fmt.Sprintf("k%05d", i), i))
	}
	ddbtest.PutItems(t, c, src, items)

	p, err := faultproxy.New(faultproxy.Options{
		Upstream: ddbtest.Endpoint(t),
		Seed:     7,
		Rules:    []faultproxy.Rule{{Kind: faultproxy.Any, Rate: 0.1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	common := []string{"--endpoint-url", p.URL, "--retry-delay-base", "5ms", "--state-dir", t.TempDir()}
	retries := regexp.MustCompile(`(\d+) retries`)

	// Backfill.
	bf := start(t, bin, "backfill-faults", append([]string{"backfill", "--input-table", src, "--output-table", dst,
		"--checkpoint-table", ckpt, "--backfill-total-segments", "4"}, common...)...)
	if code := bf.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("backfill through the fault proxy exited %d", code)
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	if m := retries.FindStringSubmatch(bf.out.String()); m == nil || m[1] == "0" {
		t.Errorf("backfill summary shows no retries: %q", lastLine(bf.out.String(), "Summary"))
	}

	// Stream: changes made after the copy reach the output.
	ctx := context.Background()
	for i := range 300 {
		var err error
		switch {
		case i < 200:
			_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(src), Item: item(fmt.Sprintf("k%05d", i*7), 100000+i)})
		default:
			_, err = c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(src), Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("k%05d", i*3+1)}}})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	sw := start(t, bin, "stream-faults", append([]string{"stream", "--input-table", src, "--output-table", dst,
		"--checkpoint-table", ckpt, "--lease-duration", "5s"}, common...)...)
	poll(t, 3*time.Minute, "the stream to bring the output up to date", func() bool { return sameItems(t, c, src, dst) })
	sw.signal(t, syscall.SIGTERM)
	if code := sw.wait(t, time.Minute); code != 0 {
		t.Fatalf("stream exited %d after SIGTERM", code)
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	if m := retries.FindStringSubmatch(lastLine(sw.out.String(), "Summary")); m == nil || m[1] == "0" {
		t.Errorf("stream summary shows no retries: %q", lastLine(sw.out.String(), "Summary"))
	}

	// Diff: plant differences on the output, repair them through the proxy.
	for i := range 20 {
		pk := fmt.Sprintf("k%05d", 2000+i)
		if i < 10 {
			_, err = c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(dst), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}})
		} else {
			_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(dst), Item: item(pk, -1)})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	diffArgs := []string{"diff", "-m", ddbtest.Region + ":" + src, "-s", ddbtest.Region + ":" + dst}
	df := start(t, bin, "diff-faults", append(append(diffArgs, "--write-missing", "--write-differing"), common...)...)
	code := df.wait(t, 3*time.Minute)
	summary := lastLine(df.out.String(), "summary")
	for _, want := range []string{"missing 10", "differing 10", "errors 0"} {
		if !regexp.MustCompile(regexp.QuoteMeta(want) + `\b`).MatchString(summary) {
			t.Errorf("diff summary lacks %q: %s", want, summary)
		}
	}
	// A repair whose write was applied but whose answer was lost
	// (DropAfter) is retried by the SDK and fails its condition; diff sees
	// that the slave already holds the intended item and counts it as
	// written, so the run exits 0 with nothing skipped.
	if code != 0 {
		t.Fatalf("diff with repairs exited %d: %s", code, summary)
	}
	if !regexp.MustCompile(`skipped \(changed during diff\) 0\b`).MatchString(summary) {
		t.Errorf("diff counted conflicts that no concurrent writer caused: %s", summary)
	}
	if !retries.MatchString(summary) {
		t.Errorf("diff summary shows no retry count: %s", summary)
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	// A second diff, still through the faults, finds nothing left.
	check := start(t, bin, "diff-faults-check", append(diffArgs, common...)...)
	if code := check.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("diff after the repair exited %d, want 0: %s", code, lastLine(check.out.String(), "summary"))
	}

	injected := p.Count("", faultproxy.Any)
	if injected < 50 {
		t.Fatalf("only %d faults injected; the test did not exercise much: %s", injected, p.Summary())
	}
	t.Logf("faults injected: %d (%s)", injected, p.Summary())
}

// lastLine returns the last line of s containing substr.
func lastLine(s, substr string) string {
	re := regexp.MustCompile(`(?m)^.*` + regexp.QuoteMeta(substr) + `.*$`)
	all := re.FindAllString(s, -1)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}
