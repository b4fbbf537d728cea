package backfill_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/benchutil"
	backfillcmd "github.com/ddbsync/ddbsync/internal/cmd/backfill"
	"github.com/ddbsync/ddbsync/internal/cmdtest"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFilterAndTransformFlags(t *testing.T) {
	tr := writeFile(t, "t.yml", "set:\n  id2: '\"T#\" + item.pk'\ndrop: [\"tmp*\"]\nrename: {qty: quantity}\n")
	cmdtest.Expect(t, backfillcmd.NewCmdBackfill, `--input-table src --output-table dst --filter item.tenant=="acme" --transform `+tr+` --skip-failed-items`, "",
		func(t *testing.T, o *backfillcmd.Options) {
			e := o.Plan.Entries[0]
			if e.Filter != `item.tenant=="acme"` || e.Transform == nil || e.Transform.Rename["qty"] != "quantity" || !o.PlanFlags.SkipFailedItems {
				t.Errorf("entry %+v, transform %+v, skip %v", e, e.Transform, o.PlanFlags.SkipFailedItems)
			}
		})
	// With a plan file, the flags apply to every entry that has none.
	plan := writeFile(t, "plan.yml", "plan:\n  - input: {table: aaa}\n    output: {table: bbb}\n  - input: {table: ccc}\n    output: {table: ddd}\n")
	cmdtest.Expect(t, backfillcmd.NewCmdBackfill, "-c "+plan+" --filter has(item.x)", "",
		func(t *testing.T, o *backfillcmd.Options) {
			for _, e := range o.Plan.Entries {
				if e.Filter != "has(item.x)" {
					t.Errorf("entry %s: filter %q", e.Description(), e.Filter)
				}
			}
		})
}

func TestBadFilterOrTransformExitsTwo(t *testing.T) {
	planWithFilter := writeFile(t, "plan.yml", "plan:\n  - input: {table: aaa}\n    output: {table: bbb}\n    filter: has(item.a)\n")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"filter syntax", []string{"--filter", "item.a == "}, []string{"filter 1:", "Syntax error", `(in "item.a == ")`}},
		{"filter not bool", []string{"--filter", "item.a + 1"}, []string{"filter", "must be a bool expression"}},
		{"set type error", []string{"--transform", writeFile(t, "bad.yml", "set:\n  x: 'item.a +* 2'\n")}, []string{"[src] ⇨ [dst]", "transform line 2: set x 1:9", "Syntax error", `(in "item.a +* 2")`}},
		{"unknown transform key", []string{"--transform", writeFile(t, "bad2.yml", "sett:\n  x: item.a\n")}, []string{"--transform", "transform line 1", `unknown key "sett"`}},
		{"missing transform file", []string{"--transform", filepath.Join(t.TempDir(), "none.yml")}, []string{"cannot read the --transform file", "no such file"}},
		{"flag and plan filter", []string{"-c", planWithFilter, "--filter", "has(item.b)"}, []string{"plan entry 1", "has a filter of its own", "--filter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"backfill"}, tt.args...)
			if tt.args[0] != "-c" {
				args = append(args, "--input-table", "src", "--output-table", "dst")
			}
			res := cmdtest.Run(t, cmdtest.NewFactory(t, ""), args...)
			if res.Code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, res.Stderr)
				}
			}
		})
	}
}

func TestTransformedBackfillThroughTheCommand(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in := ddbtest.Name(t, "cli-tin")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	const n = 300
	if err := benchutil.Load(context.Background(), c, in, n, 8, item); err != nil {
		t.Fatal(err)
	}
	outKey := ddbtest.KeySpec{Hash: "id2", HashType: types.ScalarAttributeTypeS}
	filter := "item.v % 3 != 0"
	kept := 0
	for i := range n {
		if i%3 != 0 {
			kept++
		}
	}

	t.Run("a filtered, transformed copy into another key", func(t *testing.T) {
		out := ddbtest.Name(t, "cli-tout")
		ddbtest.CreateTable(t, c, out, outKey)
		yml := "set:\n  id2: '\"T#\" + item.pk'\ndrop: [s]\nrename: {v: value}\n"
		code, stdout, stderr := newCLI(t).run(context.Background(), "--input-table", in, "--output-table", out,
			"--filter", filter, "--transform", writeFile(t, "t.yml", yml))
		if code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		tr, _ := transform.ParseTransform([]byte(yml))
		prog, err := transform.Compile(transform.Spec{Filter: filter, Transform: tr})
		if err != nil {
			t.Fatal(err)
		}
		if got := ddbtest.AssertTransformed(t, c, prog, in, out, "id2", ""); got != kept {
			t.Fatalf("output holds %d items, want %d", got, kept)
		}
		want := fmt.Sprintf("Summary: backfill complete: %d items read, %d written, %d skipped (%d by the filter), 0 failed", n, kept, n-kept, n-kept)
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	})

	t.Run("an output key of the wrong type fails the items: exit 3, or 0 with --skip-failed-items", func(t *testing.T) {
		out := ddbtest.Name(t, "cli-kout")
		ddbtest.CreateTable(t, c, out, outKey)
		// id2 is a number for the items the filter would reject.
		tr := writeFile(t, "t.yml", "set:\n  id2: 'item.v % 3 == 0 ? item.v : item.pk'\n")
		x := newCLI(t)
		code, stdout, stderr := x.run(context.Background(), "--input-table", in, "--output-table", out, "--transform", tr)
		if code != 3 {
			t.Fatalf("exit %d, want 3\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		for _, want := range []string{"item failed: key id2", "the output table wants S", `key="{\"pk\":\"k000003\"}"`, fmt.Sprintf("%d failed", n-kept)} {
			if !strings.Contains(stdout+stderr, want) {
				t.Errorf("output lacks %q:\nstdout: %s\nstderr: %s", want, stdout, stderr)
			}
		}
		if !strings.Contains(stderr, "--skip-failed-items") {
			t.Errorf("stderr does not point at --skip-failed-items: %s", stderr)
		}
		// Run again with --skip-failed-items: the copy resumes and succeeds,
		// the failures counted.
		code, stdout, stderr = x.run(context.Background(), "--input-table", in, "--output-table", out, "--transform", tr, "--skip-failed-items")
		if code != 0 || !strings.Contains(stdout, "failed") {
			t.Fatalf("with --skip-failed-items: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if got := len(ddbtest.ScanAll(t, c, out)); got != kept {
			t.Fatalf("output holds %d items, want %d", got, kept)
		}
	})
}
