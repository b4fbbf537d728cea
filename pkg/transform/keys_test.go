package transform

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var (
	hashOnly = KeySchema{Hash: "pk", HashType: types.ScalarAttributeTypeS}
	hashSort = KeySchema{Hash: "pk", HashType: types.ScalarAttributeTypeS, Range: "sk", RangeType: types.ScalarAttributeTypeN}
	binKey   = KeySchema{Hash: "id", HashType: types.ScalarAttributeTypeB}
)

func TestCheckKeys(t *testing.T) {
	cases := []struct {
		name string
		item item
		keys KeySchema
		attr string // "" when valid
		msg  string
	}{
		{"hash only", item{"pk": S("a"), "x": N("1")}, hashOnly, "", ""},
		{"hash and sort", item{"pk": S("a"), "sk": N("1.5")}, hashSort, "", ""},
		{"binary", item{"id": B("\x00")}, binKey, "", ""},
		{"missing hash", item{"x": S("a")}, hashOnly, "pk", "no key attribute pk"},
		{"missing sort", item{"pk": S("a")}, hashSort, "sk", "no key attribute sk"},
		{"wrong type", item{"pk": N("1")}, hashOnly, "pk", "of type N, the output table wants S"},
		{"sort as string", item{"pk": S("a"), "sk": S("1")}, hashSort, "sk", "of type S, the output table wants N"},
		{"a set is no key", item{"pk": &types.AttributeValueMemberSS{Value: []string{"a"}}}, hashOnly, "pk", "of type SS"},
		{"empty string", item{"pk": S("")}, hashOnly, "pk", "cannot be empty"},
		{"empty binary", item{"id": B("")}, binKey, "id", "cannot be empty"},
		{"long partition key", item{"pk": S(strings.Repeat("x", 2049))}, hashOnly, "pk", "2049 bytes"},
		{"longest partition key", item{"pk": S(strings.Repeat("x", 2048))}, hashOnly, "", ""},
		{"long sort key", item{"pk": S("a"), "sk": S(strings.Repeat("x", 1025))}, KeySchema{Hash: "pk", HashType: "S", Range: "sk", RangeType: "S"}, "sk", "1025 bytes"},
		{"bad number", item{"pk": S("a"), "sk": N("1x")}, hashSort, "sk", "invalid number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckKeys(c.item, c.keys)
			if c.attr == "" {
				if err != nil {
					t.Fatalf("CheckKeys: %v", err)
				}
				return
			}
			var ie *ItemError
			if !errors.As(err, &ie) || ie.Where != "key" || ie.Attr != c.attr || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v, want a key *ItemError on %s containing %q", err, c.attr, c.msg)
			}
		})
	}
}

func TestOutputKey(t *testing.T) {
	out := KeySchema{Hash: "id", HashType: "S", Range: "n", RangeType: "N"}
	p := mustCompile(t, `item.tenant == "acme"`, `
set:
  id: '"T#" + item.pk'
  other: item.payload.size()
rename:
  sk: n
`)
	keysOnly := item{"pk": S("a"), "sk": N("7")}
	key, err := p.OutputKey(keysOnly, out)
	if err != nil || !reflect.DeepEqual(key, item{"id": S("T#a"), "n": N("7")}) {
		t.Fatalf("OutputKey = %v, %v", key, err)
	}
	if key["n"] != keysOnly["sk"] {
		t.Error("a renamed key is not the input value")
	}
	// The whole item, where the filter rejects it, has the same key as
	// Transform gives.
	full := item{"pk": S("a"), "sk": N("7"), "tenant": S("other"), "payload": S("xyz")}
	tr, err := p.Transform(full)
	if err != nil || !reflect.DeepEqual(key, item{"id": tr["id"], "n": tr["n"]}) {
		t.Errorf("Transform = %v, %v; OutputKey = %v", tr, err, key)
	}
	// A set on a non-key attribute that would fail is not evaluated...
	if _, err := p.OutputKey(keysOnly, out); err != nil {
		t.Errorf("OutputKey evaluated a non-key attribute: %v", err)
	}
	// ...but one on a key attribute is.
	_, err = p.OutputKey(item{"sk": N("7")}, out)
	var ie *ItemError
	if !errors.As(err, &ie) || ie.Where != "set" || ie.Attr != "id" {
		t.Errorf("err = %v, want the set of id to fail", err)
	}
	// An output key of the wrong type is refused.
	_, err = p.OutputKey(item{"pk": S("a"), "sk": S("7")}, out)
	if !errors.As(err, &ie) || ie.Where != "key" || ie.Attr != "n" {
		t.Errorf("err = %v, want the key n refused", err)
	}
	// Without a transform the key is the input's.
	plain := mustCompile(t, "", "")
	if key, err := plain.OutputKey(full, hashSort); err != nil || key["pk"] != full["pk"] || key["sk"] != full["sk"] || len(key) != 2 {
		t.Errorf("OutputKey without transform = %v, %v", key, err)
	}
}

// TestOutputKeyMatchesApply checks OutputKey against the key of the whole
// transformed item, for transforms that exercise each path.
func TestOutputKeyMatchesApply(t *testing.T) {
	in := item{"pk": S("a"), "sk": N("1"), "x": S("b"), "tmp": S("t")}
	keys := KeySchema{Hash: "pk", HashType: "S", Range: "sk", RangeType: "N"}
	for _, doc := range []string{
		"{}",
		"rename: {x: pk}",
		"rename: {pk: x, x: pk}",
		"rename: {missing: pk}",
		"set: {pk: item.x + item.pk}",
		"set: {pk: \"item.?nope.orValue('d')\"}",
		"drop: ['t*']\nrename: {tmp: pk}",
		"set: {sk: item.sk * 10}\nrename: {sk: old}",
	} {
		p := mustCompile(t, "", doc)
		out, _, err := p.Apply(in)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		key, err := p.OutputKey(in, keys)
		if err != nil {
			t.Fatalf("%s: OutputKey: %v", doc, err)
		}
		if !reflect.DeepEqual(key["pk"], out["pk"]) || !reflect.DeepEqual(key["sk"], out["sk"]) {
			t.Errorf("%s: OutputKey = %v, Apply gives %v", doc, dump(key), dump(out))
		}
	}
}

func TestCheckOutputKey(t *testing.T) {
	cases := []struct {
		doc string
		msg string // "" when accepted
	}{
		{"{}", ""},
		{"drop: [p*]", "drops it"},
		{"drop: [p*]\nset: {pk: '\"x\"'}", ""},
		{"rename: {pk: id}", "renames it to id"},
		{"rename: {pk: id, id: pk}", ""},
		{"drop: [pk]\nrename: {pk2: pk}", ""},
		{"drop: [pk*]\nrename: {pk2: pk}", "drops it"},
	}
	for _, c := range cases {
		p := mustCompile(t, "", c.doc)
		err := p.CheckOutputKey(hashOnly)
		if c.msg == "" {
			if err != nil {
				t.Errorf("%s: %v", c.doc, err)
			}
			continue
		}
		var ce *CompileError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want a *CompileError with %q", c.doc, err, c.msg)
		}
	}
}

func TestKeyDependsOnlyOn(t *testing.T) {
	in := []string{"pk", "sk"}
	cases := []struct {
		name string
		doc  string // "" for no transform
		out  []string
		want bool
	}{
		{"no transform, same key", "", []string{"pk", "sk"}, true},
		{"no transform, another key", "", []string{"tenant"}, false},
		{"rename of a key", "rename: {pk: id}", []string{"id", "sk"}, true},
		{"rename of a non-key", "rename: {tenant: id}", []string{"id"}, false},
		{"a key renamed away", "rename: {pk: id}", []string{"pk"}, false},
		{"a key dropped", "drop: [p*]", []string{"pk"}, false},
		{"set from a key", `set: {id: '"T#" + item.pk'}`, []string{"id"}, true},
		{"set from both keys", `set: {id: 'item.pk + "#" + string(item.sk)'}`, []string{"id"}, true},
		{"set by index", `set: {id: 'item["pk"]'}`, []string{"id"}, true},
		{"set with has of a key", `set: {id: 'has(item.sk) ? item.pk : "x"'}`, []string{"id"}, true},
		{"set with optional select", `set: {id: 'item.?pk.orValue("x")'}`, []string{"id"}, true},
		{"set from a constant", `set: {id: '"fixed"'}`, []string{"id"}, true},
		{"plain copy of a key", `set: {id: item.sk}`, []string{"id"}, true},
		{"set from a non-key", `set: {id: 'item.pk + item.tenant'}`, []string{"id"}, false},
		{"has of a non-key", `set: {id: 'has(item.deleted) ? "d" : item.pk'}`, []string{"id"}, false},
		{"plain copy of a non-key", `set: {id: item.tenant}`, []string{"id"}, false},
		{"nested copy of a non-key", `set: {id: item.m.pk}`, []string{"id"}, false},
		{"item as a whole", `set: {id: 'string(size(item))'}`, []string{"id"}, false},
		{"computed index", `set: {id: 'item[item.pk]'}`, []string{"id"}, false},
		{"macro over item", `set: {id: 'item.exists(k, k == "x") ? "a" : "b"'}`, []string{"id"}, false},
		{"macro over a key", `set: {id: '[item.pk].map(x, x + "!")[0]'}`, []string{"id"}, true},
		{"member call on a non-key", `set: {id: 'item.tenant.lowerAscii()'}`, []string{"id"}, false},
		{"set of a non-key output attribute only", `set: {x: item.tenant}`, []string{"pk"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustCompile(t, "", c.doc)
			if got := p.KeyDependsOnlyOn(in, c.out); got != c.want {
				t.Errorf("KeyDependsOnlyOn = %v, want %v", got, c.want)
			}
		})
	}
}
