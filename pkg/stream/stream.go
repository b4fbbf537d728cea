// Package stream applies a table's DynamoDB Stream to another table: every
// shard is read in lineage order (a child only after its parent is fully
// consumed), each GetRecords batch is collapsed to the latest change per
// key and written with BatchWriteItem, and the last applied sequence
// number of every shard is checkpointed so that a restart resumes after
// it.
package stream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// StreamsAPI is what the engine needs of the DynamoDB Streams client.
type StreamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// SourceAPI is what the engine needs of the input table's client:
// DescribeTable for the stream, GetItem for KEYS_ONLY and OLD_IMAGE
// streams.
type SourceAPI interface {
	dynamodb.DescribeTableAPIClient
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// DestAPI is what the engine needs of the output table's client.
type DestAPI interface {
	dynamodb.DescribeTableAPIClient
	dynamo.BatchWriteAPI
}

// Config is one stream consumer for one plan entry.
type Config struct {
	// Common: the tables, the store (checkpoints under StateKey +
	// "/stream/"), counters, logger, clock, and the leases that share the
	// stream's shards with other workers (--checkpoint-table; shard
	// checkpoints then live in the leases, not in Store; nil: this process
	// reads every shard).
	job.Common

	Streams StreamsAPI
	Source  SourceAPI
	Dest    DestAPI

	// StreamARN, when set, is the stream the run must consume (sync
	// recorded it before its backfill); another stream on the table is an
	// error.
	StreamARN string
	// FinishedShards are treated as fully consumed without reading them
	// (sync: shards that were already closed when the backfill began).
	FinishedShards []string
	// SkipBefore leaves out records created before it (sync: the backfill's
	// start minus a safety margin). Zero: nothing is left out.
	SkipBefore time.Time

	SkipTTLDeletes bool // leave out deletions made by DynamoDB's TTL
	UntilCaughtUp  bool // return once every shard is read up to the run's start

	MaxWCU float64 // output write units per second, 0: no limit

	// Tuning; zero values give the defaults.
	PollInterval     time.Duration // wait after an empty page of an open shard (default 500ms)
	MinReadInterval  time.Duration // least time between GetRecords on one shard (default 200ms)
	DiscoverInterval time.Duration // how often DescribeStream looks for new shards (default 10s)
	WriteWorkers     int           // concurrent BatchWriteItem calls per batch (default 8)
	Retention        time.Duration // stream retention (default 24h), for the trimmed-data check

	// OnApplied, when set, is called after each batch is written (the
	// benchmark measures latency with it).
	OnApplied func([]Applied)
}

// Applied describes one change written to the output.
type Applied struct {
	Key     map[string]types.AttributeValue
	Item    map[string]types.AttributeValue // nil: the key was deleted
	Created time.Time                       // ApproximateCreationDateTime
	At      time.Time                       // when the write was acknowledged
}

// EnableHint says how to give a table a stream.
func EnableHint(table string) string {
	return fmt.Sprintf("aws dynamodb update-table --table-name %s --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES", table)
}

// StreamInfo is what DescribeTable says about a table's stream.
type StreamInfo struct {
	ARN      string
	ViewType types.StreamViewType
	Keys     dynamo.KeySchema
}

// Describe describes the input table and returns its stream. A missing table
// or a table without an enabled stream is a usage error (exit 2) that
// says how to enable one.
func Describe(ctx context.Context, c dynamodb.DescribeTableAPIClient, table string) (StreamInfo, error) {
	desc, err := dynamo.DescribeTable(ctx, c, table, "check the input table name and region")
	if err != nil {
		return StreamInfo{}, err
	}
	spec := desc.StreamSpecification
	if spec == nil || !aws.ToBool(spec.StreamEnabled) || aws.ToString(desc.LatestStreamArn) == "" {
		return StreamInfo{}, &plan.Error{Msg: fmt.Sprintf(
			"table %s has no DynamoDB Stream enabled, so its changes cannot be followed; enable one with:\n  %s\n(for sync, enable it before the copy starts: a stream enabled later cannot cover changes made before)",
			table, EnableHint(table))}
	}
	return StreamInfo{ARN: aws.ToString(desc.LatestStreamArn), ViewType: spec.StreamViewType, Keys: dynamo.KeySchemaOf(desc)}, nil
}

// Run consumes the stream until ctx is cancelled (then it finishes the
// writes in flight, saves checkpoints and returns nil), until it caught up
// when UntilCaughtUp is set, or until a fatal error.
func Run(ctx context.Context, cfg Config) error {
	e, err := newEngine(ctx, cfg, false)
	if err != nil {
		return err
	}
	return e.run(ctx)
}

type shardState struct {
	Shard
	started  bool
	done     bool
	caughtUp bool
}

type engine struct {
	cfg     Config
	log     *zap.Logger
	st      *stats.Entry
	info    StreamInfo
	outKeys transform.KeySchema // the output table's key
	writer  *dynamo.Writer
	now     func() time.Time
	started time.Time

	mu     sync.Mutex
	shards map[string]*shardState
	wake   chan struct{}
}

// Check does the checks Run does before reading anything, writing
// nothing: the input has an enabled stream (the expected one, when
// StreamARN is set, and the one the checkpoints were made on), the output
// exists and both share one key schema. Commands check every plan entry
// first so that a bad entry stops the run before any entry writes.
func Check(ctx context.Context, cfg Config) error {
	_, err := newEngine(ctx, cfg, true)
	return err
}

func newEngine(ctx context.Context, cfg Config, dryRun bool) (*engine, error) {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.MinReadInterval <= 0 {
		cfg.MinReadInterval = 200 * time.Millisecond
	}
	if cfg.DiscoverInterval <= 0 {
		cfg.DiscoverInterval = 10 * time.Second
	}
	if cfg.WriteWorkers <= 0 {
		cfg.WriteWorkers = 8
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Store == nil {
		cfg.Store = state.NewMemory()
	}
	e := &engine{
		cfg:    cfg,
		log:    cfg.Logger,
		st:     cfg.Stats,
		now:    cfg.Now,
		shards: map[string]*shardState{},
		wake:   make(chan struct{}, 1),
	}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	if e.st == nil {
		e.st = stats.NewEntry(cfg.InputTable, cfg.OutputTable)
	}
	e.started = e.now()
	// Count the SDK's retries too (see countRetries).
	e.cfg.Streams = countingStreams{StreamsAPI: cfg.Streams, st: e.st}
	e.cfg.Source = countingSource{SourceAPI: cfg.Source, st: e.st}
	e.cfg.Dest = countingDest{DestAPI: cfg.Dest, st: e.st}
	cfg = e.cfg

	info, err := Describe(ctx, cfg.Source, cfg.InputTable)
	if err != nil {
		return nil, err
	}
	if cfg.StreamARN != "" && cfg.StreamARN != info.ARN {
		return nil, &plan.Error{Msg: fmt.Sprintf(
			"table %s now has stream %s, but this sync started on stream %s (the stream was disabled and enabled again?): changes in between are in neither; start the sync over by removing its state (%s) and running it again",
			cfg.InputTable, info.ARN, cfg.StreamARN, cfg.StateKey)}
	}
	var saved struct {
		ARN string `json:"arn"`
	}
	ok, err := cfg.Store.Get(ctx, e.key("arn"), &saved)
	if err != nil {
		return nil, err
	}
	if ok && saved.ARN != info.ARN {
		return nil, &plan.Error{Msg: fmt.Sprintf(
			"the stream checkpoints of %s ⇨ %s belong to stream %s, but the table now has stream %s (the stream was disabled and enabled again?): changes in between are in neither stream; copy the table again with sync after removing the state of this entry (%s)",
			cfg.InputTable, cfg.OutputTable, saved.ARN, info.ARN, cfg.StateKey)}
	}
	if !ok && !dryRun {
		saved.ARN = info.ARN
		if err := cfg.Store.Put(ctx, e.key("arn"), saved); err != nil {
			return nil, err
		}
	}
	out, err := dynamo.DescribeTable(ctx, cfg.Dest, cfg.OutputTable, "create it first, or check the output table name and region")
	if err != nil {
		return nil, err
	}
	if cfg.Program != nil {
		// With a transform the output may have another key; with old
		// images or not, the output item of a change must be found.
		if err := checkProgram(cfg, info, dynamo.KeySchemaOf(out)); err != nil {
			return nil, programError(err)
		}
	} else if err := dynamo.CheckSameKeys(cfg.InputTable, info.Keys, cfg.OutputTable, dynamo.KeySchemaOf(out)); err != nil {
		return nil, &plan.Error{Msg: err.Error()}
	}
	e.outKeys = transform.KeySchema(dynamo.KeySchemaOf(out))
	e.info = info
	if cfg.Leases != nil {
		if err := e.checkLeases(ctx); err != nil {
			return nil, err
		}
	}
	e.writer = &dynamo.Writer{Client: cfg.Dest, Table: cfg.OutputTable, Limiter: dynamo.NewLimiter(cfg.MaxWCU), Stats: e.st}
	for _, id := range cfg.FinishedShards {
		e.shards[id] = &shardState{Shard: Shard{ID: id}, done: true}
	}
	return e, nil
}

func (e *engine) key(parts ...string) string {
	k := e.cfg.StateKey + "/stream"
	for _, p := range parts {
		k += "/" + p
	}
	return k
}

// checkpoint is the saved progress of one shard.
type checkpoint struct {
	Seq     string    `json:"seq,omitempty"`     // last applied sequence number
	Created time.Time `json:"created,omitempty"` // its ApproximateCreationDateTime
	Done    bool      `json:"done,omitempty"`    // closed and fully applied
}

func (e *engine) loadCheckpoint(ctx context.Context, shard string) (checkpoint, error) {
	var cp checkpoint
	_, err := e.cfg.Store.Get(ctx, e.key("shards", shard), &cp)
	return cp, err
}

func (e *engine) saveCheckpoint(ctx context.Context, shard string, cp checkpoint) error {
	return e.cfg.Store.Put(ctx, e.key("shards", shard), cp)
}

func (e *engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *engine) run(ctx context.Context) error {
	stats.SetPhase(&e.st.StreamPhase, stats.Running)
	e.log.Info("streaming", zap.String("stream", e.info.ARN), zap.String("view_type", string(e.info.ViewType)))
	var err error
	if e.cfg.Leases != nil {
		err = e.runLeased(ctx)
	} else {
		readCtx, stopReaders := context.WithCancel(ctx)
		defer stopReaders()
		g, gctx := errgroup.WithContext(readCtx)
		err = e.coordinate(gctx, g)
		stopReaders()
		if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
			err = werr
		}
	}
	e.st.OpenShards.Store(0)
	if err != nil && !errors.Is(err, context.Canceled) {
		stats.SetPhase(&e.st.StreamPhase, stats.Failed)
		return err
	}
	if ctx.Err() != nil {
		// Interrupted: in-flight batches were applied and checkpointed.
		stats.SetPhase(&e.st.StreamPhase, stats.Complete)
		e.log.Info("stream stopped; checkpoints saved", zap.Int64("applied", e.st.RecordsApplied.Load()))
		return nil
	}
	stats.SetPhase(&e.st.StreamPhase, stats.Complete)
	e.log.Info("caught up", zap.Int64("applied", e.st.RecordsApplied.Load()), zap.Int64("skipped", e.st.RecordsSkipped.Load()))
	return nil
}

// coordinate lists shards, starts a reader for each shard whose parent is
// consumed, and (UntilCaughtUp) returns once everything is caught up.
func (e *engine) coordinate(ctx context.Context, g *errgroup.Group) error {
	for first := true; ; first = false {
		l, err := ListShards(ctx, e.cfg.Streams, e.info.ARN)
		if err != nil {
			if dynamo.IsNotFound(err) {
				return &dynamo.TableError{Table: e.cfg.InputTable, Op: "DescribeStream", Err: err}
			}
			return err
		}
		if first {
			if err := e.checkLost(ctx, l); err != nil {
				return err
			}
		}
		listed, err := e.merge(ctx, l)
		if err != nil {
			return err
		}
		for _, sh := range e.ready(listed) {
			g.Go(func() error {
				err := e.readShard(ctx, sh)
				if err != nil && !errors.Is(err, context.Canceled) {
					e.log.Error("shard failed", zap.String("shard", sh.ID), zap.Error(err))
				}
				return err
			})
		}
		if e.cfg.UntilCaughtUp && e.allCaughtUp(listed) {
			return nil
		}
		if l.Status == streamtypes.StreamStatusDisabled && e.allDone(listed) {
			return fmt.Errorf("the stream of table %s was disabled (or the table deleted): every change it holds was applied, but later changes are not recorded any more; enable the stream again and copy the table with sync", e.cfg.InputTable)
		}
		t := time.NewTimer(e.cfg.DiscoverInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-e.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// merge folds a listing into the known shards, loading finished markers.
func (e *engine) merge(ctx context.Context, l *Listing) ([]string, error) {
	ids := make([]string, 0, len(l.Shards))
	open := int64(0)
	for _, s := range l.Shards {
		ids = append(ids, s.ID)
		e.mu.Lock()
		st, ok := e.shards[s.ID]
		e.mu.Unlock()
		if !ok {
			cp, err := e.loadCheckpoint(ctx, s.ID)
			if err != nil {
				return nil, err
			}
			st = &shardState{Shard: s, done: cp.Done}
			e.mu.Lock()
			e.shards[s.ID] = st
			e.mu.Unlock()
		}
		e.mu.Lock()
		st.Parent, st.Start, st.End = s.Parent, s.Start, s.End
		if !st.done && !st.Closed() {
			open++
		}
		e.mu.Unlock()
	}
	e.st.OpenShards.Store(open)
	return ids, nil
}

// ready marks and returns the listed shards that can be read now: not
// started, not finished, and their parent finished or gone from the
// listing (trimmed).
func (e *engine) ready(listed []string) []*shardState {
	e.mu.Lock()
	defer e.mu.Unlock()
	inListing := make(map[string]bool, len(listed))
	for _, id := range listed {
		inListing[id] = true
	}
	var out []*shardState
	for _, id := range listed {
		st := e.shards[id]
		if st.started || st.done {
			continue
		}
		if p := st.Parent; p != "" {
			ps, known := e.shards[p]
			if known && !ps.done && (ps.started || inListing[p]) {
				continue // parent still being consumed
			}
			if !known && inListing[p] {
				continue
			}
		}
		st.started = true
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (e *engine) allCaughtUp(listed []string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range listed {
		st := e.shards[id]
		if !st.done && !(st.started && st.caughtUp) {
			return false
		}
	}
	return true
}

func (e *engine) allDone(listed []string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range listed {
		if !e.shards[id].done {
			return false
		}
	}
	return true
}

func (e *engine) setState(sh *shardState, f func(*shardState)) {
	e.mu.Lock()
	f(sh)
	e.mu.Unlock()
	e.poke()
}
