package diff_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/diff"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// The benchmark scenario with exact expected counts, as a dry run that
// must write nothing.
func TestScenarioDryRunCounts(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 3000)
	for _, par := range []int{1, 4} {
		t.Run(fmt.Sprintf("parallel=%d", par), func(t *testing.T) {
			var rep bytes.Buffer
			slave := &hookClient{Client: c}
			res := run(t, diff.Config{
				Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, slave)},
				TotalSegments: par, ScanForExtra: true, Report: &rep, Verbose: true,
			})
			if len(res.Slaves) != 1 {
				t.Fatalf("slaves = %d", len(res.Slaves))
			}
			wantCounts(t, res.Slaves[0], diff.SlaveResult{
				Scanned: 3000, Matching: int64(3000 - sc.missing - sc.differing),
				Missing: int64(sc.missing), Differing: int64(sc.differing), Extra: int64(sc.extra),
			})
			if sc.missing != 30 || sc.differing != 30 || sc.extra != 30 {
				t.Fatalf("scenario is %d/%d/%d, want 30 each", sc.missing, sc.differing, sc.extra)
			}
			if res.Remaining() != 90 {
				t.Fatalf("remaining = %d, want 90", res.Remaining())
			}
			if slave.puts+slave.dels != 0 {
				t.Fatalf("dry run wrote: %d puts, %d deletes", slave.puts, slave.dels)
			}
			kinds := map[string]int{}
			for _, l := range reportLines(t, &rep) {
				kinds[l["kind"].(string)]++
				if l["slave"] != ddbtest.Region+":"+sc.slave {
					t.Fatalf("report slave = %v", l["slave"])
				}
				if l["action"] != "none" {
					t.Fatalf("report action = %v in a dry run", l["action"])
				}
				if l["kind"] == "differing" {
					if fmt.Sprint(l["attributes"]) != "[name]" {
						t.Fatalf("differing attributes = %v, want [name]", l["attributes"])
					}
				}
				key, ok := l["key"].(map[string]any)
				if !ok || key["pk"] == nil {
					t.Fatalf("report key = %v", l["key"])
				}
			}
			if kinds["missing"] != 30 || kinds["differing"] != 30 || kinds["extra"] != 30 {
				t.Fatalf("report kinds = %v", kinds)
			}
			if n := len(ddbtest.ScanAll(t, c, sc.slave)); n != 3000 {
				t.Fatalf("slave holds %d items after a dry run, want 3000", n)
			}
			if res.Slaves[0].ConsumedRCU <= 0 {
				t.Fatalf("consumed RCU not recorded")
			}
		})
	}
}

// After a repair with all three flags, a second dry run finds nothing and
// the tables hold the same items.
func TestRepairThenInSync(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 2000)
	st := newEntry(sc)
	res := run(t, diff.Config{
		Master: table(sc.master, c), Slaves: []diff.Table{{Name: sc.slave, Label: sc.slave, Client: c, Stats: st}},
		TotalSegments: 4, WriteMissing: true, WriteDiffering: true, DeleteExtra: true,
	})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{
		Scanned: 2000, Matching: int64(2000 - sc.missing - sc.differing),
		Missing: int64(sc.missing), Differing: int64(sc.differing), Extra: int64(sc.extra),
		Written: int64(sc.missing + sc.differing), Deleted: int64(sc.extra),
	})
	if res.Remaining() != 0 {
		t.Fatalf("remaining = %d after repair", res.Remaining())
	}
	if st.Repaired.Load() != int64(sc.missing+sc.differing) || st.ConsumedWCU.Load() <= 0 {
		t.Fatalf("stats entry: repaired %d, WCU %v", st.Repaired.Load(), st.ConsumedWCU.Load())
	}
	again := run(t, diff.Config{Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, c)}, ScanForExtra: true})
	wantCounts(t, again.Slaves[0], diff.SlaveResult{Scanned: 2000, Matching: 2000})
	ddbtest.AssertSameItems(t, c, sc.master, sc.slave, "pk", "")
}

// A writer that changes the slave between diff's read and its repair
// write never has its change overwritten: the write is skipped.
func TestConcurrentChangeIsNeverOverwritten(t *testing.T) {
	for _, version := range []string{"", "n"} {
		t.Run("version="+version, func(t *testing.T) {
			c, _ := ddbtest.Clients(t)
			sc := newScenario(t, c, 300)
			ctx := context.Background()
			var mu sync.Mutex
			changed := map[string]bool{}
			// The concurrent writer: just before diff's write reaches the
			// slave, someone else writes the same item.
			interfere := func(key string, put bool) {
				mu.Lock()
				defer mu.Unlock()
				if changed[key] {
					return
				}
				changed[key] = true
				it := genItem(0)
				it["pk"] = s(key)
				it["name"] = s("concurrent")
				it["n"] = n("999999") // a newer version too
				if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(sc.slave), Item: it}); err != nil {
					t.Errorf("concurrent put: %v", err)
				}
			}
			slave := &hookClient{Client: c,
				beforePut: func(in *dynamodb.PutItemInput) {
					interfere(in.Item["pk"].(*types.AttributeValueMemberS).Value, true)
				},
				beforeDel: func(in *dynamodb.DeleteItemInput) {
					interfere(in.Key["pk"].(*types.AttributeValueMemberS).Value, false)
				},
			}
			var rep bytes.Buffer
			res := run(t, diff.Config{
				Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, slave)},
				WriteMissing: true, WriteDiffering: true, DeleteExtra: true, VersionAttribute: version, Report: &rep,
			})
			r := res.Slaves[0]
			all := int64(sc.missing + sc.differing + sc.extra)
			if r.Skipped != all || r.Written != 0 || r.Deleted != 0 || r.Errors != 0 {
				t.Fatalf("got %+v, want every one of %d repairs skipped", r, all)
			}
			if slave.puts+slave.dels != int(all) {
				t.Fatalf("%d writes attempted, want %d", slave.puts+slave.dels, all)
			}
			for _, it := range ddbtest.ScanAll(t, c, sc.slave) {
				key := it["pk"].(*types.AttributeValueMemberS).Value
				if changed[key] && it["name"].(*types.AttributeValueMemberS).Value != "concurrent" {
					t.Fatalf("item %s: the concurrent change was overwritten: %v", key, it["name"])
				}
			}
			skipped := 0
			for _, l := range reportLines(t, &rep) {
				if l["action"] == "skipped" {
					skipped++
				}
			}
			if skipped != int(all) {
				t.Fatalf("report has %d skipped lines, want %d", skipped, all)
			}
		})
	}
}

// With --version-attribute, an older master version never replaces a
// newer slave one; a newer master version does.
func TestVersionAttribute(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	m, sl := ddbtest.Name(t, "ver-m"), ddbtest.Name(t, "ver-s")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sl, ddbtest.StringKey)
	ddbtest.PutItems(t, c, m, []map[string]av{
		{"pk": s("older"), "v": n("1"), "x": s("master")},
		{"pk": s("newer"), "v": n("10036651427894288409"), "x": s("master")},
	})
	ddbtest.PutItems(t, c, sl, []map[string]av{
		{"pk": s("older"), "v": n("2"), "x": s("slave")},
		{"pk": s("newer"), "v": n("10036651427894288408"), "x": s("slave")},
	})
	res := run(t, diff.Config{Master: table(m, c), Slaves: []diff.Table{table(sl, c)}, WriteDiffering: true, VersionAttribute: "v"})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 2, Differing: 2, Written: 1, Skipped: 1})
	got := map[string]string{}
	for _, it := range ddbtest.ScanAll(t, c, sl) {
		got[it["pk"].(*types.AttributeValueMemberS).Value] = it["x"].(*types.AttributeValueMemberS).Value
	}
	if got["older"] != "slave" || got["newer"] != "master" {
		t.Fatalf("slave after repair: %v", got)
	}
}

// UnprocessedKeys are asked for again until answered.
func TestUnprocessedKeysAreRetried(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 500)
	var mu sync.Mutex
	partial := 0
	slave := &hookClient{Client: c}
	slave.batchGet = func(ctx context.Context, in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
		ka := in.RequestItems[sc.slave]
		if len(ka.Keys) < 2 {
			return c.BatchGetItem(ctx, in)
		}
		// Answer only the first third; hand the rest back as unprocessed.
		k := len(ka.Keys) / 3
		first := ka
		first.Keys = ka.Keys[:k]
		out, err := c.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{sc.slave: first}})
		if err != nil {
			return nil, err
		}
		rest := ka
		rest.Keys = ka.Keys[k:]
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{sc.slave: rest}
		mu.Lock()
		partial++
		mu.Unlock()
		return out, nil
	}
	res := run(t, diff.Config{
		Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, slave)},
		BatchReadLimit: 100, Backoff: fastBackoff,
	})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{
		Scanned: 500, Matching: int64(500 - sc.missing - sc.differing), Missing: int64(sc.missing), Differing: int64(sc.differing),
	})
	if partial < 5 {
		t.Fatalf("only %d partial answers: the wrapper did not take effect", partial)
	}
}

// Slave items large enough that one BatchGetItem for a page of small
// master items exceeds the 16 MB response limit: the run must not fail.
func TestLargeItemsBatchGet(t *testing.T) {
	if testing.Short() {
		t.Skip("large items")
	}
	c, _ := ddbtest.Clients(t)
	m, sl := ddbtest.Name(t, "large-m"), ddbtest.Name(t, "large-s")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sl, ddbtest.StringKey)
	blob := strings.Repeat("z", 390*1024)
	var small, large []map[string]av
	for i := range 45 { // 45 × 390 KB ≈ 17.1 MB in one 45-key request
		small = append(small, map[string]av{"pk": s(fmt.Sprintf("big-%02d", i))})
		large = append(large, map[string]av{"pk": s(fmt.Sprintf("big-%02d", i)), "blob": s(blob)})
	}
	ddbtest.PutItems(t, c, m, small)
	for i := 0; i < len(large); i += 5 {
		ddbtest.PutItems(t, c, sl, large[i:i+5])
	}
	slave := &hookClient{Client: c}
	res := run(t, diff.Config{Master: table(m, c), Slaves: []diff.Table{table(sl, slave)}, BatchReadLimit: 100, Backoff: fastBackoff})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 45, Differing: 45})
	if slave.batchGets < 2 {
		t.Fatalf("%d BatchGetItem calls: the response limit was not reached", slave.batchGets)
	}
}

// Several slaves at once, each with its own differences and counters.
func TestSeveralSlaves(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 1000)
	other := ddbtest.Name(t, "diff-slave2")
	ddbtest.CreateTable(t, c, other, ddbtest.StringKey)
	var items []map[string]av
	for i := range 1000 {
		if i%250 == 7 {
			continue // 4 missing
		}
		items = append(items, genItem(i))
	}
	ddbtest.PutItems(t, c, other, items)
	res := run(t, diff.Config{
		Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, c), table(other, c)},
		TotalSegments: 2, WriteMissing: true, ScanForExtra: true,
	})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{
		Scanned: 1000, Matching: int64(1000 - sc.missing - sc.differing), Missing: int64(sc.missing),
		Differing: int64(sc.differing), Extra: int64(sc.extra), Written: int64(sc.missing),
	})
	wantCounts(t, res.Slaves[1], diff.SlaveResult{Scanned: 1000, Matching: 996, Missing: 4, Written: 4})
	if res.Slaves[1].Slave != ddbtest.Region+":"+other {
		t.Fatalf("second slave label %q", res.Slaves[1].Slave)
	}
	ddbtest.AssertSameItems(t, c, sc.master, other, "pk", "")
}

// --starting-key resumes a serial scan after the given key, and an
// interrupted run logs the key to resume from.
func TestStartingKeyResumes(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 1000)
	ctx := context.Background()
	first, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(sc.master), Limit: aws.Int32(300)})
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, diff.Config{Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, c)}, StartingKey: first.LastEvaluatedKey, PageSize: 100})
	if got := res.Slaves[0].Scanned; got != 700 {
		t.Fatalf("scanned %d after the starting key, want 700", got)
	}

	// Interrupt a run, then resume from the key it logged: together the two
	// runs check every item.
	core, logs := observer.New(zap.InfoLevel)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	calls := 0
	var mu sync.Mutex
	slave := &hookClient{Client: c}
	slave.batchGet = func(ctx context.Context, in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
		mu.Lock()
		calls++
		if calls == 8 {
			cancel()
		}
		mu.Unlock()
		return c.BatchGetItem(ctx, in)
	}
	d, err := diff.Check(ctx, diff.Config{
		Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, slave)},
		PageSize: 50, BatchReadLimit: 25, Checkers: 1, Logger: zap.New(core), ResumeLogEvery: -1, Method: diff.MethodLookup,
	})
	if err != nil {
		t.Fatal(err)
	}
	part, err := d.Run(cctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: err = %v", err)
	}
	var key string
	for _, e := range logs.All() {
		if _, after, ok := strings.Cut(e.Message, "resume with the starting key (StartingKey) '"); ok {
			key = strings.TrimSuffix(after, "'")
		}
	}
	if key == "" {
		t.Fatalf("no resume key logged; logs: %v", logs.All())
	}
	start, err := diff.ParseKeyJSON(key)
	if err != nil {
		t.Fatal(err)
	}
	rest := run(t, diff.Config{Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, c)}, StartingKey: start})
	checked := part.Slaves[0].Scanned + rest.Slaves[0].Scanned
	if checked < 1000 || part.Slaves[0].Scanned == 0 || part.Slaves[0].Scanned >= 1000 {
		t.Fatalf("interrupted run checked %d, resumed run %d: not every item of 1000 checked", part.Slaves[0].Scanned, rest.Slaves[0].Scanned)
	}
	missing := part.Slaves[0].Missing + rest.Slaves[0].Missing
	if missing < int64(sc.missing) {
		t.Fatalf("missing found over both runs = %d, want at least %d", missing, sc.missing)
	}
}

// Ignored attributes (names and globs) are left out of comparisons and
// kept as the slave has them when an item is repaired.
func TestIgnoredAttributes(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	m, sl := ddbtest.Name(t, "ign-m"), ddbtest.Name(t, "ign-s")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sl, ddbtest.StringKey)
	ddbtest.PutItems(t, c, m, []map[string]av{
		{"pk": s("a"), "x": s("1"), "aws:rep:updatetime": n("1"), "note": s("m")},
		{"pk": s("b"), "x": s("1"), "aws:rep:updateregion": s("us-east-1")},
	})
	ddbtest.PutItems(t, c, sl, []map[string]av{
		{"pk": s("a"), "x": s("1"), "aws:rep:updatetime": n("2"), "note": s("s")},
		{"pk": s("b"), "x": s("2"), "aws:rep:updateregion": s("eu-west-1")},
	})
	res := run(t, diff.Config{Master: table(m, c), Slaves: []diff.Table{table(sl, c)}})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 2, Differing: 2})

	var rep bytes.Buffer
	res = run(t, diff.Config{Master: table(m, c), Slaves: []diff.Table{table(sl, c)}, Ignore: []string{"aws:rep:*", "note"}, WriteDiffering: true, Report: &rep})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 2, Matching: 1, Differing: 1, Written: 1})
	if l := reportLines(t, &rep); len(l) != 1 || fmt.Sprint(l[0]["attributes"]) != "[x]" {
		t.Fatalf("report: %v", l)
	}
	for _, it := range ddbtest.ScanAll(t, c, sl) {
		if it["pk"].(*types.AttributeValueMemberS).Value == "b" {
			if it["x"].(*types.AttributeValueMemberS).Value != "1" || it["aws:rep:updateregion"].(*types.AttributeValueMemberS).Value != "eu-west-1" {
				t.Fatalf("repaired item b = %v: want x from the master and the slave's own ignored attribute", it)
			}
		}
	}
}

// Binary keys and number keys beyond 2^53 are matched exactly.
func TestBinaryAndBigNumberKeys(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	k := ddbtest.KeySpec{Hash: "id", HashType: types.ScalarAttributeTypeB, Range: "seq", RangeType: types.ScalarAttributeTypeN}
	m, sl := ddbtest.Name(t, "bin-m"), ddbtest.Name(t, "bin-s")
	ddbtest.CreateTable(t, c, m, k)
	ddbtest.CreateTable(t, c, sl, k)
	var mi, si []map[string]av
	for i := range 200 {
		for _, seq := range []string{"10036651427894288408", "10036651427894288409"} {
			it := map[string]av{"id": b([]byte{0, byte(i), 0xff}), "seq": n(seq), "v": n(fmt.Sprint(i))}
			mi = append(mi, it)
			if !(i%50 == 0 && strings.HasSuffix(seq, "9")) {
				si = append(si, it)
			}
		}
	}
	// one extra, differing only in the last digit of the big number key
	si = append(si, map[string]av{"id": b([]byte{0, 1, 0xff}), "seq": n("10036651427894288407"), "v": n("1")})
	ddbtest.PutItems(t, c, m, mi)
	ddbtest.PutItems(t, c, sl, si)
	res := run(t, diff.Config{Master: table(m, c), Slaves: []diff.Table{table(sl, c)}, TotalSegments: 3, WriteMissing: true, DeleteExtra: true})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 400, Matching: 396, Missing: 4, Extra: 1, Written: 4, Deleted: 1})
	ddbtest.AssertSameItems(t, c, m, sl, "id", "seq")
}

// Missing tables and different key schemas are found before any work.
func TestPrepareChecks(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	m := ddbtest.Name(t, "chk-m")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	other := ddbtest.Name(t, "chk-o")
	ddbtest.CreateTable(t, c, other, ddbtest.KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeN})
	ctx := context.Background()
	_, err := diff.Check(ctx, diff.Config{Master: table(m, c), Slaves: []diff.Table{table("no-such-table", c)}})
	var nf *dynamo.NotFoundError
	if !errors.As(err, &nf) || nf.Table != "no-such-table" {
		t.Fatalf("missing slave: err = %v", err)
	}
	_, err = diff.Check(ctx, diff.Config{Master: table(m, c), Slaves: []diff.Table{table(other, c)}})
	var pe *plan.Error
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "key schemas differ") {
		t.Fatalf("key mismatch: err = %v", err)
	}
	_, err = diff.Check(ctx, diff.Config{Master: table(m, c), Slaves: []diff.Table{table(m+"x", c)}, StartingKey: map[string]av{"nope": s("x")}})
	if err == nil {
		t.Fatal("bad starting key accepted")
	}
	_, err = diff.Check(ctx, diff.Config{Master: table(m, c), Slaves: []diff.Table{table(m, c)}, StartingKey: map[string]av{"pk": n("1")}})
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "starting key") {
		t.Fatalf("starting key of the wrong type: err = %v", err)
	}
}

// Differences seen by the eventually consistent first read are read again
// with consistent reads before a repair; what no longer differs is not
// written.
func TestStaleReadIsNotRepaired(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	m, sl := ddbtest.Name(t, "stale-m"), ddbtest.Name(t, "stale-s")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sl, ddbtest.StringKey)
	var items []map[string]av
	for i := range 40 {
		items = append(items, genItem(i))
	}
	ddbtest.PutItems(t, c, m, items)
	ddbtest.PutItems(t, c, sl, items)
	slave := &hookClient{Client: c}
	consistent := 0
	// A stale replica: every fourth item looks different, every seventh
	// looks missing, to eventually consistent reads.
	stale := func(items []map[string]av) []map[string]av {
		var kept []map[string]av
		for _, it := range items {
			var i int
			fmt.Sscanf(it["pk"].(*types.AttributeValueMemberS).Value, "item-%d", &i)
			switch {
			case i%7 == 0:
				continue
			case i%4 == 0:
				it = clone(it)
				it["name"] = s("stale")
			}
			kept = append(kept, it)
		}
		return kept
	}
	slave.batchGet = func(ctx context.Context, in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
		out, err := c.BatchGetItem(ctx, in)
		if err != nil {
			return nil, err
		}
		if aws.ToBool(in.RequestItems[sl].ConsistentRead) {
			consistent++
			return out, nil
		}
		out.Responses[sl] = stale(out.Responses[sl])
		return out, nil
	}
	slave.scan = func(ctx context.Context, in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
		out, err := c.Scan(ctx, in)
		if err != nil {
			return nil, err
		}
		out.Items = stale(out.Items)
		return out, nil
	}
	dry := run(t, diff.Config{Master: table(m, c), Slaves: []diff.Table{table(sl, slave)}})
	if testMethod() == diff.MethodMerge {
		// Every candidate of the merge is confirmed, even in a dry run:
		// the stale scan reports nothing.
		wantCounts(t, dry.Slaves[0], diff.SlaveResult{Scanned: 40, Matching: 40, Method: diff.MethodMerge, CandidatesResolved: 14})
	} else {
		wantCounts(t, dry.Slaves[0], diff.SlaveResult{Scanned: 40, Matching: 26, Missing: 6, Differing: 8, Method: diff.MethodLookup})
	}
	res := run(t, diff.Config{Master: table(m, c), Slaves: []diff.Table{table(sl, slave)}, WriteMissing: true, WriteDiffering: true})
	if testMethod() == diff.MethodMerge {
		wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 40, Matching: 40, Method: diff.MethodMerge, CandidatesResolved: 14})
	} else {
		wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 40, Matching: 40, Method: diff.MethodLookup})
	}
	if slave.puts != 0 || consistent == 0 {
		t.Fatalf("%d writes, %d consistent re-reads; want 0 writes after re-reading", slave.puts, consistent)
	}
}
