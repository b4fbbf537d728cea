package diff

import (
	"fmt"
	"math/bits"
)

// The memory of a merge diff. Config.MemoryLimit bounds the memory of
// the whole diff, not only of the records it keeps, and in what Go
// really spends, not in encoded bytes:
//
//   - Go's collector lets the heap grow to about twice what is live
//     before it collects (GOGC=100), and the runtime, the stacks and the
//     SDK's connections need some more: what the merge keeps live is
//     held to a quarter of the limit;
//   - of that quarter, the Scan pages being decoded take half: the SDK
//     decodes a page into a JSON document tree and then into typed
//     attribute values, about decodeFactor times DynamoDB's size of the
//     page's items (17.5 MB allocated for a 1 MB page of bench/diff's
//     items, 8.5 MB of it still live once decoded), and every segment of
//     every table has one page in flight;
//   - a quarter of it (a sixteenth of the limit) holds the scanned
//     records (key and digest) in memory, counted by the capacity of
//     their buffers; past it they spill to disk;
//   - the last quarter holds one partition of every table loaded for the
//     comparison (recordBytes a record).
//
// Measured with the default limit (256 MiB), bench/diff at --parallel 8:
// peak RSS of 77-86 MB at 250,000 to 1,000,000 items per table
// (docs/benchmarks.md), against 225 MB at 1,000,000 when the records
// alone were counted against the limit.
type memoryBudget struct {
	records int64 // scanned records kept in memory before they spill
	pages   int64 // Scan pages being decoded, all segments of all tables
	compare int64 // one partition of every table, loaded for comparison
}

func budgetOf(limit int64) memoryBudget {
	live := max(limit/4, 1)
	return memoryBudget{records: max(live/4, 1), pages: max(live/2, 1), compare: max(live/4, 1)}
}

// recordBytes estimates the memory a record takes while compared (key,
// digest, the rec and string headers, the slice's growth).
const recordBytes = 96

// decodeFactor is the memory the SDK takes to decode a Scan page, per
// byte of its items as DynamoDB counts them (see above).
const decodeFactor = 18

// partitions chooses the number of partitions (a power of two, 16 to
// 4096) so that one partition of every table fits in the comparison's
// budget.
func partitions(total tableSize, sides int, b memoryBudget) int {
	est := (total.items + int64(sides)) * recordBytes
	p := est / b.compare
	if p < 16 {
		return 16
	}
	n := 1 << bits.Len64(uint64(p))
	return min(n, 4096)
}

// pageLimit sizes the Scan pages so that one page per segment of every
// table, decoded, fits in the pages' budget: items of the tables' largest
// average size (1 KB when DescribeTable knows none), at least 25 a page;
// 0 (DynamoDB's 1 MB pages) when those fit. Config.PageSize, when
// smaller, wins.
func (d *Differ) pageLimit(b memoryBudget, tables int) int32 {
	const maxPage = 1 << 20 // DynamoDB's page: 1 MB of items
	avg := int64(0)
	for _, t := range d.sizes {
		if t.items > 0 && t.bytes > 0 {
			avg = max(avg, t.bytes/t.items)
		}
	}
	if avg == 0 {
		avg = 1024
	}
	scans := int64(tables * max(d.cfg.TotalSegments, 1))
	page := b.pages / scans / decodeFactor
	limit := int32(0)
	if page < maxPage {
		limit = int32(max(25, min(page/max(avg, 1), 1<<20)))
		d.log.Debug(fmt.Sprintf("merge: Scan pages of at most %d items (%d scans at once, items of about %d bytes, %d MiB for the pages in flight)",
			limit, scans, avg, b.pages>>20))
	}
	if c := d.cfg.PageSize; c > 0 && (limit == 0 || c < limit) {
		limit = c
	}
	return limit
}
