package transform

import (
	"bytes"
	"math"
	"strconv"
	"testing"

	celtypes "cel.dev/cel-go/common/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// FuzzNumber checks that any number text numberToCEL accepts comes back
// from fromCEL as the same number: exactly for ints, as the same double
// otherwise.
func FuzzNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "5.0", "0.1000", "123456789012345678901234567890", "9223372036854775807",
		"9223372036854775808", "-9223372036854775809", "1e-130", "9.9999999999999999999999999999999999999E+125", ".5", "1e400", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := numberToCEL(s)
		if err != nil {
			if _, perr := parseDecimal(s); perr == nil {
				if fv, ferr := strconv.ParseFloat(s, 64); ferr == nil && !math.IsInf(fv, 0) {
					t.Fatalf("numberToCEL(%q) refused a number: %v", s, err)
				}
			}
			return
		}
		av, err := fromCEL(v)
		if err != nil {
			t.Fatalf("fromCEL(%v) from %q: %v", v, s, err)
		}
		out := av.(*types.AttributeValueMemberN).Value
		switch c := v.(type) {
		case celtypes.Int:
			in, _ := parseDecimal(s)
			back, err := parseDecimal(out)
			if err != nil || in != back {
				t.Fatalf("int %q came back as %q", s, out)
			}
		case celtypes.Double:
			back, err := strconv.ParseFloat(out, 64)
			if err != nil || back != float64(c) {
				t.Fatalf("double %q (%v) came back as %q", s, float64(c), out)
			}
			if again, err := numberToCEL(out); err != nil || again.Equal(v) != celtypes.True {
				t.Fatalf("%q read again gives %v, %v; want %v", out, again, err, v)
			}
		default:
			t.Fatalf("numberToCEL(%q) = %T", s, v)
		}
	})
}

// FuzzRoundTrip builds an item from the fuzzer's bytes, converts it to
// CEL and back, and checks the result against the conversion rules (sets
// become lists, numbers keep their value); then checks that a transform
// that touches nothing passes every attribute through as the same value.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c', 1, 2, '4', '2'})
	f.Add([]byte{7, 2, 0, 1, 'x', 1, 5, '0', '.', '1', '0', '0', 8, 1, 3, 'a', 'b', 'c'})
	f.Add([]byte{6, 3, 1, 3, '1', 'e', '5', 5, 3, 9, 1, 0xff, 4, 2})
	p, err := Compile(Spec{Filter: "true", Transform: &Transform{Drop: []string{"zz*"}, Rename: map[string]string{"zz": "yy"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gen{data: data}
		it := item{}
		for i := 0; g.more() && i < 8; i++ {
			it["a"+strconv.Itoa(i)] = g.value(0)
		}
		v, err := toCEL(M(it))
		if err != nil {
			t.Fatalf("toCEL: %v", err)
		}
		back, err := fromCEL(v)
		if err != nil {
			t.Fatalf("fromCEL: %v", err)
		}
		checkEquivalent(t, "item", M(it), back)

		out, keep, err := p.Apply(it)
		if err != nil || !keep || len(out) != len(it) {
			t.Fatalf("Apply = %d attributes, %v, %v", len(out), keep, err)
		}
		for name, av := range it {
			if out[name] != av {
				t.Fatalf("%s was not passed through", name)
			}
		}
	})
}

// gen turns bytes into attribute values.
type gen struct{ data []byte }

func (g *gen) more() bool { return len(g.data) > 0 }

func (g *gen) byte() byte {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return b
}

func (g *gen) bytes() []byte {
	n := int(g.byte() % 16)
	if n > len(g.data) {
		n = len(g.data)
	}
	b := append([]byte{}, g.data[:n]...)
	g.data = g.data[n:]
	return b
}

// number makes a valid DynamoDB number from the next bytes.
func (g *gen) number() string {
	raw := g.bytes()
	var digits []byte
	for _, c := range raw {
		digits = append(digits, '0'+c%10)
	}
	if len(digits) == 0 {
		digits = []byte{'0'}
	}
	s := string(digits)
	if p := int(g.byte()) % (len(digits) + 1); p < len(digits) && p > 0 {
		s = s[:p] + "." + s[p:]
	}
	if g.byte()%2 == 1 {
		s = "-" + s
	}
	if e := int(g.byte()); e%3 == 0 {
		s += "e" + strconv.Itoa(e%100-50)
	}
	return s
}

func (g *gen) value(depth int) types.AttributeValue {
	kind := g.byte() % 10
	if depth > 3 && kind >= 5 && kind <= 6 {
		kind = 0
	}
	switch kind {
	case 0:
		return S(string(g.bytes()))
	case 1:
		return N(g.number())
	case 2:
		return &types.AttributeValueMemberB{Value: g.bytes()}
	case 3:
		return BOOL(g.byte()%2 == 1)
	case 4:
		return NULL()
	case 5:
		var l []types.AttributeValue
		for n := g.byte() % 4; n > 0; n-- {
			l = append(l, g.value(depth+1))
		}
		return L(l...)
	case 6:
		m := item{}
		for n := g.byte() % 4; n > 0; n-- {
			m[string(g.bytes())] = g.value(depth + 1)
		}
		return M(m)
	case 7:
		ss := &types.AttributeValueMemberSS{}
		for n := g.byte()%3 + 1; n > 0; n-- {
			ss.Value = append(ss.Value, string(g.bytes()))
		}
		return ss
	case 8:
		ns := &types.AttributeValueMemberNS{}
		for n := g.byte()%3 + 1; n > 0; n-- {
			ns.Value = append(ns.Value, g.number())
		}
		return ns
	default:
		bs := &types.AttributeValueMemberBS{}
		for n := g.byte()%3 + 1; n > 0; n-- {
			bs.Value = append(bs.Value, g.bytes())
		}
		return bs
	}
}

// checkEquivalent checks got against the conversion rules applied to in.
func checkEquivalent(t *testing.T, path string, in, got types.AttributeValue) {
	t.Helper()
	fail := func() { t.Fatalf("%s: %s came back as %s", path, show(in), show(got)) }
	switch v := in.(type) {
	case *types.AttributeValueMemberS:
		if g, ok := got.(*types.AttributeValueMemberS); !ok || g.Value != v.Value {
			fail()
		}
	case *types.AttributeValueMemberN:
		g, ok := got.(*types.AttributeValueMemberN)
		if !ok {
			fail()
		}
		want, _ := numberToCEL(v.Value)
		have, err := numberToCEL(g.Value)
		if err != nil || want.Equal(have) != celtypes.True {
			t.Fatalf("%s: number %s came back as %s", path, v.Value, g.Value)
		}
	case *types.AttributeValueMemberB:
		if g, ok := got.(*types.AttributeValueMemberB); !ok || !bytes.Equal(g.Value, v.Value) {
			fail()
		}
	case *types.AttributeValueMemberBOOL:
		if g, ok := got.(*types.AttributeValueMemberBOOL); !ok || g.Value != v.Value {
			fail()
		}
	case *types.AttributeValueMemberNULL:
		if _, ok := got.(*types.AttributeValueMemberNULL); !ok {
			fail()
		}
	case *types.AttributeValueMemberL:
		g, ok := got.(*types.AttributeValueMemberL)
		if !ok || len(g.Value) != len(v.Value) {
			fail()
		}
		for i := range v.Value {
			checkEquivalent(t, path+"["+strconv.Itoa(i)+"]", v.Value[i], g.Value[i])
		}
	case *types.AttributeValueMemberM:
		g, ok := got.(*types.AttributeValueMemberM)
		if !ok || len(g.Value) != len(v.Value) {
			fail()
		}
		for k := range v.Value {
			checkEquivalent(t, path+"."+k, v.Value[k], g.Value[k])
		}
	case *types.AttributeValueMemberSS:
		l := make([]types.AttributeValue, len(v.Value))
		for i, s := range v.Value {
			l[i] = S(s)
		}
		checkEquivalent(t, path, L(l...), got)
	case *types.AttributeValueMemberNS:
		l := make([]types.AttributeValue, len(v.Value))
		for i, s := range v.Value {
			l[i] = N(s)
		}
		checkEquivalent(t, path, L(l...), got)
	case *types.AttributeValueMemberBS:
		l := make([]types.AttributeValue, len(v.Value))
		for i, b := range v.Value {
			l[i] = &types.AttributeValueMemberB{Value: b}
		}
		checkEquivalent(t, path, L(l...), got)
	default:
		t.Fatalf("%s: unexpected %T", path, in)
	}
}
