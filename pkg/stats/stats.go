// Package stats holds the live counters of a run. Engines write them; the
// status display, the progress log, the final summary, --output json and
// the Prometheus endpoint all read the same values, so they always agree.
package stats

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Phase is the state of one phase (backfill, stream, diff) of an entry.
type Phase int32

const (
	Pending Phase = iota
	Running
	Complete
	Skipped
	Failed
	Stopped // interrupted before done; progress is checkpointed
)

func (p Phase) String() string {
	switch p {
	case Pending:
		return "pending"
	case Running:
		return "running"
	case Complete:
		return "complete"
	case Skipped:
		return "skipped"
	case Failed:
		return "failed"
	case Stopped:
		return "stopped"
	}
	return "unknown"
}

// Float is an atomically updated float64.
type Float struct{ bits atomic.Uint64 }

// Add adds d.
func (f *Float) Add(d float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// Load returns the value.
func (f *Float) Load() float64 { return math.Float64frombits(f.bits.Load()) }

// Store sets the value.
func (f *Float) Store(v float64) { f.bits.Store(math.Float64bits(v)) }

// Entry holds the counters of one plan entry (one input → output pair, or
// one master → slave pair for diff). All fields are safe for concurrent
// use; a nil *Entry is not.
type Entry struct {
	Input  string // "region:table" or table
	Output string

	// Table facts from DescribeTable, for progress estimates.
	ApproxItems atomic.Int64
	ApproxBytes atomic.Int64

	BackfillPhase atomic.Int32 // Phase
	StreamPhase   atomic.Int32 // Phase
	DiffPhase     atomic.Int32 // Phase

	// Backfill.
	ItemsRead    atomic.Int64 // items returned by Scan
	ItemsWritten atomic.Int64 // items acknowledged by BatchWriteItem
	ItemsFailed  atomic.Int64 // items that could not be written, or that the filter or transform failed on
	ItemsSkipped atomic.Int64 // items left out on purpose (--skip-expired, --filter)
	// ItemsFiltered are the skipped items the filter left out.
	ItemsFiltered atomic.Int64

	// Stream.
	RecordsRead    atomic.Int64 // stream records received
	RecordsApplied atomic.Int64 // stream records applied to the output
	RecordsSkipped atomic.Int64 // records left out on purpose (TTL deletes, pre-T0)
	// RecordsFailed are records whose new image the filter or transform
	// failed on (an evaluation error, a bad output key).
	RecordsFailed atomic.Int64
	LatencyMillis atomic.Int64 // now − ApproximateCreationDateTime of the last applied record
	LastApplied   atomic.Int64 // unix millis of the last record's creation time
	OpenShards    atomic.Int64

	// Diff (per slave).
	Scanned   atomic.Int64
	Matching  atomic.Int64
	Missing   atomic.Int64
	Differing atomic.Int64
	Extra     atomic.Int64
	Repaired  atomic.Int64 // written
	Deleted   atomic.Int64
	Conflicts atomic.Int64 // skipped: changed during diff
	Errors    atomic.Int64

	// Capacity and retries.
	ConsumedRCU Float
	ConsumedWCU Float
	Retries     atomic.Int64 // requests or unprocessed items retried
	Throttles   atomic.Int64 // throttling errors seen

	// Reader → writer queue, for the buffer glyph.
	BufferLen atomic.Int64
	BufferCap atomic.Int64

	Started atomic.Int64 // unix nanos
}

// NewEntry returns an entry with its start time set to now.
func NewEntry(input, output string) *Entry {
	e := &Entry{Input: input, Output: output}
	e.Started.Store(time.Now().UnixNano())
	return e
}

// SetPhase sets a phase field.
func SetPhase(field *atomic.Int32, p Phase) { field.Store(int32(p)) }

// GetPhase reads a phase field.
func GetPhase(field *atomic.Int32) Phase { return Phase(field.Load()) }

// Elapsed is the time since the entry started.
func (e *Entry) Elapsed() time.Duration {
	return time.Since(time.Unix(0, e.Started.Load()))
}

// Registry is the set of entries of a run, in plan order.
type Registry struct {
	mu      sync.Mutex
	entries []*Entry
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Add registers an entry and returns it.
func (r *Registry) Add(e *Entry) *Entry {
	r.mu.Lock()
	r.entries = append(r.entries, e)
	r.mu.Unlock()
	return e
}

// Entries returns the entries in the order they were added.
func (r *Registry) Entries() []*Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Entry(nil), r.entries...)
}
