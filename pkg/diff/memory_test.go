package diff

import (
	"testing"

	"go.uber.org/zap"
)

// The memory limit is split so that what the merge keeps live stays in a
// quarter of it: records, pages in flight and one compared partition.
func TestMemoryBudget(t *testing.T) {
	b := budgetOf(DefaultMemoryLimit)
	if live := b.records + b.pages + b.compare; live > DefaultMemoryLimit/4 {
		t.Fatalf("budget %+v keeps %d bytes live; want at most a quarter of %d", b, live, DefaultMemoryLimit)
	}
	if b.records != 16<<20 || b.pages != 32<<20 || b.compare != 16<<20 {
		t.Fatalf("budget of 256 MiB = %+v; want 16 MiB of records, 32 MiB of pages, 16 MiB to compare", b)
	}
	for _, c := range []struct {
		items int64
		limit int64
		want  int
	}{
		{1000, DefaultMemoryLimit, 16},
		{2_000_000, DefaultMemoryLimit, 16},     // 192 MB of records: 16 partitions of 12 MB
		{20_000_000, DefaultMemoryLimit, 128},   // 1.9 GB: 128 of 15 MB
		{2_000_000, 1 << 20, 4096},              // capped
		{200_000_000, DefaultMemoryLimit, 2048}, // 19 GB: 2048 of 9 MB
	} {
		if got := partitions(tableSize{items: c.items}, 2, budgetOf(c.limit)); got != c.want {
			t.Errorf("partitions(%d items, limit %d) = %d, want %d", c.items, c.limit, got, c.want)
		}
	}
}

// Scan pages are sized so that one page per segment of every table,
// decoded, fits in the pages' budget; a smaller PageSize wins.
func TestPageLimit(t *testing.T) {
	d := func(parallel int, scanLimit int32, sizes ...tableSize) *Differ {
		return &Differ{cfg: Config{TotalSegments: parallel, PageSize: scanLimit}, log: zap.NewNop(), sizes: sizes}
	}
	small := tableSize{items: 1000, bytes: 150_000} // 150 bytes an item
	big := tableSize{items: 1000, bytes: 3_000_000} // 3 KB
	b := budgetOf(DefaultMemoryLimit)
	for _, c := range []struct {
		name string
		d    *Differ
		b    memoryBudget
		want int32
	}{
		// 32 MiB / 16 scans / 18 = 116,508 bytes: 776 items of 150 bytes.
		{"8 segments, 2 tables", d(8, 0, small, small), b, 776},
		// The largest items of the tables count.
		{"larger slave items", d(8, 0, small, big), b, 38},
		{"unknown sizes: 1 KB", d(8, 0, tableSize{}, tableSize{}), b, 113},
		{"PageSize smaller", d(8, 50, small, small), b, 50},
		{"PageSize larger", d(8, 5000, small, small), b, 776},
		{"at least 25", d(64, 0, big, big), b, 25},
		// 1 GiB: 128 MiB / 16 / 18 = 466 KB of items a page, still
		// under DynamoDB's 1 MB.
		{"1 GiB", d(8, 0, small, small), budgetOf(1 << 30), 3106},
		// 4 GiB: 1.9 MB a page: DynamoDB's 1 MB pages fit.
		{"4 GiB", d(8, 0, small, small), budgetOf(4 << 30), 0},
		{"4 GiB with PageSize", d(8, 100, small, small), budgetOf(4 << 30), 100},
	} {
		if got := c.d.pageLimit(c.b, 2); got != c.want {
			t.Errorf("%s: page limit %d, want %d", c.name, got, c.want)
		}
	}
}
