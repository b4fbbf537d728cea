package diff_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/diff"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// The migration of the tests: acme's items, under a computed key id (the
// slave's key schema), without the tmp* attributes, qty renamed.
const (
	acmeFilter    = `item.tenant == "acme"`
	acmeTransform = `
set:
  id: '"T#" + item.pk'
drop: ["tmp*"]
rename:
  qty: quantity
`
)

var idKey = ddbtest.KeySpec{Hash: "id", HashType: types.ScalarAttributeTypeS}

func acmeItem(i int) map[string]av {
	tenant := "acme"
	if i%4 == 0 {
		tenant = "other"
	}
	return map[string]av{
		"pk": s(fmt.Sprintf("p%03d", i)), "tenant": s(tenant), "qty": n(fmt.Sprint(i)),
		"big": n("123456789012345678901234567890123456.7"), "tmpA": s("scratch"), "name": s(fmt.Sprintf("name %d", i)),
	}
}

// migrate writes to the slave what a correct migration writes: the
// program applied to every master item.
func migrate(t *testing.T, c *dynamodb.Client, prg *transform.Program, master, slave string) int {
	t.Helper()
	var out []map[string]av
	for _, it := range ddbtest.ScanAll(t, c, master) {
		o, keep, err := prg.Apply(it)
		if err != nil {
			t.Fatalf("program on %v: %v", it, err)
		}
		if keep {
			out = append(out, o)
		}
	}
	ddbtest.PutItems(t, c, slave, out)
	return len(out)
}

// assertMigrated fails unless the slave holds exactly the transformed,
// filtered master (compared as diff compares).
func assertMigrated(t *testing.T, c *dynamodb.Client, prg *transform.Program, master, slave, key string) {
	t.Helper()
	want := map[string]map[string]av{}
	for _, it := range ddbtest.ScanAll(t, c, master) {
		o, keep, err := prg.Apply(it)
		if err != nil {
			t.Fatalf("program on %v: %v", it, err)
		}
		if keep {
			want[o[key].(*types.AttributeValueMemberS).Value] = o
		}
	}
	got := ddbtest.ScanAll(t, c, slave)
	if len(got) != len(want) {
		t.Fatalf("slave holds %d items, the transformed master %d", len(got), len(want))
	}
	for _, g := range got {
		k := g[key].(*types.AttributeValueMemberS).Value
		if attrs := diff.Compare(want[k], g, nil); attrs != nil {
			t.Fatalf("slave item %s differs from the transformed master item in %v", k, attrs)
		}
	}
}

func newAcme(t *testing.T, c *dynamodb.Client, total int) (master, slave string, prg *transform.Program) {
	t.Helper()
	master, slave = ddbtest.Name(t, "tdiff-m"), ddbtest.Name(t, "tdiff-s")
	ddbtest.CreateTable(t, c, master, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, slave, idKey)
	var items []map[string]av
	for i := range total {
		items = append(items, acmeItem(i))
	}
	ddbtest.PutItems(t, c, master, items)
	prg = ddbtest.Program(t, acmeFilter, acmeTransform)
	if got := migrate(t, c, prg, master, slave); got != total-total/4 {
		t.Fatalf("migrated %d items, want %d", got, total-total/4)
	}
	return master, slave, prg
}

func put(t *testing.T, c *dynamodb.Client, table string, it map[string]av) {
	t.Helper()
	if _, err := c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
		t.Fatal(err)
	}
}

// A diff with the migration's filter and transform finds a correct copy
// (under another key schema) in sync, then exactly the changes made to
// it, and its repairs make the slave the transformed master again.
func TestTransformedCopy(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	master, slave, prg := newAcme(t, c, 200)
	cfg := diff.Config{Master: table(master, c), Slaves: []diff.Table{table(slave, c)}, Program: prg, ScanForExtra: true, TotalSegments: 2}
	res := run(t, cfg)
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 200, FilteredOut: 50, Matching: 150})

	// A missing, a differing, an extra item, and a master item that
	// leaves the filter: its copy is extra.
	ctx := context.Background()
	if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(slave), Key: map[string]av{"id": s("T#p001")}}); err != nil {
		t.Fatal(err)
	}
	changed, _, _ := prg.Apply(acmeItem(2))
	changed = clone(changed)
	changed["quantity"] = n("999")
	put(t, c, slave, changed)
	put(t, c, slave, map[string]av{"id": s("T#zzz"), "pk": s("zzz"), "tenant": s("acme")})
	left := acmeItem(3)
	left["tenant"] = s("other")
	put(t, c, master, left)

	var rep bytes.Buffer
	cfg.Report = &rep
	res = run(t, cfg)
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 200, FilteredOut: 51, Matching: 147, Missing: 1, Differing: 1, Extra: 2})
	keys := map[string]string{}
	for _, l := range reportLines(t, &rep) {
		keys[fmt.Sprint(l["key"])] = l["kind"].(string)
		if l["kind"] == diff.KindDiffering && fmt.Sprint(l["attributes"]) != "[quantity]" {
			t.Fatalf("differing attributes %v, want [quantity]", l["attributes"])
		}
	}
	want := map[string]string{"map[id:map[S:T#p001]]": "missing", "map[id:map[S:T#p002]]": "differing", "map[id:map[S:T#zzz]]": "extra", "map[id:map[S:T#p003]]": "extra"}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("report keys %v, want %v", keys, want)
	}

	cfg.Report = nil
	cfg.WriteMissing, cfg.WriteDiffering, cfg.DeleteExtra = true, true, true
	res = run(t, cfg)
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 200, FilteredOut: 51, Matching: 147, Missing: 1, Differing: 1, Extra: 2, Written: 2, Deleted: 2})
	assertMigrated(t, c, prg, master, slave, "id")
	cfg.WriteMissing, cfg.WriteDiffering, cfg.DeleteExtra = false, false, false
	res = run(t, cfg)
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 200, FilteredOut: 51, Matching: 149})
}

// A filter alone, on tables of one key schema: a slave copy of an item
// the filter leaves out is extra.
func TestFilterOnly(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	sc := newScenario(t, c, 300)
	res := run(t, diff.Config{
		Master: table(sc.master, c), Slaves: []diff.Table{table(sc.slave, c)},
		Program: ddbtest.Program(t, `item.n % 2 == 0`, ""), ScanForExtra: true,
	})
	// Even items are compared: 3 of them (i%100 == 0) are missing. Every
	// odd item's slave copy (147 equal, 3 differing) and the 3 items only
	// in the slave are extra.
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 300, FilteredOut: 150, Matching: 147, Missing: 3, Extra: 153})
}

// When the output items do not carry the master key, a slave item does
// not name its master item: extra items are only reported, by the merge,
// confirmed on the slave alone; deleting them and looking them up are
// refused before anything is read.
func TestTransformWithoutTheMasterKey(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	master, slave, _ := newAcme(t, c, 40)
	prg := ddbtest.Program(t, acmeFilter, `
set:
  id: '"T#" + item.pk'
drop: ["tmp*", "pk"]
rename:
  qty: quantity
`)
	base := diff.Config{Master: table(master, c), Slaves: []diff.Table{table(slave, c)}, Program: prg}
	for name, cfg := range map[string]diff.Config{
		"delete-extra":          {DeleteExtra: true, Method: diff.MethodMerge},
		"lookup for extra":      {ScanForExtra: true, Method: diff.MethodLookup},
		"extra-only":            {ExtraOnly: true},
		"starting key (lookup)": {ScanForExtra: true, StartingKey: map[string]av{"pk": s("p001")}},
	} {
		cfg.Master, cfg.Slaves, cfg.Program = base.Master, base.Slaves, base.Program
		_, err := diff.Check(context.Background(), cfg)
		var pe *plan.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%s: %v, want a plan.Error", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	// The copy was made keeping pk: every item differs (pk is not in
	// the transformed master item). Rewrite it without pk.
	for _, it := range ddbtest.ScanAll(t, c, slave) {
		delete(it, "pk")
		put(t, c, slave, it)
	}
	put(t, c, slave, map[string]av{"id": s("T#zzz"), "tenant": s("acme")})
	if _, err := c.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(slave), Key: map[string]av{"id": s("T#p001")}}); err != nil {
		t.Fatal(err)
	}
	// auto chooses the merge to report extra items.
	cfg := base
	cfg.ScanForExtra, cfg.Method = true, diff.MethodAuto
	res := run(t, cfg)
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Method: diff.MethodMerge, Scanned: 40, FilteredOut: 10, Matching: 29, Missing: 1, Extra: 1})
	// Without extra items, either method; missing items are repaired.
	cfg = base
	cfg.WriteMissing = true
	res = run(t, cfg)
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 40, FilteredOut: 10, Matching: 29, Missing: 1, Written: 1})
}

// Items the program fails on (an evaluation error, an output key of the
// wrong type) are counted and logged; the run ends with a
// FailedItemsError unless SkipFailedItems.
func TestFailedItems(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	master, slave := ddbtest.Name(t, "tdiff-m"), ddbtest.Name(t, "tdiff-s")
	ddbtest.CreateTable(t, c, master, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, slave, idKey)
	prg := ddbtest.Program(t, acmeFilter, "set: {id: item.code}")
	var items []map[string]av
	for i := range 20 {
		it := map[string]av{"pk": s(fmt.Sprintf("p%02d", i)), "tenant": s("acme"), "code": s(fmt.Sprintf("c%02d", i))}
		switch i {
		case 5:
			delete(it, "tenant") // the filter fails: no such key
		case 6:
			it["code"] = n("6") // the output key is a number, the slave wants S
		}
		items = append(items, it)
	}
	ddbtest.PutItems(t, c, master, items)
	for _, it := range items {
		if o, keep, err := prg.Apply(it); err == nil && keep && transform.CheckKeys(o, transform.KeySchema{Hash: "id", HashType: "S"}) == nil {
			put(t, c, slave, o)
		}
	}
	for _, skip := range []bool{false, true} {
		cfg := diff.Config{Master: table(master, c), Slaves: []diff.Table{table(slave, c)}, Program: prg, ScanForExtra: true, SkipFailedItems: skip}
		if cfg.Method == "" {
			cfg.Method = testMethod()
		}
		d, err := diff.Check(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := d.Run(context.Background())
		var fe *diff.FailedItemsError
		switch {
		case skip && err != nil:
			t.Fatalf("with SkipFailedItems: %v", err)
		case !skip && (!errors.As(err, &fe) || fe.Count != 2):
			t.Fatalf("without SkipFailedItems: %v, want a FailedItemsError of 2 items", err)
		}
		wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 20, Failed: 2, Matching: 18})
	}
}

// The master changes an item after diff's consistent re-read and before
// its repair write reaches the slave: the re-read after the put reads the
// master by the item's input key and applies the program again. An item
// that left the filter or was deleted has its write undone; a changed one
// is skipped. Every such repair counts as skipped.
func TestTransformedMasterChangeDuringRepair(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	ctx := context.Background()
	master, slave, prg := newAcme(t, c, 200)
	for _, id := range []string{"T#p001", "T#p005"} {
		if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(slave), Key: map[string]av{"id": s(id)}}); err != nil {
			t.Fatal(err)
		}
	}
	changed, _, _ := prg.Apply(acmeItem(2))
	changed = clone(changed)
	changed["name"] = s("changed on the slave")
	put(t, c, slave, changed)

	var mu sync.Mutex
	meddled := map[string]bool{}
	hooked := &hookClient{Client: c, beforePut: func(in *dynamodb.PutItemInput) {
		id := in.Item["id"].(*types.AttributeValueMemberS).Value
		mu.Lock()
		defer mu.Unlock()
		if meddled[id] {
			return
		}
		meddled[id] = true
		var err error
		switch id {
		case "T#p001": // leaves the filter
			it := acmeItem(1)
			it["tenant"] = s("other")
			_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(master), Item: it})
		case "T#p005": // changes
			it := acmeItem(5)
			it["name"] = s("changed on the master")
			_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(master), Item: it})
		case "T#p002": // is deleted
			_, err = c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(master), Key: map[string]av{"pk": s("p002")}})
		default:
			t.Errorf("unexpected repair of %s", id)
		}
		if err != nil {
			t.Errorf("master change: %v", err)
		}
	}}
	res := run(t, diff.Config{Master: table(master, c), Slaves: []diff.Table{table(slave, hooked)}, Program: prg, WriteMissing: true, WriteDiffering: true})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 200, FilteredOut: 50, Matching: 147, Missing: 2, Differing: 1, Skipped: 3})
	if len(meddled) != 3 {
		t.Fatalf("%d repair writes, want 3", len(meddled))
	}
	// The writes of items the master no longer maps there were undone;
	// the changed one is the master's previous item (the replication
	// brings the change).
	res = run(t, diff.Config{Master: table(master, c), Slaves: []diff.Table{table(slave, c)}, Program: prg, ScanForExtra: true})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 199, FilteredOut: 51, Matching: 147, Differing: 1})
}

// Several master items mapping to one output key: the merge compares
// them as one and counts the others as failed; the lookup, which sees one
// item at a time, reports the ones the slave does not hold as differing.
func TestTransformCollisions(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	master, slave := ddbtest.Name(t, "tdiff-m"), ddbtest.Name(t, "tdiff-s")
	ddbtest.CreateTable(t, c, master, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, slave, idKey)
	prg := ddbtest.Program(t, "", "set: {id: item.group}")
	var items []map[string]av
	for i := range 10 {
		it := map[string]av{"pk": s(fmt.Sprintf("k%d", i)), "group": s(fmt.Sprintf("g%d", i/2))}
		items = append(items, it)
		if i%2 == 1 { // the slave holds the second item of each pair
			o, _, _ := prg.Apply(it)
			put(t, c, slave, o)
		}
	}
	ddbtest.PutItems(t, c, master, items)
	res := run(t, diff.Config{Master: table(master, c), Slaves: []diff.Table{table(slave, c)}, Program: prg, ScanForExtra: true, SkipFailedItems: true})
	if testMethod() == diff.MethodMerge {
		wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 10, Matching: 5, Failed: 5})
	} else {
		wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 10, Matching: 5, Differing: 5})
	}
}

// A merge stopped half-way continues only with the same filter and
// transform: with another one it starts over (and reports that one's
// differences), with the same one it resumes.
func TestTransformedMergeResumesOnlyTheSameProgram(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	master, slave, prg := newAcme(t, c, 400)
	other := ddbtest.Program(t, `item.tenant == "other"`, acmeTransform)
	const page = 20
	cfg := func(m diff.Client, p *transform.Program, state string) diff.Config {
		return diff.Config{Master: table(master, m), Slaves: []diff.Table{table(slave, c)}, Program: p,
			Method: diff.MethodMerge, PageSize: page, ScanForExtra: true, StateDir: state}
	}
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	pages, read := 0, 0
	hm := &hookClient{Client: c}
	hm.scan = func(sctx context.Context, in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
		mu.Lock()
		if pages >= 8 && ctx.Err() == nil {
			mu.Unlock()
			cancel()
			<-sctx.Done()
			return nil, sctx.Err()
		}
		mu.Unlock()
		out, err := c.Scan(sctx, in)
		if err == nil {
			mu.Lock()
			pages++
			read += len(out.Items)
			mu.Unlock()
		}
		return out, err
	}
	d, err := diff.Check(ctx, cfg(hm, prg, state))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run: %v", err)
	}
	stoppedAt := read

	// Another filter: a fresh start, that filter's differences.
	res := run(t, cfg(c, other, state))
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Method: diff.MethodMerge, Scanned: 400, FilteredOut: 300, Missing: 100, Extra: 300})

	// The same program: resumed, and its exact counts.
	mu.Lock()
	pages, read = -1<<30, 0 // never stop again
	mu.Unlock()
	res = run(t, cfg(hm, prg, state))
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Method: diff.MethodMerge, Scanned: 400, FilteredOut: 100, Matching: 300})
	if stoppedAt == 0 || read+stoppedAt > 400+page {
		t.Fatalf("the stopped run read %d master items, the resumed one %d: not resumed", stoppedAt, read)
	}
	t.Logf("master items read before the stop %d, after %d", stoppedAt, read)
}

// A slave item whose master item is written after the master was read is
// not extra: the confirming read finds the master item it names, and that
// item maps to it.
func TestTransformedExtraConfirmedByTheMasterItemItNames(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	master, slave, prg := newAcme(t, c, 200)
	late := acmeItem(901)
	o, _, _ := prg.Apply(late)
	put(t, c, slave, o)
	var once sync.Once
	hooked := &hookClient{Client: c}
	hooked.batchGet = func(bctx context.Context, in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
		once.Do(func() { put(t, c, master, late) }) // after the master was read
		return c.BatchGetItem(bctx, in)
	}
	var rep bytes.Buffer
	res := run(t, diff.Config{Master: table(master, c), Slaves: []diff.Table{table(slave, hooked)}, Program: prg, ScanForExtra: true, Report: &rep})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 200, FilteredOut: 50, Matching: 150})
	if rep.Len() != 0 {
		t.Fatalf("report: %s", rep.String())
	}
}
