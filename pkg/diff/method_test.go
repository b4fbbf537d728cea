package diff

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The estimates: the merge costs two scans, the lookup a scan plus one
// read unit (half, eventually consistent) per master item and slave,
// rounded up per 4 KB of item; extra items double the lookup.
func TestEstimate(t *testing.T) {
	same := tableSize{items: 100_000, bytes: 30_000_000} // 300-byte items
	e := estimate(same, []tableSize{same}, false)
	if e.MergeRCU >= e.LookupRCU {
		t.Fatalf("equal tables: merge %.0f, lookup %.0f; merge should be cheaper", e.MergeRCU, e.LookupRCU)
	}
	scan := 30_000_000.0 / 4096 * 0.5
	if e.MergeRCU != 2*scan || e.LookupRCU != scan+100_000*0.5 {
		t.Fatalf("equal tables: %+v", e)
	}
	withExtra := estimate(same, []tableSize{same}, true)
	if withExtra.MergeRCU != e.MergeRCU || withExtra.LookupRCU != 2*e.LookupRCU {
		t.Fatalf("with extra items: %+v", withExtra)
	}
	small := tableSize{items: 1000, bytes: 300_000}
	large := tableSize{items: 10_000_000, bytes: 3_000_000_000}
	if e := estimate(small, []tableSize{large}, false); e.LookupRCU >= e.MergeRCU {
		t.Fatalf("small master, large slave: %+v; the lookup should be cheaper", e)
	}
	big := tableSize{items: 10, bytes: 10 * 9000} // 9 KB items: 3 units each
	if got := big.itemRCU(); got != 1.5 {
		t.Fatalf("item of 9 KB costs %v RCU, want 1.5", got)
	}
}

// The digest is equal exactly when Compare finds the items equal.
func TestDigestFollowsCompare(t *testing.T) {
	ign, _ := NewMatcher([]string{"aws:rep:*"})
	g := digester{ignore: ign}
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	base := item{"pk": s("a"), "n": n("1.50"), "ss": &types.AttributeValueMemberSS{Value: []string{"x", "y"}},
		"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"a": n("1"), "b": s("2")}},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("p"), s("q")}}, "aws:rep:updatetime": n("1")}
	variants := []item{
		{"pk": s("a"), "n": n("1.5"), "ss": &types.AttributeValueMemberSS{Value: []string{"y", "x", "x"}},
			"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"b": s("2"), "a": n("1.0")}},
			"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("p"), s("q")}}, "aws:rep:updatetime": n("2")},
		{"pk": s("a"), "n": n("1.5"), "ss": &types.AttributeValueMemberSS{Value: []string{"x", "y"}},
			"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"a": n("1"), "b": s("2")}},
			"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("q"), s("p")}}},
		{"pk": s("a"), "n": n("1.5"), "ss": &types.AttributeValueMemberSS{Value: []string{"x", "y"}},
			"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"a": n("1"), "b": n("2")}},
			"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("p"), s("q")}}},
		{"pk": s("a"), "n": n("1.5"), "ss": &types.AttributeValueMemberSS{Value: []string{"x", "y"}},
			"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"a": n("1"), "b": s("2")}},
			"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("p"), s("q")}}, "extra": &types.AttributeValueMemberNULL{Value: true}},
	}
	want := g.sum(base)
	for i, v := range variants {
		equal := Compare(base, v, ign) == nil
		if got := g.sum(v) == want; got != equal {
			t.Errorf("variant %d: digests equal %v, Compare equal %v", i, got, equal)
		}
	}
}

// Keys come back from their records exactly.
func TestDecodeKey(t *testing.T) {
	d := &Differ{}
	d.keys.Hash, d.keys.Range = "id", "seq"
	d.out = d.keys
	k := item{"id": &types.AttributeValueMemberB{Value: []byte{0, 1, 0xff}}, "seq": &types.AttributeValueMemberN{Value: "10036651427894288409"}}
	got, err := d.decodeKey(d.keys.KeyString(k))
	if err != nil {
		t.Fatal(err)
	}
	if d.keys.KeyString(got) != d.keys.KeyString(k) || FormatKeyJSON(got) != FormatKeyJSON(k) {
		t.Fatalf("decoded %s, want %s", FormatKeyJSON(got), FormatKeyJSON(k))
	}
}
