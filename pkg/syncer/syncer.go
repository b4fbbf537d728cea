// Package syncer runs `sync` for one plan entry: a backfill, then the
// stream, with no change lost in the handover. Before the backfill's scan
// starts it records the input's stream ARN, its shards and the start time
// T0; the stream phase then reads those shards (and their descendants)
// from their trim horizon, leaving out records older than T0 minus a
// safety margin, which the scan already saw.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/diff"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

// DefaultSafetyMargin is how far before T0 the stream phase starts
// applying records. DynamoDB rounds ApproximateCreationDateTime down to the
// second, but DynamoDB Local rounds it down to the minute (seen with 3.x),
// and clocks differ a little; records re-applied from before T0 cost a
// little work and change nothing in the end (they are applied in order,
// followed by every later change), so the margin is generous.
const DefaultSafetyMargin = 2 * time.Minute

// SourceAPI is what sync needs of the input table's client
// (BatchGetItem: to confirm, when reconciling the output, that an item is
// absent from the input).
type SourceAPI interface {
	backfill.SourceAPI
	stream.SourceAPI
	diff.Client
}

// DestAPI is what sync needs of the output table's client (Scan,
// BatchGetItem and DeleteItem: to reconcile an output that held items
// before the copy).
type DestAPI interface {
	backfill.DestAPI
	diff.Client
}

// Config is the sync of one plan entry.
type Config struct {
	// Common: the tables, the store and state key, counters, logger and
	// clock, handed as they are to the backfill and the stream. Leases,
	// when set, shares the work with other workers through the checkpoint
	// table (Store is then its state.DynamoStore): the copy's segments
	// and the stream's shards are leased, and the handover is recorded by
	// the first worker with a conditional write and read by the others.
	job.Common

	Source  SourceAPI
	Dest    DestAPI
	Streams stream.StreamsAPI

	Backfill bool // run the backfill phase
	Stream   bool // run the stream phase

	// BackfillConfig holds the backfill's own settings (segments,
	// capacity budgets, --skip-expired, --create-output-table, page
	// size…); its Common and clients are filled from this Config. One
	// struct, so that a backfill setting cannot be left out of sync.
	BackfillConfig backfill.Config

	SkipTTLDeletes bool
	UntilCaughtUp  bool

	// DeleteExtra reconciles the output after the copy: output items the
	// input lacks (confirmed by a consistent read) are deleted, each delete
	// conditional on the output item being unchanged. Without it, sync
	// does so only when it finds an earlier copy of this entry in the
	// state (its leftovers are its own); items another program put into
	// the output are kept.
	DeleteExtra bool

	SafetyMargin time.Duration // default DefaultSafetyMargin
	Retention    time.Duration // the stream's retention, default 24h

	// Hooks for tests; nil means the real engines.
	RunBackfill  func(context.Context, backfill.Config) (backfill.Result, error)
	BackfillDone func(ctx context.Context, store state.Store, stateKey string) (bool, error)
	// Tune adjusts the stream configuration (tests: poll intervals).
	Tune func(*stream.Config)
}

// Handover is the record sync keeps of the stream as it was before the
// backfill began.
type Handover struct {
	StreamARN string         `json:"stream_arn"`
	T0        time.Time      `json:"t0"`
	Shards    []stream.Shard `json:"shards"`
	// Backfill is true when this sync copies the table before streaming,
	// so records before T0 may be left out.
	Backfill bool `json:"backfill"`
	// Generation names this sync's copy: its backfill checkpoints live
	// under STATE-KEY/sync/GENERATION and its segment leases in scope
	// ENTRY-ID/backfill-GENERATION, so progress made before the handover
	// (an earlier backfill, a sync with the stream disabled) never counts
	// toward it. Empty in handovers recorded before generations existed:
	// their copy uses the entry's own backfill checkpoints.
	Generation string `json:"generation,omitempty"`
	// Reconcile: after the copy, delete output items the input lacks (an
	// earlier copy was found, or DeleteExtra was given).
	Reconcile bool `json:"reconcile,omitempty"`
	// Earlier describes the earlier copy found when the handover was
	// recorded (for the logs).
	Earlier string `json:"earlier,omitempty"`
	// Program is the fingerprint of the sync's filter and transform
	// (empty: none): a sync resumes only with the same one, or its output
	// would mix items and changes of two.
	Program string `json:"program,omitempty"`
}

// checkProgramSame refuses to resume handover h with another filter or
// transform than the one it was recorded with.
func checkProgramSame(cfg Config, h *Handover) error {
	if h.Program == programOf(cfg) {
		return nil
	}
	return &plan.Error{Msg: fmt.Sprintf("%s ⇨ %s: this sync began with another filter or transform than this run's: resume it with the same one (the output would otherwise hold items and changes of both), or start the sync over by removing its checkpoints (state key %s in the %s)",
		cfg.InputTable, cfg.OutputTable, cfg.StateKey, state.Where(cfg.Store))}
}

func programOf(cfg Config) string {
	if cfg.Program == nil {
		return ""
	}
	return cfg.Program.Fingerprint()
}

// backfillKey is where the copy of this handover keeps its checkpoints.
func (h *Handover) backfillKey(stateKey string) string {
	if h == nil || h.Generation == "" {
		return stateKey
	}
	return stateKey + "/sync/" + h.Generation
}

// markerKey is where this handover records that one of its steps is done
// (name: "reconciled", "stream-started"): a record of an earlier handover,
// left by a sync started over without removing every checkpoint, never
// counts for this one. Handovers recorded before generations existed keep
// their records where they were.
func (h *Handover) markerKey(stateKey, name string) string {
	if h == nil || h.Generation == "" {
		return stateKey + "/sync/" + name
	}
	return stateKey + "/sync/" + name + "-" + h.Generation
}

// stepDone reads the record that this handover's step name is done into v
// and reports whether there is one. Earlier versions kept the record of
// every handover under the key without the generation: such a record
// counts when it was written during this handover (at or after its T0),
// so that a sync resumed after an upgrade does not redo the step, while
// the record of an earlier handover still never counts.
func (h *Handover) stepDone(ctx context.Context, store state.Store, stateKey, name string, v any) (bool, error) {
	ok, err := store.Get(ctx, h.markerKey(stateKey, name), v)
	if err != nil || ok || h == nil || h.Generation == "" {
		return ok, err
	}
	legacy := stateKey + "/sync/" + name
	var rec struct {
		At time.Time `json:"at"`
	}
	ok, err = store.Get(ctx, legacy, &rec)
	if err != nil || !ok || rec.At.Before(h.T0) {
		return false, err
	}
	_, err = store.Get(ctx, legacy, v)
	return err == nil, err
}

// backfillKind is the lease kind of the copy of this handover.
func (h *Handover) backfillKind() string {
	if h == nil || h.Generation == "" {
		return lease.KindBackfill
	}
	return lease.KindBackfill + "-" + h.Generation
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Stats == nil {
		c.Stats = stats.NewEntry(c.InputTable, c.OutputTable)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SafetyMargin <= 0 {
		c.SafetyMargin = DefaultSafetyMargin
	}
	if c.Retention <= 0 {
		c.Retention = 24 * time.Hour
	}
	if c.RunBackfill == nil {
		c.RunBackfill = backfill.Run
	}
	if c.BackfillDone == nil {
		c.BackfillDone = backfill.Done
	}
}

// conditionalStore is a store shared by several workers
// (state.DynamoStore) that can write a document only if it is absent.
type conditionalStore interface {
	PutIfAbsent(ctx context.Context, key string, v any) (bool, error)
}

func (c *Config) handoverKey() string { return handoverKey(c.StateKey) }

// handoverKey is where the handover of the entry with this state key is
// recorded.
func handoverKey(stateKey string) string { return stateKey + "/sync/handover" }

// backfillConfig is the copy of handover h (nil: a sync without the
// stream, which copies like the backfill command).
func (c *Config) backfillConfig(h *Handover) backfill.Config {
	b := c.BackfillConfig
	b.Common, b.Source, b.Dest = c.Common, c.Source, c.Dest
	b.StateKey = h.backfillKey(c.StateKey)
	b.Leases = c.backfillLeases(h)
	return b
}

// backfillLeases are the segment leases of a shared backfill (none for a
// static split).
func (c *Config) backfillLeases(h *Handover) *job.Leases {
	if c.Leases == nil || len(c.BackfillConfig.Segments) > 0 {
		return nil
	}
	return &job.Leases{Manager: c.Leases.Manager, Entry: c.Leases.Entry, Kind: h.backfillKind()}
}

// Check does what Run does before any write: the input has a stream (when
// streaming), a recorded handover is for that stream, and the backfill's
// own checks pass. Commands check every entry before any entry starts.
func Check(ctx context.Context, cfg Config) error {
	cfg.defaults()
	if cfg.Stream {
		info, err := stream.Describe(ctx, cfg.Source, cfg.InputTable)
		if err != nil {
			return err
		}
		var h Handover
		ok, err := cfg.Store.Get(ctx, cfg.handoverKey(), &h)
		if err != nil {
			return err
		}
		if ok && h.StreamARN != info.ARN {
			return changedStream(cfg, h.StreamARN, info.ARN)
		}
		if ok {
			if err := checkProgramSame(cfg, &h); err != nil {
				return err
			}
		}
		if !cfg.Backfill {
			if !ok {
				// The stream part of a copy made by another run: it must
				// be finished, and young enough for the stream to cover.
				if err := CheckCopy(ctx, CopyCheck{Common: cfg.Common, Source: cfg.Source, Retention: cfg.Retention}); err != nil {
					return err
				}
			}
			return stream.Check(ctx, stream.Config{
				Common: job.Common{
					InputTable: cfg.InputTable, OutputTable: cfg.OutputTable,
					Store: cfg.Store, StateKey: cfg.StateKey, Leases: cfg.Leases,
					Program: cfg.Program, SkipFailedItems: cfg.SkipFailedItems,
				},
				Source: cfg.Source, Dest: cfg.Dest, Streams: cfg.Streams,
				StreamARN: h.StreamARN, UntilCaughtUp: cfg.UntilCaughtUp,
			})
		}
		// The stream's own checks of the filter and transform (the old
		// images a computed output key needs) before the copy writes.
		if err := checkStreamProgram(ctx, cfg, info); err != nil {
			return err
		}
		if err := checkReconcileProgram(ctx, cfg, info, ok, &h); err != nil {
			return err
		}
		if cfg.Leases != nil {
			if cfg.UntilCaughtUp {
				return &plan.Error{Msg: stream.UntilCaughtUpWithLeases(cfg.Names)}
			}
			scope := lease.Scope(cfg.Leases.Entry.ID(), lease.KindStream)
			if err := cfg.Leases.Manager.CheckFingerprint(ctx, scope, lease.StreamFingerprint(cfg.Leases.Entry, info.ARN)); err != nil {
				return err
			}
		}
	}
	if cfg.Backfill {
		// The copy a resumed sync continues, or a first run's own.
		bc, err := CopyConfig(ctx, cfg)
		if err != nil {
			return err
		}
		return backfill.Check(ctx, bc)
	}
	return nil
}

// checkStreamProgram checks, before the copy, what the stream phase
// checks of the filter and transform when it starts: against the output
// table's key, or the input's when --create-output-table will create it.
func checkStreamProgram(ctx context.Context, cfg Config, info stream.StreamInfo) error {
	if cfg.Program == nil {
		return nil
	}
	keys := info.Keys
	out, err := dynamo.DescribeTable(ctx, cfg.Dest, cfg.OutputTable, "")
	var nf *dynamo.NotFoundError
	switch {
	case errors.As(err, &nf) && cfg.BackfillConfig.CreateOutputTable:
	case err != nil:
		return err
	default:
		keys = dynamo.KeySchemaOf(out)
	}
	return stream.CheckProgram(stream.Config{Common: cfg.Common}, info, keys)
}

// checkReconcileProgram refuses, before the copy, a reconciliation that
// cannot work with the transform: to delete an output item the input
// lacks, the item must name the input item it was copied from, by an
// unchanged copy of each input key attribute (kept, renamed, or set by a
// plain selection). recorded says whether h is the recorded handover.
func checkReconcileProgram(ctx context.Context, cfg Config, info stream.StreamInfo, recorded bool, h *Handover) error {
	if cfg.Program == nil || !cfg.Backfill {
		return nil
	}
	need := cfg.DeleteExtra
	if recorded {
		need = h.Backfill && h.Reconcile
	} else if !need {
		earlier, err := earlierCopy(ctx, cfg)
		if err != nil {
			return err
		}
		need = earlier != ""
	}
	if !need {
		return nil
	}
	for _, name := range info.Keys.Names() {
		if _, ok := cfg.Program.Carrier(name); !ok {
			return &plan.Error{Msg: fmt.Sprintf("sync must delete the output items the input lacks after its copy (%s, or an earlier copy of this entry), but the transform keeps no unchanged copy of the input key attribute %s in the output items, so an output item does not name the input item it was copied from: keep the input's key attributes in the output (passed through, renamed, or set by a plain selection such as item.%s), or empty the output table and remove the entry's state first",
				cfg.Names.Of("DeleteExtra"), name, name)}
		}
	}
	return nil
}

func changedStream(cfg Config, was, now string) error {
	return &plan.Error{Msg: fmt.Sprintf(
		"table %s now has stream %s, but this sync began on stream %s (the stream was disabled and enabled again?): changes in between are in neither stream; start the sync over by removing its checkpoints (state key %s in the %s)",
		cfg.InputTable, now, was, cfg.StateKey, state.Where(cfg.Store))}
}

// Run syncs the entry: it resumes in the phase an interrupted run was in.
// Cancelling ctx during the backfill returns its ctx error (the backfill is
// checkpointed); during the stream phase it returns nil after the stream
// saved its checkpoints.
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	log := cfg.Logger
	if !cfg.Backfill {
		stats.SetPhase(&cfg.Stats.BackfillPhase, stats.Skipped)
	}
	if !cfg.Stream {
		stats.SetPhase(&cfg.Stats.StreamPhase, stats.Skipped)
	}
	var h *Handover
	if cfg.Stream {
		var err error
		if h, err = recordHandover(ctx, cfg); err != nil {
			return err
		}
	}
	if cfg.Backfill {
		bcfg := cfg.backfillConfig(h)
		backfillDone := cfg.BackfillDone
		if bl := bcfg.Leases; bl != nil {
			// Shared: done when every segment lease is finished.
			backfillDone = func(ctx context.Context, _ state.Store, _ string) (bool, error) { return backfill.LeasesDone(ctx, bl) }
		}
		done, err := backfillDone(ctx, bcfg.Store, bcfg.StateKey)
		if err != nil {
			return err
		}
		if done {
			stats.SetPhase(&cfg.Stats.BackfillPhase, stats.Complete)
			log.Info("backfill already complete; resuming in the stream phase")
		} else if _, err := cfg.RunBackfill(ctx, bcfg); err != nil {
			return err
		}
	}
	if !cfg.Stream {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if h.Backfill && h.Reconcile {
		if err := reconcile(ctx, cfg, h); err != nil {
			return err
		}
	}
	scfg := stream.Config{
		Common: cfg.Common,
		Source: cfg.Source, Dest: cfg.Dest, Streams: cfg.Streams,
		StreamARN:      h.StreamARN,
		SkipTTLDeletes: cfg.SkipTTLDeletes, UntilCaughtUp: cfg.UntilCaughtUp,
		MaxWCU: cfg.BackfillConfig.MaxWCU, Retention: cfg.Retention,
	}
	if cfg.Leases != nil {
		l := *cfg.Leases // the stream's own (Tune may change it)
		scfg.Leases = &l
	}
	if h.Backfill {
		if err := checkCovered(ctx, cfg, h); err != nil {
			stats.SetPhase(&cfg.Stats.StreamPhase, stats.Failed)
			return err
		}
		scfg.SkipBefore = h.T0.Add(-cfg.SafetyMargin)
		for _, s := range h.Shards {
			if s.Closed() {
				// Closed before the scan began: the scan saw all of it.
				scfg.FinishedShards = append(scfg.FinishedShards, s.ID)
			}
		}
	}
	if cfg.Tune != nil {
		cfg.Tune(&scfg)
	}
	return stream.Run(ctx, scfg)
}

// recordHandover returns the recorded handover, recording it first on a
// first run (before the backfill reads anything).
func recordHandover(ctx context.Context, cfg Config) (*Handover, error) {
	info, err := stream.Describe(ctx, cfg.Source, cfg.InputTable)
	if err != nil {
		return nil, err
	}
	var h Handover
	ok, err := cfg.Store.Get(ctx, cfg.handoverKey(), &h)
	if err != nil {
		return nil, err
	}
	if ok {
		if h.StreamARN != info.ARN {
			return nil, changedStream(cfg, h.StreamARN, info.ARN)
		}
		if err := checkProgramSame(cfg, &h); err != nil {
			return nil, err
		}
		cfg.Logger.Info("resuming sync", zap.Time("t0", h.T0), zap.String("stream", h.StreamARN))
		return &h, nil
	}
	// What ran before on this entry: a copy made before T0 never counts
	// toward this sync (changes made between that copy and T0 would be in
	// neither), and stream checkpoints made before T0 are replaced by the
	// copy.
	var earlier string
	if cfg.Backfill {
		if earlier, err = earlierCopy(ctx, cfg); err != nil {
			return nil, err
		}
		if err := forgetStream(ctx, cfg); err != nil {
			return nil, err
		}
	}
	// The shards are listed first and T0 taken after, both before the scan:
	// a shard closed in the listing closed before T0 (the scan saw all of
	// its changes), and any change after T0 is in a shard open in the
	// listing or in one of their descendants.
	l, err := stream.ListShards(ctx, cfg.Streams, info.ARN)
	if err != nil {
		return nil, err
	}
	h = Handover{StreamARN: info.ARN, T0: cfg.Now().UTC(), Backfill: cfg.Backfill, Shards: l.Shards, Program: programOf(cfg)}
	if cfg.Backfill {
		h.Generation = fmt.Sprintf("g%d", h.T0.UnixNano())
		h.Earlier = earlier
		h.Reconcile = earlier != "" || cfg.DeleteExtra
	}
	if shared, ok := cfg.Store.(conditionalStore); ok {
		// Several workers start at once: the first one's record counts.
		wrote, err := shared.PutIfAbsent(ctx, cfg.handoverKey(), h)
		if err != nil {
			return nil, err
		}
		if !wrote {
			var theirs Handover
			ok, err := cfg.Store.Get(ctx, cfg.handoverKey(), &theirs)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("the sync handover record %s vanished from the checkpoint table while it was being read; run the command again", cfg.handoverKey())
			}
			if theirs.StreamARN != info.ARN {
				return nil, changedStream(cfg, theirs.StreamARN, info.ARN)
			}
			if err := checkProgramSame(cfg, &theirs); err != nil {
				return nil, err
			}
			cfg.Logger.Info("using the handover recorded by another worker", zap.Time("t0", theirs.T0), zap.String("stream", theirs.StreamARN))
			return &theirs, nil
		}
	} else if err := cfg.Store.Put(ctx, cfg.handoverKey(), h); err != nil {
		return nil, err
	}
	cfg.Logger.Info("recorded the stream for the handover", zap.Time("t0", h.T0), zap.Int("shards", len(h.Shards)))
	if earlier != "" {
		cfg.Logger.Warn(fmt.Sprintf("%s ⇨ %s: %s; changes made to the input since then would be missing from the output, so sync copies the table again from now on (T0 %s) and then deletes the output items the input lacks (each confirmed by a consistent read)",
			cfg.InputTable, cfg.OutputTable, earlier, h.T0.Format(time.RFC3339)))
	} else if cfg.Backfill && !cfg.DeleteExtra {
		warnNonEmpty(ctx, cfg)
	}
	return &h, nil
}

// earlierCopy describes the backfill progress of this entry made before
// the handover ("" when there is none): a backfill run, or a sync with
// the stream disabled.
func earlierCopy(ctx context.Context, cfg Config) (string, error) {
	m, ok, err := backfill.LoadMeta(ctx, cfg.Store, cfg.StateKey)
	if err != nil {
		return "", err
	}
	if ok {
		return fmt.Sprintf("an earlier copy of this entry (backfill checkpoints under state key %s, last started at %s) predates this sync",
			cfg.StateKey, m.Started.UTC().Format(time.RFC3339)), nil
	}
	if cfg.Leases != nil {
		scope := lease.Scope(cfg.Leases.Entry.ID(), lease.KindBackfill)
		infos, err := cfg.Leases.Manager.List(ctx, scope)
		if err != nil {
			return "", err
		}
		if len(infos) > 0 {
			return fmt.Sprintf("an earlier shared copy of this entry (%d segment leases in scope %s of checkpoint table %s) predates this sync",
				len(infos), scope, cfg.Leases.Manager.Table()), nil
		}
	}
	return "", nil
}

// forgetStream removes the stream checkpoints of this entry made before
// the handover: the copy covers everything before T0, and checkpoints of
// shards long gone would otherwise be reported as gaps.
func forgetStream(ctx context.Context, cfg Config) error {
	if cfg.Leases != nil {
		scope := lease.Scope(cfg.Leases.Entry.ID(), lease.KindStream)
		infos, err := cfg.Leases.Manager.List(ctx, scope)
		if err != nil {
			return err
		}
		if len(infos) > 0 {
			cfg.Logger.Info("removing stream leases made before this sync; the copy replaces them", zap.Int("leases", len(infos)))
			if err := cfg.Leases.Manager.Forget(ctx, scope); err != nil {
				return err
			}
		}
	}
	keys, err := cfg.Store.List(ctx, cfg.StateKey+"/stream/")
	if err != nil {
		return err
	}
	if len(keys) > 0 {
		cfg.Logger.Info("removing stream checkpoints made before this sync; the copy replaces them", zap.Int("checkpoints", len(keys)))
	}
	for _, k := range keys {
		if err := cfg.Store.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// warnNonEmpty says, once, that the output already holds items sync will
// keep unless the input has them.
func warnNonEmpty(ctx context.Context, cfg Config) {
	out, err := cfg.Dest.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(cfg.OutputTable), Limit: aws.Int32(1)})
	if err != nil || len(out.Items) == 0 {
		return // a missing output (created later) or an empty one
	}
	cfg.Logger.Warn(fmt.Sprintf("output table %s already holds items: sync overwrites those the input has and keeps the others (items deleted from the input before this sync began, for instance); ask sync to delete the output items the input lacks after the copy (%s)",
		cfg.OutputTable, cfg.Names.Of("DeleteExtra")))
}

// reconcile deletes, after the copy and before the stream phase, the
// output items the input lacks: each absence is confirmed by a consistent
// read of the input, each delete is conditional on the output item being
// what was read. Items deleted from the input after T0 are deleted by the
// stream anyway; items put after T0 are found in the input and kept. Done
// once per handover.
//
// Workers sharing the sync (a checkpoint table) reconcile through one
// lease: one worker deletes while the others wait, and none streams
// before the reconciliation is finished, so no delete decided on an old
// read can land after the stream applied a newer change of that key.
func reconcile(ctx context.Context, cfg Config, h *Handover) error {
	key := h.markerKey(cfg.StateKey, "reconciled")
	var done reconciled
	ok, err := h.stepDone(ctx, cfg.Store, cfg.StateKey, "reconciled", &done)
	if err != nil || ok {
		return err
	}
	if cfg.Leases == nil {
		return reconcileOnce(ctx, cfg, key)
	}
	scope := lease.Scope(cfg.Leases.Entry.ID(), "reconcile-"+h.Generation)
	fp := fmt.Sprintf("reconcile input=%s output=%s", cfg.InputTable, cfg.OutputTable)
	if err := cfg.Leases.Manager.Register(ctx, scope, fp, []lease.Unit{{ID: "output"}}); err != nil {
		return err
	}
	cfg.Logger.Info("reconciling the output: one worker deletes, the others wait for it")
	return cfg.Leases.Manager.Process(ctx, scope, lease.ProcessOptions{}, func(ctx context.Context, _ *lease.Lease) error {
		return reconcileOnce(ctx, cfg, key)
	})
}

// reconcileOnce scans the output and deletes what the input lacks, then
// records it under key.
func reconcileOnce(ctx context.Context, cfg Config, key string) error {
	var done reconciled
	cfg.Logger.Info(fmt.Sprintf("reconciling %s: deleting output items the input %s lacks", cfg.OutputTable, cfg.InputTable))
	d, err := diff.Check(ctx, diff.Config{
		Master:        diff.Table{Name: cfg.InputTable, Label: cfg.InputTable, Client: cfg.Source},
		Slaves:        []diff.Table{{Name: cfg.OutputTable, Label: cfg.OutputTable, Client: cfg.Dest}},
		TotalSegments: reconcileSegments,
		DeleteExtra:   true,
		ExtraOnly:     true,
		Logger:        cfg.Logger,
		// An output item the input lacks is one no input item, filtered
		// and transformed, maps to.
		Program:         cfg.Program,
		SkipFailedItems: cfg.SkipFailedItems,
	})
	if err != nil {
		return err
	}
	res, err := d.Run(ctx)
	if err != nil {
		return err
	}
	r := res.Slaves[0]
	if r.Errors > 0 || r.Deleted+r.Skipped < r.Extra {
		return fmt.Errorf("%s ⇨ %s: reconciling the output failed: %d of %d output items the input lacks could not be deleted (%d errors); run the same command again",
			cfg.InputTable, cfg.OutputTable, r.Extra-r.Deleted-r.Skipped, r.Extra, r.Errors)
	}
	cfg.Logger.Info(fmt.Sprintf("reconciled %s: %d output items the input lacks deleted, %d changed meanwhile and kept", cfg.OutputTable, r.Deleted, r.Skipped))
	done.At, done.Deleted = cfg.Now().UTC(), r.Deleted
	return cfg.Store.Put(ctx, key, done)
}

// reconciled is the record of a finished reconciliation.
type reconciled struct {
	At      time.Time `json:"at"`
	Deleted int64     `json:"deleted"`
}

// reconcileSegments is the number of scan segments of the reconciliation.
const reconcileSegments = 8

// ErrHandoverLost is wrapped by the error of a sync whose stream no longer
// holds the changes made since the backfill began.
var ErrHandoverLost = errors.New("changes since the backfill began are no longer in the stream")

// checkCovered makes sure the stream still holds every change since T0
// when the stream phase begins: the backfill must not have outlived the
// stream's retention, and no shard open at T0 may have been trimmed away.
func checkCovered(ctx context.Context, cfg Config, h *Handover) error {
	var started struct {
		At time.Time `json:"at"`
	}
	key := h.markerKey(cfg.StateKey, "stream-started")
	ok, err := h.stepDone(ctx, cfg.Store, cfg.StateKey, "stream-started", &started)
	if err != nil {
		return err
	}
	if ok {
		return nil // checked when the phase began; checkpoints take over
	}
	now := cfg.Now()
	lost := func(why string) error {
		return fmt.Errorf("%s ⇨ %s: %w: %s; the output table is incomplete: start the sync over (remove its checkpoints, state key %s in the %s) and make sure the backfill finishes within the retention (raise the write budget, %s, or split it with backfill segments)",
			cfg.InputTable, cfg.OutputTable, ErrHandoverLost, why, cfg.StateKey, state.Where(cfg.Store), cfg.Names.Of("MaxWCU"))
	}
	// Records are trimmed once older than the retention: with a minute to
	// spare, everything after T0 is still there.
	if age := now.Sub(h.T0); age > cfg.Retention-time.Minute {
		return lost(fmt.Sprintf("the backfill began %s ago (at %s), longer than the stream's %s retention",
			age.Round(time.Second), h.T0.Format(time.RFC3339), cfg.Retention))
	}
	l, err := stream.ListShards(ctx, cfg.Streams, h.StreamARN)
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, s := range l.Shards {
		listed[s.ID] = true
	}
	for _, s := range h.Shards {
		if !s.Closed() && !listed[s.ID] {
			return lost(fmt.Sprintf("shard %s, open when the backfill began, is gone from the stream", s.ID))
		}
	}
	started.At = now
	return cfg.Store.Put(ctx, key, started)
}
