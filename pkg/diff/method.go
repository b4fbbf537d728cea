package diff

import (
	"fmt"
	"math"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Methods of comparison (Config.Method).
const (
	// MethodAuto chooses merge or lookup from DescribeTable's item counts
	// and sizes, whichever is estimated to read fewer units.
	MethodAuto = "auto"
	// MethodMerge scans the master and every slave and compares the two
	// scans by key; differences are confirmed with consistent reads.
	MethodMerge = "merge"
	// MethodLookup scans the master and looks every key up in each slave
	// with BatchGetItem (and, for extra items, the other way round).
	MethodLookup = "lookup"
)

// Methods lists the values Config.Method accepts.
var Methods = []string{MethodAuto, MethodMerge, MethodLookup}

// DefaultMemoryLimit bounds the memory of the merge method (memory.go);
// measured peak RSS with it: 77–86 MB from 250,000 to 1,000,000 items
// (docs/benchmarks.md).
const DefaultMemoryLimit = 256 << 20

// tableSize is what DescribeTable says of a table (updated by DynamoDB
// about every six hours: an estimate).
type tableSize struct {
	items int64
	bytes int64
}

func sizeOf(d *types.TableDescription) tableSize {
	return tableSize{items: aws.ToInt64(d.ItemCount), bytes: aws.ToInt64(d.TableSizeBytes)}
}

// scanRCU is the cost of an eventually consistent Scan of the table: half
// a unit per 4 KB of data read.
func (t tableSize) scanRCU() float64 { return float64(t.bytes) / 4096 * 0.5 }

// itemRCU is the cost of reading one item of the table by key, eventually
// consistent: half a unit per 4 KB of the item, rounded up, at least half
// a unit.
func (t tableSize) itemRCU() float64 {
	if t.items <= 0 {
		return 0.5
	}
	return math.Max(1, math.Ceil(float64(t.bytes)/float64(t.items)/4096)) * 0.5
}

// Estimate is the cost of each method in read capacity units, from
// DescribeTable (confirming re-reads and repairs left out: both methods
// pay them).
type Estimate struct {
	MergeRCU  float64
	LookupRCU float64
}

// estimate prices both methods for one master and its slaves; extras is
// whether slave items the master lacks are looked for.
func estimate(master tableSize, slaves []tableSize, extras bool) Estimate {
	e := Estimate{MergeRCU: master.scanRCU(), LookupRCU: master.scanRCU()}
	for _, s := range slaves {
		e.MergeRCU += s.scanRCU()
		// Every master key is looked up in the slave; what is found is
		// charged by its size, what is not at the minimum.
		e.LookupRCU += float64(master.items) * s.itemRCU()
		if extras {
			e.LookupRCU += s.scanRCU() + float64(s.items)*master.itemRCU()
		}
	}
	return e
}

// chooseMethod settles Config.Method: merge or lookup.
func (d *Differ) chooseMethod(master tableSize, slaves []tableSize) {
	extras := d.cfg.ScanForExtra || d.cfg.DeleteExtra
	d.estimate = estimate(master, slaves, extras)
	switch {
	case d.cfg.ExtraOnly:
		// Only the slaves are scanned: the lookup's extra pass is that.
		d.method = MethodLookup
		return
	case d.cfg.Method == MethodMerge || d.cfg.Method == MethodLookup:
		d.method = d.cfg.Method
	case d.cfg.StartingKey != nil:
		// A starting key is a position in the lookup's serial scan.
		d.method = MethodLookup
	case extras && d.carriers == nil:
		// Extra items cannot be looked up in the master (transform.go).
		d.method = MethodMerge
	case d.estimate.LookupRCU < d.estimate.MergeRCU:
		d.method = MethodLookup
	default:
		d.method = MethodMerge
	}
	how := "chosen"
	if d.cfg.Method == d.method {
		how = "as asked"
	}
	d.log.Info(fmt.Sprintf("method %s (%s); estimated reads from the table sizes: merge %.0f RCU, lookup %.0f RCU, plus consistent re-reads of the differences",
		d.method, how, d.estimate.MergeRCU, d.estimate.LookupRCU))
}
