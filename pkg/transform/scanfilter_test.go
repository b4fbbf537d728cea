package transform

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestScanFilter(t *testing.T) {
	cases := []struct {
		filter string
		// want is the FilterExpression with names and values written
		// in: "" when nothing can be pushed.
		want string
	}{
		{`item.tenant == "acme"`, `(attribute_not_exists (tenant)) OR (tenant = "acme")`},
		{`"acme" == item.tenant`, `(attribute_not_exists (tenant)) OR (tenant = "acme")`},
		{`item["aws:rep:x"] == "r"`, `(attribute_not_exists (aws:rep:x)) OR (aws:rep:x = "r")`},
		{`item["a.b"] == "r"`, `(attribute_not_exists (a.b)) OR (a.b = "r")`},
		{`item.active == true`, `(attribute_not_exists (active)) OR (active = true)`},
		{`item.qty == 5`, `(attribute_not_exists (qty)) OR (qty BETWEEN 4 AND 6)`},
		{`item.qty == -4503599627370495`, `(attribute_not_exists (qty)) OR (qty BETWEEN -4503599627370496 AND -4503599627370494)`},
		{`has(item.tenant)`, `attribute_exists (tenant)`},
		{`item.tenant == "acme" && item.kind == "order"`,
			`((attribute_not_exists (tenant)) OR (tenant = "acme")) AND ((attribute_not_exists (kind)) OR (kind = "order"))`},
		{`has(item.a) && item.a == "x" && item.b == false`,
			`(attribute_exists (a)) AND ((attribute_not_exists (a)) OR (a = "x")) AND ((attribute_not_exists (b)) OR (b = false))`},
		// Conjuncts that cannot be pushed stay with the client only.
		{`item.tenant == "acme" && !has(item.deletedAt)`, `(attribute_not_exists (tenant)) OR (tenant = "acme")`},
		{`item.n > 5 && item.tenant == "acme"`, `(attribute_not_exists (tenant)) OR (tenant = "acme")`},
		{`item.tenant == "acme" || item.tenant == "beta"`, ""},
		{`!(item.tenant == "acme")`, ""},
		{`item.tenant != "acme"`, ""},
		{`item.qty == 5.0`, ""},
		{`item.qty == 5u`, ""},
		{`item.qty == 4503599627370496`, ""},
		{`item.m.x == "a"`, ""},
		{`item.a == item.b`, ""},
		{`item.tags == ["a"]`, ""},
		{`item["l[0]"] == "x"`, ""},
		{`true`, ""},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			p := mustCompile(t, c.filter, "")
			cond, ok := p.ScanFilter()
			if c.want == "" {
				if ok {
					t.Fatalf("ScanFilter pushed %s", render(t, cond))
				}
				return
			}
			if !ok {
				t.Fatal("ScanFilter = false")
			}
			if got := render(t, cond); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// render builds the condition and writes its names and values in place.
func render(t *testing.T, cond expression.ConditionBuilder) string {
	t.Helper()
	e, err := expression.NewBuilder().WithFilter(cond).Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	s := *e.Filter()
	// Substitute longest placeholders first (#10 before #1).
	for i := 20; i >= 0; i-- {
		for _, ph := range []string{"#" + itoa(int64(i)), ":" + itoa(int64(i))} {
			var repl string
			if name, ok := e.Names()[ph]; ok {
				repl = name
			} else if v, ok := e.Values()[ph]; ok {
				switch v := v.(type) {
				case *types.AttributeValueMemberS:
					repl = `"` + v.Value + `"`
				case *types.AttributeValueMemberN:
					repl = v.Value
				case *types.AttributeValueMemberBOOL:
					repl = map[bool]string{true: "true", false: "false"}[v.Value]
				default:
					t.Fatalf("value %s: %#v", ph, v)
				}
			} else {
				continue
			}
			s = strings.ReplaceAll(s, ph, repl)
		}
	}
	return s
}

// TestScanFilterIsASuperset checks, item by item, that every item the CEL
// filter keeps or fails on also satisfies the pushed condition, evaluated
// here with DynamoDB's rules for the few forms ScanFilter emits.
func TestScanFilterIsASuperset(t *testing.T) {
	p := mustCompile(t, `item.tenant == "acme" && item.qty == 5 && has(item.pk)`, "")
	items := []item{
		{"pk": S("1"), "tenant": S("acme"), "qty": N("5")},
		{"pk": S("2"), "tenant": S("acme"), "qty": N("5.000")},
		{"pk": S("3"), "tenant": S("acme"), "qty": N("5.00000000000000000000000000001")},
		{"pk": S("4"), "tenant": S("acme"), "qty": N("4.99999999999999999999999999999")},
		{"pk": S("5"), "tenant": S("acme")},
		{"pk": S("6"), "qty": N("5")},
		{"pk": S("7"), "tenant": S("beta"), "qty": N("5")},
		{"pk": S("8"), "tenant": S("acme"), "qty": N("6")},
		{"pk": S("9"), "tenant": S("acme"), "qty": S("5")},
		{"tenant": S("acme"), "qty": N("5")},
	}
	for _, it := range items {
		keep, err := p.Filter(it)
		pushed := pushedKeeps(it)
		if (keep || err != nil) && !pushed {
			t.Errorf("%s: the filter gives %v, %v but the pushed condition drops the item", dump(it), keep, err)
		}
	}
	if reflect.DeepEqual(items[0], items[1]) {
		t.Fatal("test items must differ")
	}
}

// pushedKeeps is DynamoDB's verdict on the condition TestScanFilterIsASuperset
// pushes: (no tenant or tenant = "acme") and (no qty or qty between 4 and
// 6) and pk exists, numbers compared exactly.
func pushedKeeps(it item) bool {
	if v, ok := it["tenant"]; ok {
		if s, isS := v.(*types.AttributeValueMemberS); !isS || s.Value != "acme" {
			return false
		}
	}
	if v, ok := it["qty"]; ok {
		n, isN := v.(*types.AttributeValueMemberN)
		if !isN {
			return false
		}
		d, _ := parseDecimal(n.Value)
		// Exact comparison with 4 and 6: the integer part (digits with
		// exponent) must be 4, or 5, or 6 with nothing after.
		if cmp := compareDecimal(d, 4); cmp < 0 {
			return false
		}
		if cmp := compareDecimal(d, 6); cmp > 0 {
			return false
		}
	}
	_, ok := it["pk"]
	return ok
}

// compareDecimal compares a non-negative decimal with a one-digit integer.
func compareDecimal(d decimal, k int) int {
	if d.neg {
		return -1
	}
	if d.digits == "" {
		if k == 0 {
			return 0
		}
		return -1
	}
	lead := int(d.digits[0] - '0')
	intDigits := len(d.digits) + d.exp // digits before the point
	switch {
	case intDigits > 1:
		return 1
	case intDigits < 1:
		return -1
	case lead != k:
		if lead < k {
			return -1
		}
		return 1
	case len(d.digits) > 1:
		return 1
	}
	return 0
}
