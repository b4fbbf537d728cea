package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

// oneResult decodes standard output as exactly one --output json object:
// nothing before it, nothing after it.
func oneResult(t *testing.T, stdout string) cmdutil.Result {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	var res cmdutil.Result
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("stdout is not one JSON result object: %v\n%s", err, stdout)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON object:\n%s", stdout)
	}
	if len(res.Entries) != 1 {
		t.Fatalf("result has %d entries, want 1: %s", len(res.Entries), stdout)
	}
	return res
}

// runBin runs the binary to the end and returns its exit code and output.
func runBin(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := start(t, bin, args[0], args...)
	code = p.wait(t, 3*time.Minute)
	return code, p.out.String(), p.errOut.String()
}

func putN(t *testing.T, c *dynamodb.Client, table string, from, n int) {
	t.Helper()
	items := make([]map[string]types.AttributeValue, 0, n)
	for i := from; i < from+n; i++ {
		items = append(items, item(fmt.Sprintf("k%06d", i), i))
	}
	ddbtest.PutItems(t, c, table, items)
}

// --output json on backfill, sync and stream: one object on standard
// output whose counts equal the tables' sizes, the logs on standard
// error; a SIGINT'ed backfill still prints one object, phase stopped.
func testOutputJSON(t *testing.T, bin string) {
	c, _ := ddbtest.Clients(t)
	ep := ddbtest.Endpoint(t)
	const n = 700

	t.Run("backfill", func(t *testing.T) {
		src, dst := ddbtest.Name(t, "oj-src"), ddbtest.Name(t, "oj-dst")
		ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
		ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
		putN(t, c, src, 0, n)
		code, stdout, stderr := runBin(t, bin, "backfill", "--endpoint-url", ep, "--state-dir", t.TempDir(), "--no-status",
			"--input-table", src, "--output-table", dst, "--output", "json")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		res := oneResult(t, stdout)
		e := res.Entries[0]
		count := int64(countItems(t, c, dst))
		if res.Command != "backfill" || e.Phase != "complete" || e.ItemsRead != n || e.ItemsWritten != n || count != n ||
			e.ItemsFailed != 0 || e.RecordsApplied != 0 || e.Error != "" || e.ConsumedWCU < 0 || e.DurationSeconds <= 0 || res.DurationSeconds < e.DurationSeconds {
			t.Errorf("result %+v; output holds %d items, want %d", res, count, n)
		}
		if !strings.HasSuffix(e.Input, ":"+src) || !strings.HasSuffix(e.Output, ":"+dst) {
			t.Errorf("input %q output %q, want REGION:TABLE", e.Input, e.Output)
		}
		if !strings.Contains(stderr, "Summary: backfill complete") {
			t.Errorf("the logs did not move to standard error:\n%s", stderr)
		}
	})

	t.Run("sync", func(t *testing.T) {
		src, dst := ddbtest.Name(t, "oj-ssrc"), ddbtest.Name(t, "oj-sdst")
		ddbtest.CreateTable(t, c, src, ddbtest.KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeS, Stream: types.StreamViewTypeNewAndOldImages})
		ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
		putN(t, c, src, 0, n)
		code, stdout, stderr := runBin(t, bin, "sync", "--endpoint-url", ep, "--state-dir", t.TempDir(), "--no-status",
			"--input-table", src, "--output-table", dst, "--until-caught-up", "--output", "json")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		res := oneResult(t, stdout)
		e := res.Entries[0]
		count := int64(countItems(t, c, dst))
		if res.Command != "sync" || e.Phase != "complete" || e.ItemsWritten != n || count != n || e.Error != "" {
			t.Errorf("result %+v; output holds %d items, want %d", res, count, n)
		}
	})

	t.Run("stream", func(t *testing.T) {
		src, dst := ddbtest.Name(t, "oj-tsrc"), ddbtest.Name(t, "oj-tdst")
		ddbtest.CreateTable(t, c, src, ddbtest.KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeS, Stream: types.StreamViewTypeNewAndOldImages})
		ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
		const m = 150
		putN(t, c, src, 0, m)
		code, stdout, stderr := runBin(t, bin, "stream", "--endpoint-url", ep, "--state-dir", t.TempDir(), "--no-status",
			"--input-table", src, "--output-table", dst, "--until-caught-up", "--output", "json")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		res := oneResult(t, stdout)
		e := res.Entries[0]
		count := int64(countItems(t, c, dst))
		if res.Command != "stream" || e.Phase != "complete" || e.RecordsRead != m || e.RecordsApplied != m || count != m ||
			e.ItemsWritten != 0 || e.Error != "" {
			t.Errorf("result %+v; output holds %d items, want %d", res, count, m)
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		src, dst := ddbtest.Name(t, "oj-isrc"), ddbtest.Name(t, "oj-idst")
		ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
		ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
		putN(t, c, src, 0, 2000)
		p := start(t, bin, "backfill", "backfill", "--endpoint-url", ep, "--state-dir", t.TempDir(), "--no-status",
			"--input-table", src, "--output-table", dst, "--max-wcu", "100", "--output", "json")
		poll(t, time.Minute, "the copy to begin", func() bool { return countItems(t, c, dst) > 0 })
		p.signal(t, syscall.SIGINT)
		if code := p.wait(t, time.Minute); code != 130 {
			t.Fatalf("exit %d, want 130", code)
		}
		res := oneResult(t, p.out.String())
		e := res.Entries[0]
		if e.Phase != "stopped" || e.ItemsWritten <= 0 || e.ItemsWritten >= 2000 || e.Error != "" {
			t.Errorf("result %+v, want phase stopped with part of the items written", res)
		}
	})
}
