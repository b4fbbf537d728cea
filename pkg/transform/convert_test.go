package transform

import (
	"math"
	"reflect"
	"strings"
	"testing"

	celtypes "cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestTypeMapping checks what an expression sees of each DynamoDB type,
// through CEL itself: the type() of the attribute and a value test.
func TestTypeMapping(t *testing.T) {
	in := item{
		"s":      S("acme"),
		"n":      N("42"),
		"n0":     N("5.0"),
		"nexp":   N("15e-1"),
		"nfrac":  N("0.1000"),
		"nbig":   N("123456789012345678901234567890"),
		"nmax":   N("9223372036854775807"),
		"nover":  N("9223372036854775808"),
		"nneg":   N("-9223372036854775808"),
		"b":      B("\x00\x01"),
		"bool":   BOOL(true),
		"null":   NULL(),
		"l":      L(S("a"), N("1")),
		"m":      M(item{"x": S("y")}),
		"ss":     &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"ns":     &types.AttributeValueMemberNS{Value: []string{"1", "2.5"}},
		"bs":     &types.AttributeValueMemberBS{Value: [][]byte{[]byte("z")}},
		"emptyL": L(),
	}
	cases := []struct{ filter string }{
		{`type(item.s) == string && item.s == "acme"`},
		{`type(item.n) == int && item.n == 42`},
		{`type(item.n0) == int && item.n0 == 5`},
		{`type(item.nexp) == double && item.nexp == 1.5`},
		{`type(item.nfrac) == double && item.nfrac == 0.1`},
		{`type(item.nbig) == double && item.nbig == 1.2345678901234568e29`},
		{`type(item.nmax) == int && item.nmax == 9223372036854775807`},
		{`type(item.nover) == double`},
		{`type(item.nneg) == int && item.nneg == -9223372036854775807 - 1`},
		{`type(item.b) == bytes && item.b == b"\x00\x01"`},
		{`type(item.bool) == bool && item.bool`},
		{`type(item["null"]) == null_type && item["null"] == null`}, // a reserved word needs []
		{`type(item.l) == list && item.l == ["a", 1]`},
		{`type(item.m) == map && item.m.x == "y"`},
		{`type(item.ss) == list && item.ss.size() == 2 && "a" in item.ss`},
		{`type(item.ns) == list && 1 in item.ns && 2.5 in item.ns`},
		{`type(item.bs) == list && item.bs[0] == b"z"`},
		{`item.emptyL == []`},
		{`item.n > 41.5 && item.nexp < 2`}, // ints and doubles compare
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			p := mustCompile(t, c.filter, "")
			keep, err := p.Filter(in)
			if err != nil || !keep {
				t.Fatalf("Filter = %v, %v; want true", keep, err)
			}
		})
	}
}

func TestNumberToCEL(t *testing.T) {
	cases := []struct {
		in   string
		want ref.Val
	}{
		{"0", celtypes.Int(0)},
		{"-0", celtypes.Int(0)},
		{"0.000", celtypes.Int(0)},
		{"7", celtypes.Int(7)},
		{"+7", celtypes.Int(7)},
		{"-7", celtypes.Int(-7)},
		{"7.000", celtypes.Int(7)},
		{"1e3", celtypes.Int(1000)},
		{"1E3", celtypes.Int(1000)},
		{"12000e-3", celtypes.Int(12)},
		{"0012", celtypes.Int(12)},
		{"9223372036854775807", celtypes.Int(math.MaxInt64)},
		{"-9223372036854775808", celtypes.Int(math.MinInt64)},
		{"9223372036854775808", celtypes.Double(9223372036854775808)},
		{"1e19", celtypes.Double(1e19)},
		{"1e125", celtypes.Double(1e125)},
		{"0.5", celtypes.Double(0.5)},
		{".5", celtypes.Double(0.5)},
		{"-1.25", celtypes.Double(-1.25)},
		{"1e-130", celtypes.Double(1e-130)},
		{"1e-400", celtypes.Double(0)},
	}
	for _, c := range cases {
		got, err := numberToCEL(c.in)
		if err != nil {
			t.Errorf("numberToCEL(%q): %v", c.in, err)
			continue
		}
		if got != c.want || reflect.TypeOf(got) != reflect.TypeOf(c.want) {
			t.Errorf("numberToCEL(%q) = %T %v, want %T %v", c.in, got, got, c.want, c.want)
		}
	}
	for _, bad := range []string{"", "-", ".", "e5", "1e", "1e+", "abc", "1.2.3", "NaN", "Inf", "0x10", "1_000", "1e99999999", "1e400"} {
		if v, err := numberToCEL(bad); err == nil {
			t.Errorf("numberToCEL(%q) = %v, want an error", bad, v)
		}
	}
}

func TestFromCEL(t *testing.T) {
	tenth := 0.1 // a variable, so that Go does not add exactly
	list := celtypes.NewRefValList(celtypes.DefaultTypeAdapter, []ref.Val{celtypes.String("a"), celtypes.Int(1)})
	m := celtypes.NewRefValMap(celtypes.DefaultTypeAdapter, map[ref.Val]ref.Val{celtypes.String("k"): celtypes.Bool(false)})
	cases := []struct {
		in   ref.Val
		want types.AttributeValue
	}{
		{celtypes.String("x"), S("x")},
		{celtypes.String(""), S("")},
		{celtypes.Int(-12), N("-12")},
		{celtypes.Uint(18446744073709551615), N("18446744073709551615")},
		{celtypes.Double(3), N("3")},
		{celtypes.Double(math.Copysign(0, -1)), N("0")},
		{celtypes.Double(1e21), N("1000000000000000000000")},
		{celtypes.Double(tenth + 2*tenth), N("0.30000000000000004")},
		{celtypes.Double(1.5e-7), N("0.00000015")},
		{celtypes.Bytes("ab"), B("ab")},
		{celtypes.Bool(true), BOOL(true)},
		{celtypes.NullValue, NULL()},
		{list, L(S("a"), N("1"))},
		{celtypes.NewRefValList(celtypes.DefaultTypeAdapter, nil), L()},
		{m, M(item{"k": BOOL(false)})},
	}
	for _, c := range cases {
		got, err := fromCEL(c.in)
		if err != nil {
			t.Errorf("fromCEL(%v): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("fromCEL(%v) = %#v, want %#v", c.in, got, c.want)
		}
	}
	bad := []struct {
		in   ref.Val
		want string
	}{
		{celtypes.Double(math.NaN()), "NaN"},
		{celtypes.Double(math.Inf(1)), "+Inf"},
		{celtypes.NewRefValMap(celtypes.DefaultTypeAdapter, map[ref.Val]ref.Val{celtypes.Int(1): celtypes.Int(1)}), "string keys"},
		{celtypes.NewRefValList(celtypes.DefaultTypeAdapter, []ref.Val{celtypes.Double(math.Inf(-1))}), "[0]: "},
		{celtypes.Duration{}, "no DynamoDB form"},
	}
	for _, c := range bad {
		if _, err := fromCEL(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("fromCEL(%v) error = %v, want one containing %q", c.in, err, c.want)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	cases := []struct {
		in     string
		neg    bool
		digits string
		exp    int
	}{
		{"1.50", false, "15", -1},
		{"-100", true, "1", 2},
		{"-0.0", false, "", 0},
		{"0.0012e2", false, "12", -2},
	}
	for _, c := range cases {
		d, err := parseDecimal(c.in)
		if err != nil || d.neg != c.neg || d.digits != c.digits || d.exp != c.exp {
			t.Errorf("parseDecimal(%q) = %+v, %v; want {%v %q %d}", c.in, d, err, c.neg, c.digits, c.exp)
		}
	}
}
