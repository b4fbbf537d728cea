package transform

import (
	"fmt"
	"testing"
)

// benchItem is an item of the size the backfill benchmark copies: a few
// strings, numbers, a map and a list.
func benchItem(i int) item {
	return item{
		"pk":      S(fmt.Sprintf("item-%07d", i)),
		"tenant":  S([]string{"acme", "globex", "initech"}[i%3]),
		"qty":     N(fmt.Sprint(i % 100)),
		"price":   N("12345678901234567890.123456789012345678"),
		"data":    S("payload of the item, some text to give it weight"),
		"tmpA":    S("scratch"),
		"tmpB":    N("7"),
		"nested":  M(item{"a": S("x"), "b": N("1")}),
		"tags":    L(S("red"), S("green")),
		"enabled": BOOL(true),
	}
}

const benchTransform = `
set:
  id2: '"T#" + item.pk'
drop: ["tmp*"]
rename:
  qty: quantity
`

// BenchmarkApply is the per-item cost on a backfill's hot path: a filter
// plus a three-step transform. The allocations reported are those of one
// item; the output item itself needs a map and the set attribute.
func BenchmarkApply(b *testing.B) {
	for _, bc := range []struct{ name, filter, transform string }{
		{"filter", `item.tenant == "acme" || !has(item.deletedAt)`, ""},
		{"transform", "", benchTransform},
		{"filter+transform", `item.tenant == "acme" || !has(item.deletedAt)`, benchTransform},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := mustCompile(&testing.T{}, bc.filter, bc.transform)
			items := make([]item, 64)
			for i := range items {
				items[i] = benchItem(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := p.Apply(items[i%len(items)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
