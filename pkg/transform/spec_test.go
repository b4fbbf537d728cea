package transform

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseTransform(t *testing.T) {
	tr, err := ParseTransform([]byte(`
set:
  id2: '"T#" + item.pk'
  n: 5
drop: ["tmp*", "aws:rep:*"]
rename:
  qty: quantity
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Transform{
		Set:    map[string]string{"id2": `"T#" + item.pk`, "n": "5"},
		Drop:   []string{"tmp*", "aws:rep:*"},
		Rename: map[string]string{"qty": "quantity"},
	}
	if !reflect.DeepEqual(tr.Set, want.Set) || !reflect.DeepEqual(tr.Drop, want.Drop) || !reflect.DeepEqual(tr.Rename, want.Rename) {
		t.Errorf("got %+v, want %+v", tr, want)
	}
	if tr.line("set\x00id2") != 3 || tr.line("drop\x001") != 5 || tr.line("rename\x00qty") != 7 {
		t.Errorf("lines = %v", tr.lines)
	}
	for _, empty := range []string{"", "  \n", "{}", "set:\ndrop:\nrename:\n"} {
		tr, err := ParseTransform([]byte(empty))
		if err != nil || len(tr.Set)+len(tr.Drop)+len(tr.Rename) != 0 {
			t.Errorf("ParseTransform(%q) = %+v, %v; want an empty transform", empty, tr, err)
		}
	}
}

func TestParseTransformErrors(t *testing.T) {
	cases := []struct {
		doc  string
		line int
		msg  string
	}{
		{"set:\n  a: x\nfilter: y\n", 3, `unknown key "filter"`},
		{"sets:\n  a: x\n", 1, `unknown key "sets"`},
		{"drop: tmp*\n", 1, "drop must be a list"},
		{"drop:\n  - [a]\n", 2, "each pattern must be a string"},
		{"set: [a]\n", 1, "set must be a mapping"},
		{"set:\n  a: [1]\n", 2, "a name and a single value"},
		{"rename:\n  a: b\n  a: c\n", 3, `"a" appears twice`},
		{"drop: [a]\ndrop: [b]\n", 2, `key "drop" appears twice`},
		{"- a\n", 1, "a transform is a mapping"},
		{"set: {a: 'x'\n", 0, "did not find expected"},
	}
	for _, c := range cases {
		_, err := ParseTransform([]byte(c.doc))
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Errorf("ParseTransform(%q) = %v, want a *CompileError", c.doc, err)
			continue
		}
		if ce.Where != "transform" || ce.SourceLine != c.line || !strings.Contains(ce.Msg, c.msg) {
			t.Errorf("ParseTransform(%q) = %+v, want line %d and %q", c.doc, *ce, c.line, c.msg)
		}
	}
}

// TestTransformInPlan checks that a Transform embedded in a larger YAML
// document (a plan entry) is decoded with the same strictness.
func TestTransformInPlan(t *testing.T) {
	var entry struct {
		Table     string     `yaml:"table"`
		Transform *Transform `yaml:"transform"`
	}
	err := yaml.Unmarshal([]byte("table: t\ntransform:\n  rename: {a: b}\n"), &entry)
	if err != nil || entry.Transform == nil || entry.Transform.Rename["a"] != "b" {
		t.Fatalf("got %+v, %v", entry.Transform, err)
	}
	err = yaml.Unmarshal([]byte("table: t\ntransform:\n  rename: {a: b}\n  dorp: [x]\n"), &entry)
	var ce *CompileError
	if !errors.As(err, &ce) || ce.SourceLine != 4 || !strings.Contains(ce.Msg, `unknown key "dorp"`) {
		t.Errorf("err = %v, want the unknown key at line 4", err)
	}
}
