package diff_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/diff"
)

// failedKeys returns, per slave label, the keys (DynamoDB JSON, sorted)
// of the report's failed lines, and fails on a failed line without action
// none or a reason.
func failedKeys(t *testing.T, report string) (keys map[string][]string, reasons []string) {
	t.Helper()
	keys = map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(report))
	for dec.More() {
		var l struct {
			Kind, Slave, Action, Reason string
			Key                         json.RawMessage
		}
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("report line: %v\n%s", err, report)
		}
		if l.Kind != diff.KindFailed {
			continue
		}
		if l.Action != diff.ActionNone || l.Reason == "" {
			t.Errorf("failed line %+v: want action none and a reason", l)
		}
		keys[l.Slave] = append(keys[l.Slave], string(l.Key))
		reasons = append(reasons, l.Reason)
	}
	for _, k := range keys {
		sort.Strings(k)
	}
	return keys, reasons
}

// Master items the filter or transform fails on (an evaluation error, an
// output key of the wrong type) get a report line of kind failed (the
// "!" of the verbose log) with the master item's key and the reason, one
// for every slave they count against.
func TestReportFailedItems(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	master := ddbtest.Name(t, "rdiff-m")
	ddbtest.CreateTable(t, c, master, ddbtest.StringKey)
	prg := ddbtest.Program(t, acmeFilter, "set: {id: item.code}")
	var items []map[string]av
	for i := range 12 {
		it := map[string]av{"pk": s(fmt.Sprintf("p%02d", i)), "tenant": s("acme"), "code": s(fmt.Sprintf("c%02d", i))}
		switch i {
		case 5:
			delete(it, "tenant") // the filter fails: no such key
		case 6:
			it["code"] = n("6") // the output key is a number, the slaves want S
		}
		items = append(items, it)
	}
	ddbtest.PutItems(t, c, master, items)
	var slaves []diff.Table
	for _, name := range []string{"rdiff-s1", "rdiff-s2"} {
		sl := ddbtest.Name(t, name)
		ddbtest.CreateTable(t, c, sl, idKey)
		for i, it := range items {
			if i != 5 && i != 6 {
				o, _, _ := prg.Apply(it)
				put(t, c, sl, o)
			}
		}
		slaves = append(slaves, table(sl, c))
	}
	var rep bytes.Buffer
	res := run(t, diff.Config{Master: table(master, c), Slaves: slaves, Program: prg, ScanForExtra: true, SkipFailedItems: true, Report: &rep})
	for _, sr := range res.Slaves {
		wantCounts(t, sr, diff.SlaveResult{Scanned: 12, Failed: 2, Matching: 10})
	}
	keys, reasons := failedKeys(t, rep.String())
	want := `{"pk":{"S":"p05"}} {"pk":{"S":"p06"}}`
	for _, sl := range slaves {
		if got := strings.Join(keys[sl.Label], " "); got != want {
			t.Errorf("failed lines of %s: %s, want %s\n%s", sl.Label, got, want, rep.String())
		}
	}
	if len(keys) != len(slaves) || !strings.Contains(strings.Join(reasons, "\n"), "no such key") {
		t.Errorf("failed lines name %d slaves; reasons %q", len(keys), reasons)
	}
}

// With the merge method, several master items mapping to one output key
// are compared as one and the others are failed: each of those gets a
// failed line with its own master key (one per output key here).
func TestReportCollisions(t *testing.T) {
	if testMethod() != diff.MethodMerge {
		t.Skip("the lookup method compares each master item with the slave item of its output key")
	}
	c, _ := ddbtest.Clients(t)
	master, slave := ddbtest.Name(t, "rdiff-m"), ddbtest.Name(t, "rdiff-s")
	ddbtest.CreateTable(t, c, master, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, slave, idKey)
	prg := ddbtest.Program(t, "", "set: {id: item.group}")
	var items []map[string]av
	for i := range 10 {
		it := map[string]av{"pk": s(fmt.Sprintf("k%d", i)), "group": s(fmt.Sprintf("g%d", i/2))}
		items = append(items, it)
		if i%2 == 1 {
			o, _, _ := prg.Apply(it)
			put(t, c, slave, o)
		}
	}
	ddbtest.PutItems(t, c, master, items)
	var rep bytes.Buffer
	res := run(t, diff.Config{Master: table(master, c), Slaves: []diff.Table{table(slave, c)}, Program: prg, ScanForExtra: true, SkipFailedItems: true, Report: &rep})
	wantCounts(t, res.Slaves[0], diff.SlaveResult{Scanned: 10, Matching: 5, Failed: 5})
	keys, reasons := failedKeys(t, rep.String())
	got := keys[res.Slaves[0].Slave]
	// The slave holds the odd item of each pair, which matches: the even
	// one is the failed one.
	var want []string
	for g := range 5 {
		want = append(want, fmt.Sprintf(`{"pk":{"S":"k%d"}}`, 2*g))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("failed keys %v, want %v\n%s", got, want, rep.String())
	}
	for _, r := range reasons {
		if !strings.Contains(r, "2 master items map to the output key") {
			t.Errorf("reason %q", r)
		}
	}
}
