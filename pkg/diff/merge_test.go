package diff_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/faultproxy"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/diff"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// A table larger than a deliberately tiny memory limit spills every page
// to disk and still reports exact counts; the spill files are removed at
// the end.
func TestMergeSpillsPastTheMemoryLimit(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 1000)
	spill := t.TempDir()
	core, logs := observer.New(zap.InfoLevel)
	res := run(t, diff.Config{
		Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, c)},
		Method: diff.MethodMerge, MemoryLimit: 4096, StateDir: spill, TotalSegments: 2, PageSize: 100,
		ScanForExtra: true, Logger: zap.New(core),
	})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{
		Scanned: 1000, Matching: int64(1000 - sc.missing - sc.differing),
		Missing: int64(sc.missing), Differing: int64(sc.differing), Extra: int64(sc.extra),
		Method: diff.MethodMerge,
	})
	if logs.FilterMessageSnippet("spilling").Len() != 1 {
		t.Fatalf("no spill logged: %v", logs.All())
	}
	left, err := os.ReadDir(spill)
	if err != nil || len(left) != 0 {
		t.Fatalf("spill directory after the run: %v (%v)", left, err)
	}
}

// Items changed while the tables are scanned (a writer changes, inserts
// and deletes items in the master and then the slave, as a replication
// would, throughout the scans) are candidates at most: once the writer
// has stopped and the tables are equal, nothing is reported.
func TestMergeWriterDuringScans(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	m, sl := ddbtest.Name(t, "w-m"), ddbtest.Name(t, "w-s")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sl, ddbtest.StringKey)
	var items []map[string]av
	for i := range 400 {
		items = append(items, genItem(i))
	}
	ddbtest.PutItems(t, c, m, items)
	ddbtest.PutItems(t, c, sl, items)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var writes sync.WaitGroup
	var pairs int
	first := make(chan struct{})
	writes.Add(1)
	go func() {
		defer writes.Done()
		for i := 0; ctx.Err() == nil; i++ {
			// One change, applied to both tables in turn: an update, an
			// insert or a delete.
			k := (i * 38) % 400 // even keys; the scan hook below changes odd ones
			var put map[string]av
			var del map[string]av
			switch i % 3 {
			case 0:
				put = genItem(k)
				put["name"] = s(fmt.Sprintf("v%d", i))
			case 1:
				put = genItem(k)
				put["pk"] = s(fmt.Sprintf("new-%05d", i))
			default:
				del = map[string]av{"pk": s(fmt.Sprintf("item-%05d", k))}
			}
			for _, tbl := range []string{m, sl} {
				var err error
				if put != nil {
					_, err = c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(tbl), Item: put})
				} else {
					_, err = c.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(tbl), Key: del})
				}
				if err != nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
			pairs++
			if pairs == 1 {
				close(first)
			}
		}
	}()
	<-first
	// The writer stops before the first consistent read (the scans are
	// over then) and finishes the change it is making.
	var once sync.Once
	halt := func() { once.Do(func() { stop(); writes.Wait() }) }
	hook := func(ctx context.Context, in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
		for _, ka := range in.RequestItems {
			if aws.ToBool(ka.ConsistentRead) {
				halt()
			}
		}
		return c.BatchGetItem(ctx, in)
	}
	// Besides, after each page of the master scan, the first odd-keyed
	// item of the page is changed in both tables, and the slave is scanned
	// only once the master scan is done: every such change makes a
	// candidate (the master scan saw the old item, the slave scan the new).
	var mu sync.Mutex
	hooked, segsDone := 0, 0
	masterDone := make(chan struct{})
	master := &hookClient{Client: c, batchGet: hook}
	master.scan = func(ctx context.Context, in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
		out, err := c.Scan(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, it := range out.Items {
			var k int
			if _, err := fmt.Sscanf(it["pk"].(*types.AttributeValueMemberS).Value, "item-%d", &k); err != nil || k%2 == 0 {
				continue
			}
			ch := clone(it)
			ch["name"] = s("changed during the scan")
			for _, tbl := range []string{m, sl} {
				if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tbl), Item: ch}); err != nil {
					return nil, err
				}
			}
			mu.Lock()
			hooked++
			mu.Unlock()
			break
		}
		if len(out.LastEvaluatedKey) == 0 {
			mu.Lock()
			if segsDone++; segsDone == 2 {
				close(masterDone)
			}
			mu.Unlock()
		}
		return out, nil
	}
	slave := &hookClient{Client: c, batchGet: hook}
	slave.scan = func(ctx context.Context, in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
		select {
		case <-masterDone:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return c.Scan(ctx, in)
	}
	res := run(t, diff.Config{
		Master: table(m, master), Slaves: []diff.Table{table(sl, slave)},
		Method: diff.MethodMerge, TotalSegments: 2, PageSize: 20, ScanForExtra: true,
	})
	halt()
	r := res.Slaves[0]
	if r.Missing+r.Differing+r.Extra != 0 || res.Remaining() != 0 {
		t.Fatalf("differences reported for items changed during the scans: %+v", r)
	}
	if pairs == 0 || hooked == 0 {
		t.Fatalf("the writer made %d changes, the scan hook %d", pairs, hooked)
	}
	if r.CandidatesResolved < int64(hooked) {
		t.Fatalf("%d candidates resolved; the %d items changed between the scans must each be one", r.CandidatesResolved, hooked)
	}
	t.Logf("%d changes by the writer, %d between the scans, %d candidates resolved", pairs, hooked, r.CandidatesResolved)
	ddbtest.AssertSameItems(t, c, m, sl, "pk", "")
}

// UnprocessedKeys in the confirming reads (through the fault proxy) are
// asked for again: the counts stay exact.
func TestMergeUnprocessedKeysInConfirmingReads(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 400)
	p, err := faultproxy.New(faultproxy.Options{
		Upstream: ddbtest.Endpoint(t), Seed: 11,
		Rules: []faultproxy.Rule{{Op: "BatchGetItem", Kind: faultproxy.UnprocessedKeys, Rate: 0.7}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t.Logf("fault proxy: %s", p.Summary())
		p.Close()
	})
	prov := creds.New(creds.Options{EndpointURL: p.URL, MaxRetries: 5, RetryBase: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	pc, err := prov.For(context.Background(), plan.Table{Region: ddbtest.Region})
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, diff.Config{
		Master: table(sc.master, pc.DynamoDB), Slaves: []diff.Table{table(sc.slave, pc.DynamoDB)},
		Method: diff.MethodMerge, ScanForExtra: true, WriteMissing: true, BatchReadLimit: 10, Backoff: fastBackoff,
	})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{
		Scanned: 400, Matching: int64(400 - sc.missing - sc.differing),
		Missing: int64(sc.missing), Differing: int64(sc.differing), Extra: int64(sc.extra), Written: int64(sc.missing),
		Method: diff.MethodMerge,
	})
	if n := p.Count("BatchGetItem", faultproxy.UnprocessedKeys); n == 0 {
		t.Fatal("the proxy left no keys unprocessed")
	}
}

// Without a method, the cheaper one is chosen from the table sizes and
// the log shows both estimates.
func TestMethodChosenAndLogged(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	m, sl := ddbtest.Name(t, "auto-m"), ddbtest.Name(t, "auto-s")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sl, ddbtest.StringKey)
	items := []map[string]av{genItem(1), genItem(2)}
	ddbtest.PutItems(t, c, m, items)
	ddbtest.PutItems(t, c, sl, items)
	core, logs := observer.New(zap.InfoLevel)
	d, err := diff.Check(context.Background(), diff.Config{Master: table(m, c), Slaves: []diff.Table{table(sl, c)}, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Slaves[0].Method != diff.MethodMerge {
		t.Fatalf("method %q for two tables of the same size, want merge", res.Slaves[0].Method)
	}
	l := logs.FilterMessageSnippet("estimated reads").All()
	if len(l) != 1 || !strings.Contains(l[0].Message, "method merge (chosen)") || !strings.Contains(l[0].Message, "lookup") {
		t.Fatalf("choice log: %v", l)
	}
	_, err = diff.Check(context.Background(), diff.Config{Master: table(m, c), Slaves: []diff.Table{table(sl, c)}, Method: diff.MethodMerge, StartingKey: map[string]av{"pk": s("x")}})
	if err == nil || !strings.Contains(err.Error(), "merge") {
		t.Fatalf("a starting key with the merge method: err = %v", err)
	}
}

// A merge diff stopped half-way (as by SIGKILL: nothing is done at the
// stop, the last checkpoint is all there is) and run again with the same
// state directory reports exactly what an uninterrupted run reports, and
// reads again at most a page per segment of what the first run read.
func TestMergeResumesAfterKill(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 1500)
	const page, segs = 50, 2
	cfg := func(m, s diff.Client, state string, rep *bytes.Buffer) diff.Config {
		return diff.Config{
			Master: table(sc.master, m), Slaves: []diff.Table{table(sc.slave, s)},
			Method: diff.MethodMerge, TotalSegments: segs, PageSize: page, ScanForExtra: true, StateDir: state, Report: rep,
		}
	}
	// The uninterrupted run.
	var want bytes.Buffer
	full := run(t, cfg(c, c, t.TempDir(), &want))

	// The run that is stopped after 12 pages.
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	pages, read := 0, 0
	counting := func(stopAt int) func(ctx context.Context, in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
		return func(ctx context.Context, in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
			mu.Lock()
			if stopAt > 0 && pages >= stopAt {
				mu.Unlock()
				cancel()
				<-ctx.Done()
				return nil, ctx.Err()
			}
			mu.Unlock()
			out, err := c.Scan(ctx, in)
			if err == nil {
				mu.Lock()
				pages++
				read += len(out.Items)
				mu.Unlock()
			}
			return out, err
		}
	}
	hm, hs := &hookClient{Client: c}, &hookClient{Client: c}
	hm.scan, hs.scan = counting(12), counting(12)
	d, err := diff.Check(ctx, cfg(hm, hs, state, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run: err = %v", err)
	}
	firstRead := read
	// A write after the last checkpoint (the kill came between the two):
	// the resumed run must drop it.
	dirs, _ := filepath.Glob(filepath.Join(state, "diff-*", "t00-p0000.spill"))
	for _, f := range dirs {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fh.Write([]byte("\x05garbage-after-the-checkpoint"))
		fh.Close()
	}

	// The resumed run.
	mu.Lock()
	pages, read = 0, 0
	mu.Unlock()
	hm, hs = &hookClient{Client: c}, &hookClient{Client: c}
	hm.scan, hs.scan = counting(0), counting(0)
	var got bytes.Buffer
	rest := run(t, cfg(hm, hs, state, &got))
	want0 := full.Slaves[0]
	want0.ConsumedRCU, want0.ConsumedWCU, want0.Retries, want0.Throttles = 0, 0, 0, 0
	wantCounts(t, rest.Slaves[0], want0)
	total := 1500 + (1500 - sc.missing + sc.extra)
	if firstRead == 0 || read >= total {
		t.Fatalf("the stopped run read %d items, the resumed one %d of %d: nothing was resumed", firstRead, read, total)
	}
	if slack := 2 * segs * page; read > total-firstRead+slack {
		t.Fatalf("the resumed run read %d items; %d were left after the %d read before the stop (a page per segment allowed: %d)", read, total-firstRead, firstRead, slack)
	}
	t.Logf("read %d items before the stop, %d after; %d in all", firstRead, read, total)
	if a, b := sortedLines(want.String()), sortedLines(got.String()); a != b {
		t.Fatalf("reports differ:\nuninterrupted:\n%s\nresumed:\n%s", a, b)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "diff-*")); len(left) != 0 {
		t.Fatalf("state left after the finished run: %v", left)
	}
}

func sortedLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}
