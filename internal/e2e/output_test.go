package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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

func tableExists(t *testing.T, c *dynamodb.Client, name string) bool {
	t.Helper()
	_, err := c.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var nf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		t.Fatalf("describe %s: %v", name, err)
	}
	return err == nil
}

// snapshotDir lists the files under dir with their sizes and times.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %s\n", path, fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
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

	// items_filtered counts the items the filter left out (part of
	// items_skipped); records_failed the stream records the program
	// failed on, left out with --skip-failed-items.
	t.Run("filtered and failed", func(t *testing.T) {
		src, dst := ddbtest.Name(t, "oj-psrc"), ddbtest.Name(t, "oj-pdst")
		ddbtest.CreateTable(t, c, src, ddbtest.KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeS, Stream: types.StreamViewTypeNewAndOldImages})
		ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
		const m = 100
		putN(t, c, src, 0, m)
		code, stdout, stderr := runBin(t, bin, "backfill", "--endpoint-url", ep, "--state-dir", t.TempDir(), "--no-status",
			"--input-table", src, "--output-table", dst, "--filter", "item.v % 10 != 0", "--output", "json")
		if code != 0 {
			t.Fatalf("backfill: exit %d\n%s\n%s", code, stdout, stderr)
		}
		e := oneResult(t, stdout).Entries[0]
		if e.ItemsRead != m || e.ItemsFiltered != m/10 || e.ItemsSkipped != m/10 || e.ItemsWritten != m-m/10 || e.RecordsFailed != 0 {
			t.Errorf("backfill result %s", stdout)
		}
		// Division by zero on every fifth item: a failed record each.
		dst2 := ddbtest.Name(t, "oj-pdst2")
		ddbtest.CreateTable(t, c, dst2, ddbtest.StringKey)
		code, stdout, stderr = runBin(t, bin, "stream", "--endpoint-url", ep, "--state-dir", t.TempDir(), "--no-status",
			"--input-table", src, "--output-table", dst2, "--filter", "100 / (item.v % 5) > 0", "--skip-failed-items",
			"--until-caught-up", "--output", "json")
		if code != 0 {
			t.Fatalf("stream: exit %d\n%s\n%s", code, stdout, stderr)
		}
		e = oneResult(t, stdout).Entries[0]
		// The failed records are in records_applied too: their batches
		// were applied and checkpointed without them (docs/usage.md).
		if e.RecordsRead != m || e.RecordsFailed != m/5 || e.RecordsApplied != m || e.ItemsFiltered != 0 {
			t.Errorf("stream result %s", stdout)
		}
		if got := countItems(t, c, dst2); got != m-m/5 {
			t.Errorf("stream output holds %d items, want %d", got, m-m/5)
		}
	})

	t.Run("failed", func(t *testing.T) {
		src, dst := ddbtest.Name(t, "oj-fsrc"), ddbtest.Name(t, "oj-fdst")
		ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
		ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
		putN(t, c, src, 0, 40)
		// A filter that fails on every item (no such attribute): every
		// item is a failed item, and the run fails once it started.
		code, stdout, stderr := runBin(t, bin, "backfill", "--endpoint-url", ep, "--state-dir", t.TempDir(), "--no-status",
			"--input-table", src, "--output-table", dst, "--filter", "item.missing.x == 1", "--output", "json")
		if code != 3 {
			t.Fatalf("exit %d, want 3\n%s\n%s", code, stdout, stderr)
		}
		e := oneResult(t, stdout).Entries[0]
		if e.Phase != "failed" || e.ItemsRead != 40 || e.ItemsFailed != 40 || e.ItemsWritten != 0 || !strings.Contains(e.Error, "40 items failed") {
			t.Errorf("result %s", stdout)
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		src, dst := ddbtest.Name(t, "oj-isrc"), ddbtest.Name(t, "oj-idst")
		ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
		ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
		putN(t, c, src, 0, 2000)
		p := start(t, bin, "backfill", "backfill", "--endpoint-url", ep, "--state-dir", t.TempDir(), "--no-status",
			"--input-table", src, "--output-table", dst, "--max-wcu", "100", "--output", "json")
		// A few batches in, so that the counters have seen some of them.
		poll(t, time.Minute, "the copy to begin", func() bool { return countItems(t, c, dst) >= 100 })
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

// --dry-run: every check, nothing written, and an estimate whose item
// count is the table's; a refused dry run exits 2.
func testDryRun(t *testing.T, bin string) {
	c, _ := ddbtest.Clients(t)
	ep := ddbtest.Endpoint(t)
	const n = 400
	src := ddbtest.Name(t, "dr-src")
	ddbtest.CreateTable(t, c, src, ddbtest.KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeS, Stream: types.StreamViewTypeNewImage})
	putN(t, c, src, 0, n)
	missing, ckpt := ddbtest.Name(t, "dr-out"), ddbtest.Name(t, "dr-ckpt")
	dropTable(t, c, missing)
	dropTable(t, c, ckpt)
	srcItems := int64(countItems(t, c, src))

	// checkNothing fails when the dry run left a trace.
	checkNothing := func(t *testing.T, stateDir string) {
		t.Helper()
		if tableExists(t, c, missing) {
			t.Errorf("the dry run created the output table %s", missing)
		}
		if tableExists(t, c, ckpt) {
			t.Errorf("the dry run created the checkpoint table %s", ckpt)
		}
		if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
			t.Errorf("the dry run created the state directory %s (%v)", stateDir, err)
		}
	}

	for _, command := range []string{"backfill", "sync"} {
		t.Run(command+" json", func(t *testing.T) {
			stateDir := filepath.Join(t.TempDir(), "state")
			code, stdout, stderr := runBin(t, bin, command, "--endpoint-url", ep, "--state-dir", stateDir,
				"--input-table", src, "--output-table", missing, "--create-output-table", "--max-wcu", "10",
				"--dry-run", "--output", "json")
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			checkNothing(t, stateDir)
			res := oneResult(t, stdout)
			e := res.Entries[0]
			est := e.Estimate
			if !res.DryRun || e.Phase != "would-start" || est == nil || est.Backfill == nil {
				t.Fatalf("result %s", stdout)
			}
			if est.Items != srcItems || est.Items != n || est.OutputExists || !est.CreateOutputTable || !strings.Contains(est.OutputKeySchema, "pk (S") {
				t.Errorf("estimate %+v, want %d items and the output to be created", est, n)
			}
			bf := est.Backfill
			// 400 items of about 90 bytes: 1 WCU each, 400 WCU; ~36 kB
			// scanned: 9 pages of 4 KB, 4.5 RCU; 40 s at 10 WCU/s.
			wantRCU := float64((est.Bytes+4095)/4096) / 2
			if bf.TotalSegments != 4 || bf.Segments != 4 || bf.Parallel != 4 || bf.Writers != 16 || bf.ItemsToCopy != n ||
				bf.WriteUnits != n || bf.ReadUnits != wantRCU || bf.DurationSeconds == nil || *bf.DurationSeconds != n/10 {
				t.Errorf("backfill estimate %+v", bf)
			}
			if command == "sync" && (est.Stream == nil || est.Stream.Shards < 1 || est.Stream.ViewType != "NEW_IMAGE" || est.Stream.Checkpoints != 0) {
				t.Errorf("stream estimate %+v", est.Stream)
			}
		})
	}

	t.Run("text with a checkpoint table", func(t *testing.T) {
		stateDir := filepath.Join(t.TempDir(), "state")
		code, stdout, stderr := runBin(t, bin, "backfill", "--endpoint-url", ep, "--state-dir", stateDir,
			"--input-table", src, "--output-table", missing, "--create-output-table", "--checkpoint-table", ckpt, "--dry-run")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		checkNothing(t, stateDir)
		for _, want := range []string{
			"checkpoint table " + ckpt + " does not exist: a run would create it",
			"a run would start",
			fmt.Sprintf("~%d items", n),
			"--create-output-table would create it with the key pk (S, partition key)",
			"duration: unbounded",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})

	t.Run("stream", func(t *testing.T) {
		dst := ddbtest.Name(t, "dr-sdst")
		ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
		stateDir := filepath.Join(t.TempDir(), "state")
		code, stdout, stderr := runBin(t, bin, "stream", "--endpoint-url", ep, "--state-dir", stateDir,
			"--input-table", src, "--output-table", dst, "--dry-run", "--output", "json")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		checkNothing(t, stateDir)
		est := oneResult(t, stdout).Entries[0].Estimate
		if est == nil || est.Stream == nil || est.Stream.OpenShards < 1 || est.Stream.Checkpoints != 0 ||
			!strings.Contains(est.Stream.StartPosition, "TRIM_HORIZON") || est.Backfill != nil {
			t.Errorf("estimate %s", stdout)
		}
		if n := countItems(t, c, dst); n != 0 {
			t.Errorf("the dry run wrote %d items", n)
		}
	})

	t.Run("after a copy", func(t *testing.T) {
		dst := ddbtest.Name(t, "dr-done")
		ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
		stateDir := filepath.Join(t.TempDir(), "state")
		args := []string{"backfill", "--endpoint-url", ep, "--state-dir", stateDir, "--input-table", src, "--output-table", dst}
		if code, stdout, stderr := runBin(t, bin, args...); code != 0 {
			t.Fatalf("copy: exit %d\n%s\n%s", code, stdout, stderr)
		}
		before := snapshotDir(t, stateDir)
		code, stdout, stderr := runBin(t, bin, append(args, "--dry-run", "--output", "json")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		bf := oneResult(t, stdout).Entries[0].Estimate.Backfill
		if bf == nil || !bf.AlreadyComplete || bf.SegmentsDone != 4 || bf.ItemsToCopy != 0 || bf.WriteUnits != 0 {
			t.Errorf("estimate after a complete copy: %s", stdout)
		}
		// The checkpoints are read and compared: another total is refused.
		code, stdout, _ = runBin(t, bin, append(args, "--dry-run", "--output", "json", "--backfill-total-segments", "6")...)
		if e := oneResult(t, stdout).Entries[0]; code != 2 || e.Phase != "refused" || !strings.Contains(e.Error, "made with 4 total segments") {
			t.Errorf("another total: exit %d, %s", code, stdout)
		}
		if after := snapshotDir(t, stateDir); after != before {
			t.Errorf("the dry runs changed the state directory:\n%s\nwas:\n%s", after, before)
		}
	})

	// The filter and transform are compiled and shown; with a filter the
	// copy's items and write units are upper bounds. The filter is a
	// plain equality, the kind also passed to Scan.
	t.Run("filter and transform", func(t *testing.T) {
		tf := filepath.Join(t.TempDir(), "t.yml")
		if err := os.WriteFile(tf, []byte("set:\n  id2: '\"T#\" + item.pk'\ndrop: [\"tmp*\"]\nrename:\n  n: number\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		stateDir := filepath.Join(t.TempDir(), "state")
		args := []string{"sync", "--endpoint-url", ep, "--state-dir", stateDir, "--input-table", src, "--output-table", missing,
			"--create-output-table", "--filter", `item.pk == "k1"`, "--transform", tf, "--dry-run"}
		code, stdout, stderr := runBin(t, bin, append(args, "--output", "json")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		checkNothing(t, stateDir)
		est := oneResult(t, stdout).Entries[0].Estimate
		if est == nil || est.Filter != `item.pk == "k1"` || !est.UpperBound || est.Transform == nil ||
			est.Transform.Set["id2"] != `"T#" + item.pk` || strings.Join(est.Transform.Drop, ",") != "tmp*" || est.Transform.Rename["n"] != "number" {
			t.Fatalf("estimate %s", stdout)
		}
		if est.Backfill.ItemsToCopy != n || est.Backfill.WriteUnits != n {
			t.Errorf("the upper bound is the whole table (%d items): %+v", n, est.Backfill)
		}
		code, stdout, stderr = runBin(t, bin, args...)
		if code != 0 {
			t.Fatalf("text: exit %d\n%s\n%s", code, stdout, stderr)
		}
		for _, want := range []string{`filter:   item.pk == "k1"`, `transform: drop tmp*; rename n → number; set id2 = "T#" + item.pk`,
			fmt.Sprintf("at most ~%d items to copy", n), "upper bounds: the whole table is counted"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
		checkNothing(t, stateDir)
	})

	// A bad expression refuses a dry run as it refuses a run: exit 2,
	// naming the expression and the position, before any table is read.
	t.Run("bad expression", func(t *testing.T) {
		for _, command := range []string{"backfill", "stream", "sync"} {
			stateDir := filepath.Join(t.TempDir(), "state")
			code, stdout, stderr := runBin(t, bin, command, "--endpoint-url", ep, "--state-dir", stateDir,
				"--input-table", src, "--output-table", missing, "--filter", "item.pk ==", "--dry-run", "--output", "json")
			if code != 2 || !strings.Contains(stderr, "filter 1:") || !strings.Contains(stderr, `"item.pk =="`) {
				t.Errorf("%s: exit %d, want 2 naming the filter and position\n%s\n%s", command, code, stdout, stderr)
			}
			checkNothing(t, stateDir)
		}
	})

	t.Run("refused", func(t *testing.T) {
		noStream := ddbtest.Name(t, "dr-nostream")
		ddbtest.CreateTable(t, c, noStream, ddbtest.StringKey)
		for _, args := range [][]string{
			{"backfill", "--input-table", src, "--output-table", missing},
			{"stream", "--input-table", noStream, "--output-table", src},
			{"sync", "--input-table", noStream, "--output-table", missing, "--create-output-table"},
		} {
			stateDir := filepath.Join(t.TempDir(), "state")
			all := append(args, "--endpoint-url", ep, "--state-dir", stateDir, "--dry-run", "--output", "json")
			code, stdout, stderr := runBin(t, bin, all...)
			if code != 2 {
				t.Errorf("%v: exit %d, want 2\n%s\n%s", args, code, stdout, stderr)
				continue
			}
			checkNothing(t, stateDir)
			e := oneResult(t, stdout).Entries[0]
			if e.Phase != "refused" || e.Error == "" || e.Estimate != nil {
				t.Errorf("%v: result %s", args, stdout)
			}
		}
	})
}

// A rate-limited copy logs, off a terminal, progress lines with the
// percentage of the approximate item count and the time left.
func testETA(t *testing.T, bin string) {
	c, _ := ddbtest.Clients(t)
	src, dst := ddbtest.Name(t, "eta-src"), ddbtest.Name(t, "eta-dst")
	ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	putN(t, c, src, 0, 600)
	code, stdout, stderr := runBin(t, bin, "backfill", "--endpoint-url", ddbtest.Endpoint(t), "--state-dir", t.TempDir(),
		"--input-table", src, "--output-table", dst, "--max-wcu", "100", "--progress-interval", "1s")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	// 600 items at 100 WCU/s: about 6 s, so several progress blocks, the
	// later ones with a rate and so a time left.
	re := regexp.MustCompile(`backfill running, [\d,]+ items written of ~600 \((\d+)%\), (~?\S+) left`)
	ms := re.FindAllStringSubmatch(stdout, -1)
	if len(ms) == 0 {
		t.Fatalf("no progress line with a percentage and a time left:\n%s", stdout)
	}
	withTime := 0
	for _, m := range ms {
		if pct, _ := strconv.Atoi(m[1]); pct > 100 {
			t.Errorf("percent over 100 in %q", m[0])
		}
		switch m[2] {
		case "—": // no rate yet
		case "<1s":
			withTime++
		default:
			d, err := time.ParseDuration(strings.TrimPrefix(m[2], "~"))
			if err != nil || d < 0 || d > time.Minute {
				t.Errorf("time left %q in %q: want a duration under a minute", m[2], m[0])
			}
			withTime++
		}
	}
	if withTime == 0 {
		t.Errorf("no progress line had a time left:\n%s", strings.Join(lines(ms), "\n"))
	}
}

func lines(ms [][]string) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m[0])
	}
	return out
}
