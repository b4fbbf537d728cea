package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

const (
	scanLimit     = 100 // items per Scan page in the scale-out test
	pagesInFlight = 2   // backfill.DefaultPagesInFlight
)

// Three workers split a backfill through one checkpoint table; the one
// holding the most unfinished segments is SIGKILLed mid-run; the others
// take its segments over from its checkpoints and finish. The output
// equals the input, and the items written in all (counted at the wire,
// the dead worker's included) exceed the input by at most the pages in
// flight of each segment that changed hands.
//
// The issue asks for 100,000 items; the suite uses DDBSYNC_E2E_ITEMS
// (default 20,000) to stay fast. Run the full size by hand with
// DDBSYNC_E2E_ITEMS=100000 go test -run TestE2E/BackfillWorkerKilled ./internal/e2e
func testBackfillKill(t *testing.T, bin string) {
	n := envInt(t, "DDBSYNC_E2E_ITEMS", 20000)
	c, _ := ddbtest.Clients(t)
	src, dst, ckpt := ddbtest.Name(t, "e2e-bsrc"), ddbtest.Name(t, "e2e-bdst"), ddbtest.Name(t, "e2e-bckpt")
	ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	dropTable(t, c, ckpt)
	items := make([]map[string]types.AttributeValue, 0, n)
	for i := range n {
		items = append(items, item(fmt.Sprintf("k%07d", i), i))
	}
	ddbtest.PutItems(t, c, src, items)

	wc := newWriteCounter(t, ddbtest.Endpoint(t))
	args := []string{"backfill", "--endpoint-url", wc.URL, "--log-level", "debug",
		"--input-table", src, "--output-table", dst,
		"--checkpoint-table", ckpt, "--backfill-total-segments", "12", "--scan-limit", strconv.Itoa(scanLimit),
		"--lease-duration", "2s"}
	var workers []*proc
	for i := range 3 {
		workers = append(workers, start(t, bin, fmt.Sprintf("backfill-worker-%d", i), append(args, "--state-dir", t.TempDir())...))
	}

	// Kill, mid-run, the worker holding the most unfinished segments.
	poll(t, 2*time.Minute, "a fifth of the items to be copied", func() bool { return countItems(t, c, dst) >= n/5 })
	victim := busiest(t, c, ckpt, workers)
	victim.signal(t, syscall.SIGKILL)
	victim.wait(t, 30*time.Second)
	copiedAtKill := countItems(t, c, dst)

	for _, w := range workers {
		if w == victim {
			continue
		}
		if code := w.wait(t, 4*time.Minute); code != 0 {
			t.Fatalf("%s exited %d, want 0", w.name, code)
		}
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")

	// Each segment that changed hands (taken over from the dead worker, or
	// moved to even out the load) may have its pages in flight written
	// twice; nothing else is.
	handovers := 0
	takeovers := regexp.MustCompile(`took over \S+/backfill segment-|to even out the load`)
	for _, w := range workers {
		handovers += countLines(w.out.String(), takeovers)
	}
	written := wc.written.Load()
	bound := int64(n + handovers*pagesInFlight*scanLimit)
	t.Logf("%d items, %d copied when the worker was killed, %d written in all, %d segment handovers, bound %d", n, copiedAtKill, written, handovers, bound)
	if written < int64(n) {
		t.Fatalf("only %d items written for %d in the input", written, n)
	}
	if written > bound {
		t.Fatalf("%d items written: more than the input (%d) plus the pages in flight of %d handed-over segments (%d)", written, n, handovers, bound)
	}
	survivorTookOver := false
	for _, w := range workers {
		if w != victim && strings.Contains(w.out.String(), "took over") {
			survivorTookOver = true
		}
	}
	if !survivorTookOver {
		t.Fatalf("no survivor took over a segment of the killed worker")
	}
}

// busiest returns the worker process holding the most unfinished segment
// leases (worker IDs are hostname-PID-random).
func busiest(t *testing.T, c *dynamodb.Client, ckpt string, workers []*proc) *proc {
	t.Helper()
	out, err := c.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(ckpt), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	held := map[int]int{}
	for _, it := range out.Items {
		owner, ok := it["owner"].(*types.AttributeValueMemberS)
		if !ok {
			continue
		}
		if f, ok := it["finished"].(*types.AttributeValueMemberBOOL); ok && f.Value {
			continue
		}
		parts := strings.Split(owner.Value, "-")
		if len(parts) < 3 {
			continue
		}
		pid, _ := strconv.Atoi(parts[len(parts)-2])
		held[pid]++
	}
	best := workers[0]
	for _, w := range workers {
		if held[w.cmd.Process.Pid] > held[best.cmd.Process.Pid] {
			best = w
		}
	}
	if held[best.cmd.Process.Pid] == 0 {
		t.Fatalf("no worker holds an unfinished segment (leases: %v)", held)
	}
	return best
}
