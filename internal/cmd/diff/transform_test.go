package diff_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// A bad filter or transform is exit 2, naming the expression and its
// position, before any AWS call (there is no endpoint: a call would fail
// with exit 3).
func TestProgramUsageErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good.yml", "set: {id: '\"T#\" + item.pk'}\n")
	base := []string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb"}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--filter", `item.tenant ==`}, []string{"--filter: filter 1:", "Syntax error", `(in "item.tenant ==")`}},
		{[]string{"--filter", `item.qty + 1`}, []string{"--filter: filter", "must be a bool expression"}},
		{[]string{"--filter", "  "}, []string{"--filter needs a CEL expression"}},
		{[]string{"--transform", filepath.Join(dir, "none.yml")}, []string{"cannot read the --transform file", "none.yml"}},
		{[]string{"--transform", file("key.yml", "sett: {a: '1'}\n")}, []string{"--transform", "transform line 1", `unknown key "sett"`}},
		{[]string{"--transform", file("syntax.yml", "drop: [x]\nset:\n  id: '\"T#\" + item.pk +'\n")}, []string{"transform line 3: set id 1:", `(in "\"T#\" + item.pk +")`}},
		{[]string{"--transform", file("time.yml", "set: {t: 'timestamp(\"2020-01-01T00:00:00Z\")'}\n")}, []string{"set t", "no DynamoDB form"}},
		{[]string{"--transform", good, "--filter", `item.a.startsWith(1)`}, []string{"--filter: filter 1:"}},
	}
	for _, tc := range cases {
		code, out, errOut := runCLI(t, append(base, tc.args...)...)
		if code != cmdutil.ExitUsage {
			t.Errorf("%v: exit %d, want 2; stderr %q", tc.args, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr %q lacks %q", tc.args, errOut, w)
			}
		}
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", tc.args, out)
		}
	}
}

// diff --filter --transform against a copy made with the same
// definition into a table with another key: in sync, then the changes,
// the failed items and --skip-failed-items, through the command.
func TestProgramRun(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	ep := ddbtest.Endpoint(t)
	m, sl := ddbtest.Name(t, "cli-tm"), ddbtest.Name(t, "cli-ts")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sl, ddbtest.KeySpec{Hash: "id", HashType: types.ScalarAttributeTypeS})
	dir := t.TempDir()
	yml := "set:\n  id: '\"T#\" + item.pk'\ndrop: [\"tmp*\"]\nrename: {v: value}\n"
	tf := filepath.Join(dir, "t.yml")
	if err := os.WriteFile(tf, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := transform.ParseTransform([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	const filter = `item.tenant == "acme"`
	prg, err := transform.Compile(transform.Spec{Filter: filter, Transform: tr})
	if err != nil {
		t.Fatal(err)
	}
	var mi, si []map[string]av
	for i := range 40 {
		it := item(fmt.Sprintf("k%03d", i), fmt.Sprint(i))
		it["tenant"] = &types.AttributeValueMemberS{Value: "acme"}
		it["tmpX"] = &types.AttributeValueMemberS{Value: "scratch"}
		if i%5 == 0 {
			it["tenant"] = &types.AttributeValueMemberS{Value: "other"}
		}
		mi = append(mi, it)
		if o, keep, err := prg.Apply(it); err != nil {
			t.Fatal(err)
		} else if keep && i != 1 { // k001 missing
			si = append(si, o)
		}
	}
	si = append(si, map[string]av{"id": &types.AttributeValueMemberS{Value: "T#k000"}, "pk": &types.AttributeValueMemberS{Value: "k000"}}) // filtered out: extra
	ddbtest.PutItems(t, c, m, mi)
	ddbtest.PutItems(t, c, sl, si)
	base := []string{"--endpoint-url", ep, "-m", "us-east-1:" + m, "-s", "us-east-1:" + sl, "--filter", filter, "--transform", tf}

	slaveJSON := func(out string) map[string]json.RawMessage {
		t.Helper()
		var sum struct {
			Slaves []map[string]json.RawMessage `json:"slaves"`
		}
		if err := json.Unmarshal([]byte(out), &sum); err != nil || len(sum.Slaves) != 1 {
			t.Fatalf("summary %q: %v", out, err)
		}
		return sum.Slaves[0]
	}
	wantJSON := func(got map[string]json.RawMessage, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if string(got[k]) != v {
				t.Fatalf("%s = %s, want %s (%v)", k, got[k], v, got)
			}
		}
	}
	code, out, errOut := runCLI(t, append(base, "--scan-for-extra", "--output", "json")...)
	if code != cmdutil.ExitDifferences {
		t.Fatalf("dry run: exit %d, want 1\n%s", code, errOut)
	}
	wantJSON(slaveJSON(out), map[string]string{"scanned": "40", "filtered_out": "8", "matching": "31", "missing": "1", "extra": "1", "differing": "0", "failed": "0"})

	code, out, errOut = runCLI(t, append(base, "--write-missing", "--delete-extra")...)
	if code != cmdutil.ExitOK || !strings.Contains(out, "written 1, deleted 1") {
		t.Fatalf("repair: exit %d\n%s%s", code, out, errOut)
	}

	// A master item without tenant: the filter fails on it.
	bad := item("k999", "1")
	ddbtest.PutItems(t, c, m, []map[string]av{bad})
	code, out, errOut = runCLI(t, append(base, "--scan-for-extra", "--output", "json")...)
	if code != cmdutil.ExitRuntime || !strings.Contains(errOut, `{"pk":"k999"}: failed`) || !strings.Contains(errOut, "--skip-failed-items") {
		t.Fatalf("failed item: exit %d, want 3\n%s", code, errOut)
	}
	wantJSON(slaveJSON(out), map[string]string{"scanned": "41", "failed": "1", "matching": "32", "missing": "0", "extra": "0"})
	code, out, errOut = runCLI(t, append(base, "--scan-for-extra", "--skip-failed-items")...)
	if code != cmdutil.ExitOK || !strings.Contains(out, "failed 1, filtered out 8") {
		t.Fatalf("--skip-failed-items: exit %d, want 0\n%s%s", code, out, errOut)
	}

	// A transform that drops the master key: --delete-extra is refused
	// (exit 2) after DescribeTable, before any item is read.
	drop := filepath.Join(dir, "drop.yml")
	if err := os.WriteFile(drop, []byte("set:\n  id: '\"T#\" + item.pk'\ndrop: [\"tmp*\", pk]\nrename: {v: value}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "--endpoint-url", ep, "-m", "us-east-1:"+m, "-s", "us-east-1:"+sl, "--filter", filter, "--transform", drop, "--delete-extra", "--skip-failed-items")
	if code != cmdutil.ExitUsage || !strings.Contains(errOut, "(--delete-extra) would delete slave items on a guess") {
		t.Fatalf("delete-extra without the master key: exit %d, want 2\n%s", code, errOut)
	}
}

// A plan file's entries carry the filter and transform: diff uses them
// when every entry has the same, and refuses entries that differ or a
// flag added to entries that have their own (exit 2, before any read).
func TestProgramFromPlanFile(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	ep := ddbtest.Endpoint(t)
	m, sl := ddbtest.Name(t, "cli-pm"), ddbtest.Name(t, "cli-ps")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sl, ddbtest.KeySpec{Hash: "id", HashType: types.ScalarAttributeTypeS})
	var mi []map[string]av
	for i := range 10 {
		it := item(fmt.Sprintf("k%d", i), fmt.Sprint(i))
		mi = append(mi, it)
	}
	ddbtest.PutItems(t, c, m, mi)
	ddbtest.PutItems(t, c, sl, []map[string]av{{"id": &types.AttributeValueMemberS{Value: "T#k1"}, "pk": &types.AttributeValueMemberS{Value: "k1"}, "v": &types.AttributeValueMemberN{Value: "1"}}})
	dir := t.TempDir()
	entry := func(out, filter string) string {
		return fmt.Sprintf("- input: {table: %s, region: us-east-1}\n  output: {table: %s, region: us-east-1}\n  filter: '%s'\n  transform:\n    set: {id: '\"T#\" + item.pk'}\n", m, out, filter)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("plan:\n"+content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yml", entry(sl, "item.v < 2"))
	code, out, errOut := runCLI(t, "--endpoint-url", ep, "--config-file", good, "--scan-for-extra", "--output", "json")
	if code != cmdutil.ExitDifferences || !strings.Contains(out, `"matching":1,"missing":1,`) || !strings.Contains(out, `"filtered_out":8`) {
		t.Fatalf("plan with a program: exit %d\n%s\n%s", code, out, errOut)
	}
	differ := write("differ.yml", entry(sl, "item.v < 2")+entry("other", "item.v < 3"))
	if code, _, errOut := runCLI(t, "--endpoint-url", ep, "--config-file", differ); code != cmdutil.ExitUsage || !strings.Contains(errOut, "different filters or transforms") {
		t.Fatalf("entries that differ: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "--endpoint-url", ep, "--config-file", good, "--filter", "true"); code != cmdutil.ExitUsage || !strings.Contains(errOut, "of its own and --filter") {
		t.Fatalf("flag and entry program: exit %d\n%s", code, errOut)
	}
}
