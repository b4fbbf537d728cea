package transform

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestFilter(t *testing.T) {
	acme := item{"pk": S("1"), "tenant": S("acme"), "qty": N("3")}
	deleted := item{"pk": S("2"), "tenant": S("acme"), "deletedAt": N("1700000000")}
	other := item{"pk": S("3"), "tenant": S("other")}
	noTenant := item{"pk": S("4")}
	cases := []struct {
		filter  string
		item    item
		keep    bool
		errPart string // an *ItemError containing this
	}{
		{`item.tenant == "acme"`, acme, true, ""},
		{`item.tenant == "acme"`, other, false, ""},
		{`item.tenant == "acme" && !has(item.deletedAt)`, acme, true, ""},
		{`item.tenant == "acme" && !has(item.deletedAt)`, deleted, false, ""},
		{`has(item.tenant) && item.tenant == "acme"`, noTenant, false, ""},
		{`item.?tenant.orValue("") == "acme"`, noTenant, false, ""},
		{`item.tenant == "acme"`, noTenant, false, "no such key: tenant"},
		{`item.qty > 2`, acme, true, ""},
		{`item.qty + 1 == 4`, acme, true, ""},
		{`item.tenant + 1 == 4`, acme, false, "no such overload"},
		{`item.tenant.startsWith("ac")`, acme, true, ""},
		{`item.tenant.upperAscii() == "ACME"`, acme, true, ""},              // ext.Strings
		{`base64.encode(bytes(item.tenant)) == "YWNtZQ=="`, acme, true, ""}, // ext.Encoders
		{`"acme" in [item.tenant, "x"]`, acme, true, ""},
		{`item.tenant`, acme, false, "not a bool"}, // dyn at compile time
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			p := mustCompile(t, c.filter, "")
			out, keep, err := p.Apply(c.item)
			if c.errPart != "" {
				var ie *ItemError
				if !errors.As(err, &ie) || ie.Where != "filter" || !strings.Contains(err.Error(), c.errPart) {
					t.Fatalf("err = %v, want a filter *ItemError containing %q", err, c.errPart)
				}
				if keep || out != nil {
					t.Errorf("a failed item is kept: %v %v", keep, out)
				}
				return
			}
			if err != nil || keep != c.keep {
				t.Fatalf("Apply = keep %v, err %v; want keep %v", keep, err, c.keep)
			}
			if keep && !sameMap(out, c.item) {
				t.Errorf("a filter-only program must return the input map itself")
			}
			if !keep && out != nil {
				t.Errorf("out = %v for an item the filter rejects", out)
			}
		})
	}
}

// sameMap reports whether a and b are the same map, not just equal ones.
func sameMap(a, b item) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func TestNoSpecKeepsEverything(t *testing.T) {
	p, err := Compile(Spec{})
	if err != nil {
		t.Fatal(err)
	}
	in := item{"pk": S("x")}
	out, keep, err := p.Apply(in)
	if err != nil || !keep || !sameMap(out, in) || p.HasFilter() || p.HasTransform() {
		t.Fatalf("Apply = %v %v %v", out, keep, err)
	}
	if _, ok := p.ScanFilter(); ok {
		t.Error("ScanFilter without a filter")
	}
}

// TestPassthroughDigitForDigit checks that attributes no step touches are
// the very values read, whatever their precision, and that a copy by plain
// selection keeps them too.
func TestPassthroughDigitForDigit(t *testing.T) {
	nums := []string{"123456789012345678901234567890", "0.1000", "1E+2", "-0", "9.9999999999999999999999999999999999999E+125", "1e-130"}
	in := item{"pk": S("k")}
	for i, n := range nums {
		in[string(rune('a'+i))] = N(n)
	}
	in["ss"] = &types.AttributeValueMemberSS{Value: []string{"x", "y"}}
	in["big"] = N("123456789012345678901234567890")
	p := mustCompile(t, `item.big > 1.0`, `
set:
  copy: item.big
  copyset: item.ss
  computed: item.big + 0.0
drop: ["tmp*"]
rename:
  pk: id
`)
	out, keep, err := p.Apply(in)
	if err != nil || !keep {
		t.Fatalf("Apply: %v %v", keep, err)
	}
	for name, av := range in {
		if name == "pk" {
			continue
		}
		if out[name] != av {
			t.Errorf("%s: got %#v, want the same value as the input", name, out[name])
		}
	}
	if out["id"] != in["pk"] {
		t.Errorf("a renamed attribute is not the input value")
	}
	if out["copy"] != in["big"] || out["copyset"] != in["ss"] {
		t.Errorf("a plain copy must be the input value: %#v %#v", out["copy"], out["copyset"])
	}
	// A computed number goes through a double: say so by testing it.
	if got := out["computed"].(*types.AttributeValueMemberN).Value; got != "123456789012345680000000000000" {
		t.Errorf("computed = %s", got)
	}
}

func TestTransformSteps(t *testing.T) {
	in := item{"pk": S("A1"), "qty": N("5"), "tmpA": S("x"), "tmp": S("y"), "aws:rep:updatetime": N("1"), "keep": S("k"), "a": S("va"), "b": S("vb")}
	cases := []struct {
		name string
		yaml string
		want item
	}{
		{"the issue's example", `
set:
  id2: '"T#" + item.pk'
drop: ["tmp*"]
rename:
  qty: quantity
`, item{"pk": S("A1"), "id2": S("T#A1"), "quantity": N("5"), "aws:rep:updatetime": N("1"), "keep": S("k"), "a": S("va"), "b": S("vb")}},
		{"globs", `drop: ["aws:rep:*", "tm?", "?"]`,
			item{"pk": S("A1"), "qty": N("5"), "tmpA": S("x"), "keep": S("k")}},
		{"set sees the input, before drop and rename", `
set:
  fromTmp: item.tmp + string(item.qty)
  qty2: item.qty * 2
drop: ["tmp*"]
rename:
  qty: quantity
`, item{"pk": S("A1"), "quantity": N("5"), "fromTmp": S("y5"), "qty2": N("10"), "aws:rep:updatetime": N("1"), "keep": S("k"), "a": S("va"), "b": S("vb")}},
		{"set is assigned last: it wins over rename and drop", `
set:
  quantity: '"set"'
  tmpA: '"kept"'
drop: ["tmp*"]
rename:
  qty: quantity
`, item{"pk": S("A1"), "quantity": S("set"), "tmpA": S("kept"), "aws:rep:updatetime": N("1"), "keep": S("k"), "a": S("va"), "b": S("vb")}},
		{"renames are simultaneous: a swap", `
rename:
  a: b
  b: a
`, item{"pk": S("A1"), "qty": N("5"), "tmpA": S("x"), "tmp": S("y"), "aws:rep:updatetime": N("1"), "keep": S("k"), "a": S("vb"), "b": S("va")}},
		{"a rename overwrites, a dropped attribute is not renamed", `
drop: [tmp]
rename:
  a: keep
  tmp: t2
  missing: m2
`, item{"pk": S("A1"), "qty": N("5"), "tmpA": S("x"), "aws:rep:updatetime": N("1"), "keep": S("va"), "b": S("vb")}},
		{"optional none leaves the attribute out", `
set:
  keep: item.?nothing
  x: item.?a
`, item{"pk": S("A1"), "qty": N("5"), "tmpA": S("x"), "tmp": S("y"), "aws:rep:updatetime": N("1"), "a": S("va"), "b": S("vb"), "x": S("va")}},
		{"computed values of every type", `
set:
  s: '"x"'
  n: 1 + 2
  d: 1.5 * 3.0
  whole: 2.0 * 3.0
  b: b"ab"
  t: "true"
  z: "null"
  l: '[1, "a", [true]]'
  m: '{"x": {"y": 1}}'
  ts: string(timestamp("2024-01-02T03:04:05Z"))
drop: ["*"]
`, item{"s": S("x"), "n": N("3"), "d": N("4.5"), "whole": N("6"), "b": B("ab"), "t": BOOL(true), "z": NULL(),
			"l": L(N("1"), S("a"), L(BOOL(true))), "m": M(item{"x": M(item{"y": N("1")})}), "ts": S("2024-01-02T03:04:05Z")}},
		{"an empty transform copies", `{}`, in},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustCompile(t, "", c.yaml)
			out, keep, err := p.Apply(in)
			if err != nil || !keep {
				t.Fatalf("Apply: %v %v", keep, err)
			}
			if !reflect.DeepEqual(out, c.want) {
				t.Errorf("got  %s\nwant %s", dump(out), dump(c.want))
			}
			if sameMap(out, in) {
				t.Error("a transform must return a new map")
			}
		})
	}
}

func dump(m item) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + show(m[k]) + " ")
	}
	return b.String()
}

func show(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return "S:" + v.Value
	case *types.AttributeValueMemberN:
		return "N:" + v.Value
	case *types.AttributeValueMemberL:
		parts := []string{}
		for _, e := range v.Value {
			parts = append(parts, show(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *types.AttributeValueMemberM:
		return "{" + dump(v.Value) + "}"
	}
	return typeName(av)
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name       string
		spec       Spec
		where      string
		line, col  int
		sourceLine int
		msg        string
	}{
		{"syntax error", Spec{Filter: `item.a == `}, "filter", 1, 11, 0, "Syntax error"},
		{"undeclared name", Spec{Filter: `item.a == foo`}, "filter", 1, 11, 0, "undeclared reference to 'foo'"},
		{"type error", Spec{Filter: `1 + "a" == 2`}, "filter", 1, 3, 0, "no matching overload"},
		{"second line", Spec{Filter: "item.a == 1 &&\n  item.b =="}, "filter", 2, 12, 0, "Syntax error"},
		{"filter not bool", Spec{Filter: `"x"`}, "filter", 0, 0, 0, "must be a bool"},
		{"set error points at the YAML line", Spec{Transform: parse(t, "drop: [x]\nset:\n  ok: item.a\n  bad: item.a +\n")}, "set bad", 1, 9, 4, "Syntax error"},
		{"set of a timestamp", Spec{Transform: &Transform{Set: map[string]string{"t": `timestamp("2024-01-01T00:00:00Z")`}}}, "set t", 0, 0, 0, "no DynamoDB form"},
		{"empty set expression", Spec{Transform: &Transform{Set: map[string]string{"t": " "}}}, "set t", 0, 0, 0, "empty expression"},
		{"bad glob", Spec{Transform: parse(t, "drop:\n  - ok\n  - 'bad\\'\n")}, "drop[1]", 0, 0, 3, "escaping"},
		{"empty glob", Spec{Transform: &Transform{Drop: []string{""}}}, "drop[0]", 0, 0, 0, "empty pattern"},
		{"two renames to one name", Spec{Transform: &Transform{Rename: map[string]string{"a": "c", "b": "c"}}}, "rename b", 0, 0, 0, `"a" and "b" are both renamed to "c"`},
		{"empty rename", Spec{Transform: &Transform{Rename: map[string]string{"a": ""}}}, "rename a", 0, 0, 0, "empty attribute name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.spec)
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *CompileError", err)
			}
			if ce.Where != c.where || ce.Line != c.line || ce.Column != c.col || ce.SourceLine != c.sourceLine || !strings.Contains(ce.Msg, c.msg) {
				t.Errorf("got %+v\nwant where %q at %d:%d, source line %d, message with %q", *ce, c.where, c.line, c.col, c.sourceLine, c.msg)
			}
			if !strings.Contains(err.Error(), c.where) {
				t.Errorf("the message %q does not name %q", err, c.where)
			}
		})
	}
}

func TestCompileErrorMessage(t *testing.T) {
	_, err := Compile(Spec{Transform: parse(t, "set:\n  id2: '\"T#\" + item.pk +'\n")})
	want := `transform line 2: set id2 1:17: Syntax error: mismatched input '<EOF>' expecting`
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), `(in "\"T#\" + item.pk +")`) {
		t.Errorf("err = %v\nwant it to start with %s and to quote the expression", err, want)
	}
}

func parse(t *testing.T, doc string) *Transform {
	t.Helper()
	tr, err := ParseTransform([]byte(doc))
	if err != nil {
		t.Fatalf("ParseTransform: %v", err)
	}
	return tr
}

func TestEvaluationErrors(t *testing.T) {
	in := item{"pk": S("a"), "n": N("1"), "m": M(item{"x": S("y")}), "s": S("str")}
	cases := []struct {
		name   string
		yaml   string
		where  string
		attr   string
		errStr string
	}{
		{"missing attribute", "set:\n  x: item.nope + 1\n", "set", "x", "no such key: nope"},
		{"missing attribute, plain copy", "set:\n  x: item.nope\n", "set", "x", "no such key: nope"},
		{"missing nested attribute", "set:\n  x: item.m.z\n", "set", "x", "no such key: z"},
		{"copy through a non-map", "set:\n  x: item.s.z\n", "set", "x", "item.s is not a map"},
		{"wrong type", "set:\n  x: item.s * 2\n", "set", "x", "no such overload"},
		{"division by zero", "set:\n  x: item.n / 0\n", "set", "x", "division by zero"},
		{"NaN", "set:\n  x: 0.0 / 0.0\n", "set", "x", "NaN"},
		{"int overflow", "set:\n  x: 9223372036854775807 + item.n\n", "set", "x", "overflow"},
		{"infinity", "set:\n  x: 1.0 / 0.0\n", "set", "x", "+Inf"},
		{"a map with int keys", "set:\n  x: '{1: 2}'\n", "set", "x", "string keys"},
		{"a malformed input number", "set:\n  x: item.pk\n  y: item.bad + 1\n", "item", "bad", "invalid number"},
	}
	malformed := item{"pk": S("a"), "n": N("1"), "bad": N("12abc")}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustCompile(t, "", c.yaml)
			it := in
			if c.where == "item" {
				it = malformed
			}
			out, keep, err := p.Apply(it)
			var ie *ItemError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an *ItemError", err)
			}
			if ie.Where != c.where || ie.Attr != c.attr || !strings.Contains(err.Error(), c.errStr) {
				t.Errorf("got %q (%+v), want where %q attr %q containing %q", err, *ie, c.where, c.attr, c.errStr)
			}
			if keep || out != nil {
				t.Errorf("a failed item is kept: %v", out)
			}
		})
	}
}

func TestTransformIgnoresFilter(t *testing.T) {
	p := mustCompile(t, `item.tenant == "acme"`, "rename:\n  pk: id\n")
	in := item{"pk": S("1"), "tenant": S("other")}
	if _, keep, err := p.Apply(in); keep || err != nil {
		t.Fatalf("Apply = %v %v, want rejected", keep, err)
	}
	out, err := p.Transform(in)
	if err != nil || !reflect.DeepEqual(out, item{"id": S("1"), "tenant": S("other")}) {
		t.Errorf("Transform = %v %v", out, err)
	}
}

// TestConcurrentApply runs one program from many goroutines (with -race).
func TestConcurrentApply(t *testing.T) {
	p := mustCompile(t, `item.n % 2 == 0`, "set:\n  half: item.n / 2\n")
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; i < 200; i++ {
				n := int64(g*1000 + i)
				out, keep, err := p.Apply(item{"n": N(itoa(n))})
				if err != nil {
					done <- err
					return
				}
				if keep != (n%2 == 0) || (keep && out["half"].(*types.AttributeValueMemberN).Value != itoa(n/2)) {
					done <- errors.New("wrong result for " + itoa(n))
					return
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func itoa(n int64) string {
	v, _ := fromCEL(celInt(n))
	return v.(*types.AttributeValueMemberN).Value
}
