// Package backfill copies every item of an input table to an output
// table: a parallel Scan whose pages flow into concurrent BatchWriteItem
// writers, checkpointed per segment so an interrupted run resumes.
package backfill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/retry"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// SourceAPI is what the backfill needs of the input table's client.
type SourceAPI interface {
	dynamodb.ScanAPIClient
	dynamodb.DescribeTableAPIClient
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
}

// DestAPI is what the backfill needs of the output table's client.
type DestAPI interface {
	dynamodb.DescribeTableAPIClient
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
}

// Config is one backfill of one plan entry.
type Config struct {
	// Common: the tables, the store and StateKey (the plan entry's ID),
	// counters, logger, the clock of --skip-expired and the leases that
	// share the segments with other workers (--checkpoint-table; Store is
	// then the same table; ignored when Segments is given: a static split
	// takes no leases). See leased.go.
	job.Common

	Source SourceAPI
	Dest   DestAPI

	// Segments to copy (nil: all) out of TotalSegments (0: chosen from the
	// table size, at least 4).
	Segments      []int
	TotalSegments int

	MaxWCU float64 // output write units per second, 0: no limit
	MaxRCU float64 // input read units per second, 0: no limit

	SkipExpired       bool // leave out items DynamoDB's TTL will delete: TTL in the past, at most five years ago
	CreateOutputTable bool // create a missing output table from the input's description and settings (table.go)
	// CreateOutputStream: a created output table gets the input's stream
	// specification (for a copy that will itself be a source).
	CreateOutputStream bool

	// Tuning; zero values take the defaults below.

	// Parallel is how many segments are scanned at once
	// (DefaultParallel).
	Parallel int
	// WritersPerSegment is how many BatchWriteItem requests are in flight
	// per segment being scanned (DefaultWritersPerSegment).
	WritersPerSegment int
	// PagesInFlight is how many Scan pages of one segment may be read but
	// not yet fully written (DefaultPagesInFlight). It bounds memory
	// (segments × pages × 1 MB of items) and what a resume after a crash
	// writes again.
	PagesInFlight int
	// PageSize is the Scan Limit of each page (0: pages of up to 1 MB, as
	// DynamoDB returns them; a read budget may make pages smaller).
	PageSize int32
	// Backoff between rounds of a throttled Scan or BatchWriteItem (zero
	// fields: retry.DefaultBase, retry.DefaultMax).
	Backoff retry.Backoff
}

// leased reports whether the run takes segment leases.
func (c Config) leased() bool { return c.Leases != nil && len(c.Segments) == 0 }

// Defaults of the tuning fields of Config.
const (
	DefaultParallel          = 32
	DefaultWritersPerSegment = 4
	DefaultPagesInFlight     = 2
)

// Result summarises a backfill.
type Result struct {
	ItemsRead    int64
	ItemsWritten int64
	// ItemsFailed are items that could not be written, or that the
	// filter or transform failed on (Common.Program).
	ItemsFailed int64
	// ItemsSkipped are items left out on purpose: by --skip-expired, or
	// by the filter (ItemsFiltered of them).
	ItemsSkipped  int64
	ItemsFiltered int64
	ConsumedRCU   float64
	ConsumedWCU   float64
	Duration      time.Duration
	// Resumed is true when the run continued from checkpoints.
	Resumed bool

	// ItemsUnfinished are items read but neither written, failed nor
	// skipped when the run stopped early (cancelled, or another segment
	// failed). Their pages are not checkpointed, so a resumed run reads
	// and writes them again. ItemsRead = ItemsWritten + ItemsFailed +
	// ItemsSkipped + ItemsUnfinished, always.
	ItemsUnfinished int64
	// TotalSegments is the total the scan was split into; Segments the
	// ones this run covered.
	TotalSegments int
	Segments      []int
	// AlreadyDone is true when the checkpoints said every selected
	// segment was copied before this run, so nothing was read.
	AlreadyDone bool
}

// ErrItemsFailed is wrapped by the error of a run in which items could not
// be written, or the filter or transform failed on items (and
// SkipFailedItems is not set).
var ErrItemsFailed = errors.New("items failed")

// Run copies the table. It returns when every selected segment is copied,
// on the first fatal error, or when ctx is cancelled (after checkpointing
// what was fully written; the error is then ctx.Err()).
func Run(ctx context.Context, cfg Config) (Result, error) {
	start := time.Now()
	r := &run{cfg: cfg, log: cfg.Logger, st: cfg.Stats}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.st == nil {
		r.st = stats.NewEntry(cfg.InputTable, cfg.OutputTable)
	}
	if cfg.Source != nil && cfg.Dest != nil {
		r.cfg.Source = countingSource{SourceAPI: cfg.Source, st: r.st}
		r.cfg.Dest = countingDest{DestAPI: cfg.Dest, st: r.st}
	}
	stats.SetPhase(&r.st.BackfillPhase, stats.Running)
	res, err := r.run(ctx)
	res.Duration = time.Since(start)
	res.ItemsRead = r.read.Load()
	res.ItemsWritten = r.written.Load()
	res.ItemsFailed = r.failed.Load()
	res.ItemsSkipped = r.skipped.Load()
	res.ItemsFiltered = r.filtered.Load()
	res.ConsumedRCU = r.rcu.Load()
	res.ConsumedWCU = r.wcu.Load()
	res.ItemsUnfinished = res.ItemsRead - res.ItemsWritten - res.ItemsFailed - res.ItemsSkipped
	if err == nil && res.ItemsFailed > 0 && !cfg.SkipFailedItems {
		err = fmt.Errorf("backfill of %s ⇨ %s: %d %w: the filter or transform failed on them (each is logged with its key); their pages are not checkpointed: run again skipping such items (%s) to leave them out, or correct the transform and copy again after removing the entry's checkpoints (a copy resumes only with the filter and transform it began with)",
			cfg.InputTable, cfg.OutputTable, res.ItemsFailed, ErrItemsFailed, cfg.Names.Of("SkipFailedItems"))
	}
	switch {
	case err == nil:
		stats.SetPhase(&r.st.BackfillPhase, stats.Complete)
		if !res.AlreadyDone {
			r.log.Info(fmt.Sprintf("Backfill complete. %d items written over %s", res.ItemsWritten, res.Duration.Round(time.Second)),
				resultFields(res)...)
		}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		stats.SetPhase(&r.st.BackfillPhase, stats.Stopped)
		r.log.Info(fmt.Sprintf("Backfill interrupted: %d items written over %s; progress is checkpointed, run again to resume",
			res.ItemsWritten, res.Duration.Round(time.Second)), resultFields(res)...)
	default:
		stats.SetPhase(&r.st.BackfillPhase, stats.Failed)
		r.log.Error("Backfill failed: "+err.Error(), resultFields(res)...)
	}
	return res, err
}

func resultFields(res Result) []zap.Field {
	secs := res.Duration.Seconds()
	if secs <= 0 {
		secs = 1
	}
	f := []zap.Field{
		zap.Int64("items_read", res.ItemsRead),
		zap.Int64("items_skipped", res.ItemsSkipped),
		zap.Int64("items_failed", res.ItemsFailed),
		zap.Int64("items_filtered", res.ItemsFiltered),
		zap.String("consumed_wcu", fmt.Sprintf("%.1f (%.1f/s)", res.ConsumedWCU, res.ConsumedWCU/secs)),
		zap.String("consumed_rcu", fmt.Sprintf("%.1f (%.1f/s)", res.ConsumedRCU, res.ConsumedRCU/secs)),
	}
	if res.ItemsUnfinished > 0 {
		f = append(f, zap.Int64("items_unfinished", res.ItemsUnfinished))
	}
	return f
}

// Check does everything Run does before its first read, without writing
// or creating anything: both tables exist (a missing output table is
// accepted when CreateOutputTable is set), their key schemas match, the
// segment selection fits, and existing checkpoints agree with the total
// segments. A command checks every plan entry first so that a bad entry
// stops the run before any entry writes.
func Check(ctx context.Context, cfg Config) error {
	in, err := dynamo.DescribeTable(ctx, cfg.Source, cfg.InputTable, "")
	if err != nil {
		return err
	}
	out, err := dynamo.DescribeTable(ctx, cfg.Dest, cfg.OutputTable, createHint(cfg))
	var nf *dynamo.NotFoundError
	switch {
	case errors.As(err, &nf) && cfg.CreateOutputTable:
		if err := checkCreatedKeys(cfg, in); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if err := checkKeys(cfg, in, out); err != nil {
			return err
		}
	}
	total, _, _, err := plan0(ctx, cfg, in.TableSizeBytes)
	if err != nil || !cfg.leased() {
		return err
	}
	return cfg.Leases.Manager.CheckFingerprint(ctx, cfg.Leases.Scope(lease.KindBackfill), lease.BackfillFingerprint(cfg.Leases.Entry, total))
}

// checkCreatedKeys refuses --create-output-table when the table it would
// create, with the input's key schema, cannot hold the transformed items:
// the transform drops or renames a key attribute away. Such an output
// table must be created with the key the transform produces.
func checkCreatedKeys(cfg Config, in *types.TableDescription) error {
	if cfg.Program == nil || !cfg.Program.HasTransform() {
		return nil
	}
	keys := dynamo.KeySchemaOf(in)
	if err := cfg.Program.CheckOutputKey(transform.KeySchema(keys)); err != nil {
		return &plan.Error{Msg: fmt.Sprintf("creating the output table (%s) would give %s the key of %s, %s, but %v: create the output table yourself with the key the transform produces; nothing was written",
			cfg.Names.Of("CreateOutputTable"), cfg.OutputTable, cfg.InputTable, keys, err)}
	}
	return nil
}

// createHint is what to do about a missing output table.
func createHint(cfg Config) string {
	return fmt.Sprintf("create it first, or let the backfill create it from the input table's description (%s)", cfg.Names.Of("CreateOutputTable"))
}

// plan0 resolves the total and the selected segments of a run, without
// writing anything. For a leased run, recorded reports whether the total
// is already recorded in the checkpoint table (else the run records its
// choice with recordTotal before registering leases).
func plan0(ctx context.Context, cfg Config, tableBytes *int64) (total int, segs []int, recorded bool, err error) {
	if cfg.Store == nil || cfg.StateKey == "" {
		return 0, nil, false, errors.New("backfill: Config.Store and Config.StateKey are required")
	}
	if cfg.TotalSegments < 0 || cfg.TotalSegments > plan.MaxTotalSegments {
		return 0, nil, false, &plan.Error{Msg: fmt.Sprintf("total segments is %d; allowed: 1 to %d", cfg.TotalSegments, plan.MaxTotalSegments)}
	}
	if len(cfg.Segments) > 0 && cfg.TotalSegments == 0 {
		return 0, nil, false, &plan.Error{Msg: "backfill segments are given without total_segments; give the total the segments are numbered in"}
	}
	m, _, err := LoadMeta(ctx, cfg.Store, cfg.StateKey)
	if err != nil {
		return 0, nil, false, err
	}
	if m != nil && m.Program != ProgramFingerprint(cfg) {
		return 0, nil, false, &plan.Error{Msg: fmt.Sprintf("the backfill checkpoints of %s ⇨ %s were made with another filter or transform than this run's: resume with the same one (the output would otherwise hold items of both), or remove the entry's checkpoints (state key %s in the %s) to copy again",
			cfg.InputTable, cfg.OutputTable, cfg.StateKey, state.Where(cfg.Store))}
	}
	var size int64
	if tableBytes != nil {
		size = *tableBytes
	}
	if cfg.leased() {
		total, recorded, err = leaseTotal(ctx, cfg, m, size)
	} else {
		total, err = resolveTotal(cfg, m, size)
	}
	if err != nil {
		return 0, nil, false, err
	}
	seen := map[int]bool{}
	for _, s := range cfg.Segments {
		if s < 0 || s >= total {
			return 0, nil, false, &plan.Error{Msg: fmt.Sprintf("backfill segment %d is out of range; with total_segments %d the segments are 0 to %d", s, total, total-1)}
		}
		if seen[s] {
			return 0, nil, false, &plan.Error{Msg: fmt.Sprintf("backfill segment %d is listed twice", s)}
		}
		seen[s] = true
	}
	return total, selection(cfg.Segments, total), recorded, nil
}

// ProgramFingerprint is what a checkpoint records of the run's filter and
// transform ("": none).
func ProgramFingerprint(cfg Config) string {
	if cfg.Program == nil {
		return ""
	}
	return cfg.Program.Fingerprint()
}

// checkKeys checks the output table's key against the input's: the same
// key schema when items are copied as read (or only filtered); with a
// transform, a key the transform can produce (each item's key is then
// checked as it is written).
func checkKeys(cfg Config, in, out *types.TableDescription) error {
	if cfg.Program != nil && cfg.Program.HasTransform() {
		if err := cfg.Program.CheckOutputKey(transform.KeySchema(dynamo.KeySchemaOf(out))); err != nil {
			return &plan.Error{Msg: fmt.Sprintf("output table %s has the key %s: %v; nothing was written", cfg.OutputTable, dynamo.KeySchemaOf(out), err)}
		}
		return nil
	}
	if err := dynamo.CheckSameKeys(cfg.InputTable, dynamo.KeySchemaOf(in), cfg.OutputTable, dynamo.KeySchemaOf(out)); err != nil {
		return &plan.Error{Msg: err.Error() + "; nothing was written"}
	}
	return nil
}

// segmentsString renders a selection for logs: "0-15", "0,2,5".
func segmentsString(segs []int, total int) string {
	if len(segs) == total {
		if total == 1 {
			return "0"
		}
		return fmt.Sprintf("0-%d", total-1)
	}
	parts := make([]string, len(segs))
	for i, s := range segs {
		parts[i] = fmt.Sprint(s)
	}
	return strings.Join(parts, ",")
}
