package diff_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/diff"
	"github.com/ddbsync/ddbsync/pkg/retry"
)

// fastBackoff keeps the tests' retries short.
var fastBackoff = retry.Backoff{Base: time.Millisecond, Max: 20 * time.Millisecond}

// DynamoDB Local normalises numbers and sorts set elements on write, so
// these cases are unit tests.
func TestEqualSemantics(t *testing.T) {
	m := func(kv ...any) map[string]av {
		out := map[string]av{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1].(av)
		}
		return out
	}
	l := func(v ...av) av { return &types.AttributeValueMemberL{Value: v} }
	mm := func(kv ...any) av { return &types.AttributeValueMemberM{Value: m(kv...)} }
	bs := func(v ...[]byte) av { return &types.AttributeValueMemberBS{Value: v} }
	cases := []struct {
		name  string
		a, b  av
		equal bool
	}{
		{"1.50 = 1.5", n("1.50"), n("1.5"), true},
		{"1e2 = 100", n("1e2"), n("100"), true},
		{"-0 = 0.000", n("-0"), n("0.000"), true},
		{"0.1E+1 = 1", n("0.1E+1"), n("1"), true},
		{"20 digits differ in the last", n("10036651427894288408"), n("10036651427894288409"), false},
		{"38 digits differ in the last", n("1234567890123456789012345678901234567.8"), n("1234567890123456789012345678901234567.9"), false},
		{"N vs S", n("1"), s("1"), false},
		{"SS order", ss("a", "b", "c"), ss("c", "a", "b"), true},
		{"SS differ", ss("a", "b"), ss("a", "c"), false},
		{"SS size", ss("a", "b"), ss("a", "b", "c"), false},
		{"NS by value", ns("1.0", "2e1", "3"), ns("20", "3", "1"), true},
		{"NS differ", ns("1", "2"), ns("1", "2.0001"), false},
		{"BS order", bs([]byte{1}, []byte{2, 3}), bs([]byte{2, 3}, []byte{1}), true},
		{"BS differ", bs([]byte{1}), bs([]byte{2}), false},
		{"B", b([]byte{0, 1}), b([]byte{0, 1}), true},
		{"B differ", b([]byte{0, 1}), b([]byte{0, 2}), false},
		{"L order matters", l(s("a"), s("b")), l(s("b"), s("a")), false},
		{"L deep numbers", l(n("1.0"), mm("x", n("2.50"))), l(n("1"), mm("x", n("2.5"))), true},
		{"M key order", mm("a", s("1"), "b", ns("2", "1")), mm("b", ns("1", "2"), "a", s("1")), true},
		{"M extra key", mm("a", s("1")), mm("a", s("1"), "b", s("2")), false},
		{"M empty", mm(), mm(), true},
		{"BOOL", &types.AttributeValueMemberBOOL{Value: true}, &types.AttributeValueMemberBOOL{Value: false}, false},
		{"NULL", &types.AttributeValueMemberNULL{Value: true}, &types.AttributeValueMemberNULL{Value: true}, true},
		{"NULL vs BOOL", &types.AttributeValueMemberNULL{Value: true}, &types.AttributeValueMemberBOOL{Value: true}, false},
	}
	for _, tc := range cases {
		if got := diff.Equal(tc.a, tc.b); got != tc.equal {
			t.Errorf("%s: Equal = %v, want %v", tc.name, got, tc.equal)
		}
		if got := diff.Equal(tc.b, tc.a); got != tc.equal {
			t.Errorf("%s (swapped): Equal = %v, want %v", tc.name, got, tc.equal)
		}
	}
}

func TestCompareNamesDifferingAttributes(t *testing.T) {
	master := map[string]av{"pk": s("k"), "a": n("1.50"), "b": ss("x", "y"), "c": s("m"), "gone": s("1"), "aws:rep:x": s("1")}
	slave := map[string]av{"pk": s("k"), "a": n("1.5"), "b": ss("y", "x"), "c": s("s"), "new": s("1"), "aws:rep:x": s("2")}
	ign, err := diff.NewMatcher([]string{"aws:rep:*"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(diff.Compare(master, slave, ign), ",")
	if got != "c,gone,new" {
		t.Fatalf("Compare = %q, want c,gone,new", got)
	}
	if d := diff.Compare(master, master, nil); d != nil {
		t.Fatalf("Compare(x, x) = %v", d)
	}
	if _, err := diff.NewMatcher([]string{"[bad"}); err == nil {
		t.Fatal("a malformed glob was accepted")
	}
}

func TestKeyJSONRoundTrip(t *testing.T) {
	key := map[string]av{"id": b([]byte{0, 0xff, 7}), "seq": n("10036651427894288409"), "s": s(`quote " and ☃`)}
	text := diff.FormatKeyJSON(key)
	back, err := diff.ParseKeyJSON(text)
	if err != nil {
		t.Fatal(err)
	}
	if diff.FormatKeyJSON(back) != text {
		t.Fatalf("round trip: %s != %s", diff.FormatKeyJSON(back), text)
	}
	if !diff.Equal(back["seq"], key["seq"]) || !diff.Equal(back["id"], key["id"]) || !diff.Equal(back["s"], key["s"]) {
		t.Fatalf("round trip changed values: %v", back)
	}
	for _, bad := range []string{``, `{}`, `[1]`, `{"pk":"abc"}`, `{"pk":{"N":"abc"}}`, `{"pk":{"B":"!!"}}`, `{"pk":{"SS":["a"]}}`, `{"pk":{"S":"a","N":"1"}}`} {
		if _, err := diff.ParseKeyJSON(bad); err == nil {
			t.Errorf("ParseKeyJSON(%q) accepted", bad)
		}
	}
}
