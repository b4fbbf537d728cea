// Package job holds what the configurations of the copying engines
// (backfill, stream, and syncer, which runs the other two) share: the
// tables of one plan entry, where its checkpoints live, where its counters
// and logs go, its clock, and the leases that share its work between
// workers. Each engine's Config embeds Common, so sync hands one value to
// the backfill and the stream instead of copying fields one by one.
package job

import (
	"time"

	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// Common is the part of a run's configuration every engine has.
type Common struct {
	InputTable  string
	OutputTable string

	// Store keeps the run's checkpoints under StateKey (the plan entry's
	// ID; each engine adds its own suffix).
	Store    state.Store
	StateKey string

	Stats  *stats.Entry // nil: counters are not kept
	Logger *zap.Logger  // nil: no logs
	// Now is the run's clock (nil: time.Now).
	Now func() time.Time

	// Program is the entry's compiled filter and transform (nil: every
	// item is copied as read). The backfill and the stream apply the same
	// one, so that sync's two phases agree. See docs/transform.md.
	Program *transform.Program
	// SkipFailedItems: an item the program fails on (an evaluation error,
	// an output key missing or of the wrong type) is logged and counted,
	// and the run does not fail for it.
	SkipFailedItems bool

	// Leases, when set, shares the run's work with other workers through
	// the checkpoint table (Store is then the same table). nil: this
	// process does all of it.
	Leases *Leases

	// Names is how the caller spells the options named in messages (nil:
	// their Go names).
	Names Names
}

// Leases is how a run shares its work with other workers.
type Leases struct {
	Manager *lease.Manager
	// Entry is the plan entry: its ID names the lease scope and its tables
	// go into the plan fingerprint.
	Entry plan.Entry
	// Poll is the time between two rounds of lease taking (and, for the
	// stream, of shard discovery); 0: half the lease duration.
	Poll time.Duration
	// Kind names the lease scope within the entry (default: the engine's
	// own, lease.KindBackfill or lease.KindStream). sync gives each of its
	// copies a scope of its own, so that segments finished by an earlier
	// copy never count.
	Kind string
}

// Scope is the lease scope of the entry's work: lease.Scope of the
// entry's ID and Kind, or def when Kind is empty.
func (l *Leases) Scope(def string) string {
	kind := l.Kind
	if kind == "" {
		kind = def
	}
	return lease.Scope(l.Entry.ID(), kind)
}
