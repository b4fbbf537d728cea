package ddbtest

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/transform"
)

// Transformed scans table in and applies prog to every item, as a correct
// migration would: the items it keeps, transformed, by their key string
// in the output key (hash, rangeKey). An item prog fails on fails the
// test.
func Transformed(t testing.TB, c *dynamodb.Client, prog *transform.Program, in, hash, rangeKey string) map[string]map[string]types.AttributeValue {
	t.Helper()
	want := map[string]map[string]types.AttributeValue{}
	for _, it := range ScanAll(t, c, in) {
		out, keep, err := prog.Apply(it)
		if err != nil {
			t.Fatalf("the program fails on input item %v: %v", it, err)
		}
		if keep {
			want[keyString(out, hash, rangeKey)] = out
		}
	}
	return want
}

// AssertTransformed fails the test unless table out holds exactly the
// items of table in that prog keeps, each transformed by prog: the
// output of a correct filtered, transformed copy. It returns how many
// items the output holds.
func AssertTransformed(t testing.TB, c *dynamodb.Client, prog *transform.Program, in, out, hash, rangeKey string) int {
	t.Helper()
	want := Transformed(t, c, prog, in, hash, rangeKey)
	got := map[string]map[string]types.AttributeValue{}
	for _, it := range ScanAll(t, c, out) {
		got[keyString(it, hash, rangeKey)] = it
	}
	problems := 0
	report := func(format string, args ...any) {
		problems++
		if problems <= 5 {
			t.Errorf(format, args...)
		}
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			report("%s: item %s missing", out, k)
		case !reflect.DeepEqual(w, g):
			report("%s: item %s differs:\nwant %v\ngot  %v", out, k, w, g)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			report("%s: extra item %s", out, k)
		}
	}
	if problems > 0 {
		t.Fatalf("%s differs from the transformed, filtered %s in %d items (%d vs %d items)", out, in, problems, len(got), len(want))
	}
	return len(got)
}

// Program compiles a filter (empty: none) and a transform given as YAML
// (empty: none), failing the test on an error.
func Program(t testing.TB, filter, yml string) *transform.Program {
	t.Helper()
	spec := transform.Spec{Filter: filter}
	if yml != "" {
		tr, err := transform.ParseTransform([]byte(yml))
		if err != nil {
			t.Fatal(err)
		}
		spec.Transform = tr
	}
	p, err := transform.Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
