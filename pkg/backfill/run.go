package backfill

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/retry"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// run is the state of one Run.
type run struct {
	cfg Config
	log *zap.Logger
	st  *stats.Entry

	read, written, failed, skipped atomic.Int64
	// filtered counts the items the filter left out (on the client, or
	// through the FilterExpression); they are part of skipped.
	filtered atomic.Int64
	rcu, wcu stats.Float

	// inKeys and outKeys are the key schemas of the input and the output:
	// a failed item is logged with its input key, and with a transform
	// every output item is checked against outKeys.
	inKeys  dynamo.KeySchema
	outKeys transform.KeySchema
	// scanFilter is the part of the program's filter passed to Scan as a
	// FilterExpression (nil: none).
	scanFilter *expression.Expression

	total     int
	resumed   atomic.Bool // a leased segment resumed from a checkpoint
	ttlAttr   string
	now       func() time.Time
	writer    *dynamo.Writer
	rlim      *dynamo.Limiter
	scanLimit int32
	pacer     *retry.Pacer
	jobs      chan *batch
}

// segment is the progress of one scan segment.
type segment struct {
	n   int
	sem chan struct{} // one token per page read and not yet checkpointable

	mu      sync.Mutex
	pending []*page // pages in scan order, not yet checkpointable
	ckpt    SegmentCheckpoint
	version int64
	lastRCU float64 // consumed by the previous page (read budget estimate)

	flushMu sync.Mutex
	saved   int64 // version last written to the store

	// stuck: a page had items the program failed on (without
	// --skip-failed-items); the checkpoint no longer moves.
	stuck bool

	// With leases: checkpoints go through the lease; ctx ends when the
	// lease is lost or the run stops; finished is closed once the last
	// page is written.
	lease    *lease.Lease
	ctx      context.Context
	finished chan struct{}
	// writing counts the segment's batches being written (Add under mu,
	// only while ctx is live), so a stopped segment can wait for them.
	writing sync.WaitGroup
}

// page is one Scan page on its way to the output table.
type page struct {
	seg       *segment
	key       Key  // LastEvaluatedKey of the page
	final     bool // the segment's last page
	items     int64
	skipped   int64
	failed    int64        // items the program failed on
	remaining atomic.Int32 // batches not yet written
	done      bool         // every batch written (under seg.mu)
}

// batch is up to 25 puts of one page.
type batch struct {
	p    *page
	reqs []types.WriteRequest
}

func (r *run) run(ctx context.Context) (Result, error) {
	var res Result
	in, segs, recorded, err := r.prepare(ctx, &res)
	if err != nil {
		return res, err
	}
	leased := r.cfg.leased()
	if leased {
		if done, err := r.joinLeases(ctx, &res, recorded); err != nil || done {
			return res, err
		}
		segs = nil // taken one lease at a time
	}
	todo, done, err := r.loadCheckpoints(ctx, &res, segs)
	if err != nil {
		return res, err
	}
	if len(todo) == 0 && !leased {
		res.AlreadyDone = true
		r.log.Info(fmt.Sprintf("Backfill already complete: the checkpoints say segments %s of %d were all copied; nothing to do (remove the entry's checkpoints, state key %s in the %s, to copy again)",
			segmentsString(segs, r.total), r.total, r.cfg.StateKey, state.Where(r.cfg.Store)))
		return res, nil
	}
	if err := r.recordStart(ctx); err != nil {
		return res, err
	}
	parallel, pages, nWriters := r.setup(in, len(todo), leased)
	r.logStart(in, res.Resumed, segs, done, len(todo), parallel, nWriters)
	err = r.copy(ctx, todo, parallel, pages, nWriters)
	if r.resumed.Load() {
		res.Resumed = true
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = ctx.Err()
	}
	return res, err
}

// prepare describes both tables, resolves the segments (r.total and the
// ones to copy), sets up --skip-expired, creates a missing output table
// when asked to, and checks that both tables have the same key. recorded
// reports whether the total came from the checkpoint table.
func (r *run) prepare(ctx context.Context, res *Result) (in *types.TableDescription, segs []int, recorded bool, err error) {
	cfg := r.cfg
	if cfg.Source == nil || cfg.Dest == nil {
		return nil, nil, false, errors.New("backfill: Config.Source and Config.Dest are required")
	}
	if in, err = dynamo.DescribeTable(ctx, cfg.Source, cfg.InputTable, ""); err != nil {
		return nil, nil, false, err
	}
	out, err := dynamo.DescribeTable(ctx, cfg.Dest, cfg.OutputTable, createHint(cfg))
	var nf *dynamo.NotFoundError
	create := errors.As(err, &nf) && cfg.CreateOutputTable
	if err != nil && !create {
		return nil, nil, false, err
	}
	total, segs, recorded, err := plan0(ctx, cfg, in.TableSizeBytes)
	if err != nil {
		return nil, nil, false, err
	}
	r.total = total
	res.TotalSegments, res.Segments = total, segs
	r.st.ApproxItems.Store(aws.ToInt64(in.ItemCount))
	r.st.ApproxBytes.Store(aws.ToInt64(in.TableSizeBytes))
	if err := r.setupTTL(ctx); err != nil {
		return nil, nil, false, err
	}
	if create {
		if err := checkCreatedKeys(cfg, in); err != nil {
			return nil, nil, false, err
		}
		r.log.Info(fmt.Sprintf("Output table %s does not exist: creating it like %s and waiting until it is ACTIVE", cfg.OutputTable, cfg.InputTable))
		if out, err = createOutputTable(ctx, cfg.Source, cfg.Dest, cfg.OutputTable, in, CreateOptions{Stream: cfg.CreateOutputStream, Log: r.log}); err != nil {
			return nil, nil, false, err
		}
		r.log.Info(fmt.Sprintf("Output table %s created", cfg.OutputTable))
	}
	if err := checkKeys(cfg, in, out); err != nil {
		return nil, nil, false, err
	}
	r.inKeys = dynamo.KeySchemaOf(in)
	r.outKeys = transform.KeySchema(dynamo.KeySchemaOf(out))
	return in, segs, recorded, nil
}

// joinLeases registers the segment leases of a shared backfill: the
// first worker's total is every worker's, recorded with a conditional
// write before any lease exists. It reports whether every segment is
// finished already.
func (r *run) joinLeases(ctx context.Context, res *Result, recorded bool) (bool, error) {
	lc := r.cfg.Leases
	if !recorded {
		chosen, err := recordTotal(ctx, r.cfg, r.total)
		if err != nil {
			return false, err
		}
		if chosen != r.total {
			r.log.Info(fmt.Sprintf("Another worker recorded total_segments %d first; using it", chosen))
		}
		r.total = chosen
		res.TotalSegments, res.Segments = chosen, selection(nil, chosen)
	}
	if err := lc.Manager.Register(ctx, lc.Scope(lease.KindBackfill), lease.BackfillFingerprint(lc.Entry, r.total), lease.Segments(r.total)); err != nil {
		return false, err
	}
	all, err := LeasesDone(ctx, lc)
	if err != nil || !all {
		return false, err
	}
	res.AlreadyDone, res.Resumed = true, true
	r.log.Info(fmt.Sprintf("Backfill already complete: every one of the %d segment leases in checkpoint table %s is finished; nothing to do",
		r.total, lc.Manager.Table()))
	return true, nil
}

// loadCheckpoints reads the checkpoint of each segment of segs: todo are
// the segments still to copy (from their checkpoints), done how many are
// finished.
func (r *run) loadCheckpoints(ctx context.Context, res *Result, segs []int) (todo []*segment, done int, err error) {
	for _, n := range segs {
		s := &segment{n: n, ckpt: SegmentCheckpoint{Segment: n, TotalSegments: r.total}}
		c, ok, err := LoadSegment(ctx, r.cfg.Store, r.cfg.StateKey, n)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			if c.TotalSegments != r.total {
				return nil, 0, &plan.Error{Msg: fmt.Sprintf("checkpoint of segment %d says total_segments %d but the backfill checkpoint says %d: remove the entry's checkpoints (state key %s in the %s) to start over", n, c.TotalSegments, r.total, r.cfg.StateKey, state.Where(r.cfg.Store))}
			}
			s.ckpt = *c
			if c.Done {
				done++
				continue
			}
			if c.LastKey != nil {
				res.Resumed = true
			}
		}
		todo = append(todo, s)
	}
	if done > 0 {
		res.Resumed = true
	}
	return todo, done, nil
}

// recordStart writes the backfill checkpoint (Meta); a resumed copy
// keeps the time its first run began.
func (r *run) recordStart(ctx context.Context) error {
	cfg := r.cfg
	began := time.Now().UTC()
	if old, ok, err := LoadMeta(ctx, cfg.Store, cfg.StateKey); err != nil {
		return err
	} else if ok {
		began = old.Began // a resumed copy began with its first run
	}
	return cfg.Store.Put(ctx, metaKey(cfg.StateKey), Meta{
		TotalSegments: r.total, Segments: cfg.Segments,
		InputTable: cfg.InputTable, OutputTable: cfg.OutputTable, Started: time.Now().UTC(), Began: began,
		Program: ProgramFingerprint(cfg),
	})
}

// setup builds the capacity budgets, the retry pacer and the writer, and
// sizes the run: segments scanned at once, pages in flight per segment,
// writers, the Scan page size and the queue of batches.
func (r *run) setup(in *types.TableDescription, todo int, leased bool) (parallel, pages, nWriters int) {
	cfg := r.cfg
	r.rlim = dynamo.NewLimiter(cfg.MaxRCU)
	r.pacer = &retry.Pacer{Backoff: cfg.Backoff, Retries: &r.st.Retries, Throttles: &r.st.Throttles}
	r.writer = &dynamo.Writer{Client: cfg.Dest, Table: cfg.OutputTable, Limiter: dynamo.NewLimiter(cfg.MaxWCU), Stats: r.st, Backoff: cfg.Backoff}
	parallel = cfg.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	if leased {
		parallel = min(parallel, r.total)
	} else {
		parallel = min(parallel, todo)
	}
	perSeg := cfg.WritersPerSegment
	if perSeg <= 0 {
		perSeg = DefaultWritersPerSegment
	}
	pages = cfg.PagesInFlight
	if pages <= 0 {
		pages = DefaultPagesInFlight
	}
	if cfg.MaxRCU > 0 {
		// Keep one page near one second of each segment's share of the
		// budget, so the budget is spent smoothly: an eventually
		// consistent read costs half a unit per 4 KB.
		avg := 1024.0
		if items, size := aws.ToInt64(in.ItemCount), aws.ToInt64(in.TableSizeBytes); items > 0 && size > 0 {
			avg = float64(size) / float64(items)
		}
		if per := cfg.MaxRCU * 8192 / avg / float64(parallel); per < 10000 {
			r.scanLimit = int32(max(10, per))
		}
	}
	if cfg.PageSize > 0 && (r.scanLimit == 0 || cfg.PageSize < r.scanLimit) {
		r.scanLimit = cfg.PageSize
	}
	r.setupScanFilter()
	nWriters = parallel * perSeg
	r.jobs = make(chan *batch, nWriters*2)
	r.st.BufferCap.Store(int64(cap(r.jobs)))
	r.now = cfg.Now
	if r.now == nil {
		r.now = time.Now
	}
	return parallel, pages, nWriters
}

// logStart logs what the run is about to copy.
func (r *run) logStart(in *types.TableDescription, resumed bool, segs []int, done, todo, parallel, nWriters int) {
	msg := fmt.Sprintf("Backfill started: segments %s of %d (%d at a time, %d writers)", segmentsString(segs, r.total), r.total, parallel, nWriters)
	if m := r.cfg.Leases; r.cfg.leased() {
		msg = fmt.Sprintf("Backfill started: %d segments shared with other workers through leases in checkpoint table %s (worker %s, lease duration %s; up to %d segments at a time, %d writers)",
			r.total, m.Manager.Table(), m.Manager.Worker(), m.Manager.Options().Duration, parallel, nWriters)
	}
	if resumed {
		msg += fmt.Sprintf("; resuming from checkpoints: %d segments already done, %d to go", done, todo)
	}
	r.log.Info(msg, zap.Int64("approx_items", aws.ToInt64(in.ItemCount)), zap.Int64("approx_bytes", aws.ToInt64(in.TableSizeBytes)))
}

// copy runs the writers and the segment scanners (the segments of todo,
// or those of the leases this worker takes) until every segment is
// copied or the run stops, then saves what was fully written, whatever
// stopped the run.
func (r *run) copy(ctx context.Context, todo []*segment, parallel, pages, nWriters int) error {
	startWCU := r.st.ConsumedWCU.Load()
	g, gctx := errgroup.WithContext(ctx)
	for range nWriters {
		g.Go(func() error { return r.writeLoop(gctx) })
	}
	g.Go(func() error {
		defer close(r.jobs)
		if r.cfg.leased() {
			return r.processLeased(gctx, parallel, pages)
		}
		sg, sctx := errgroup.WithContext(gctx)
		sg.SetLimit(parallel)
		for _, s := range todo {
			s.sem = make(chan struct{}, pages)
			if sctx.Err() != nil {
				break
			}
			sg.Go(func() error { return r.scanSegment(sctx, s) })
		}
		return sg.Wait()
	})
	err := g.Wait()
	r.wcu.Add(r.st.ConsumedWCU.Load() - startWCU)
	r.st.BufferLen.Store(0)

	fctx := context.WithoutCancel(ctx)
	for _, s := range todo {
		if ferr := r.flush(fctx, s); ferr != nil && err == nil {
			err = ferr
		}
	}
	return err
}

// setupScanFilter passes the plain equalities of the filter to Scan as a
// FilterExpression: DynamoDB then leaves out, before they cross the
// network, some items the filter would reject. The scan still reads (and
// is billed for) every item, and every item returned still goes through
// the filter.
func (r *run) setupScanFilter() {
	if r.cfg.Program == nil {
		return
	}
	cond, ok := r.cfg.Program.ScanFilter()
	if !ok {
		return
	}
	e, err := expression.NewBuilder().WithFilter(cond).Build()
	if err != nil {
		r.log.Warn("the filter cannot be passed to Scan; every item is filtered here", zap.Error(err))
		return
	}
	r.scanFilter = &e
	r.log.Debug("Scan FilterExpression: " + aws.ToString(e.Filter()))
}

func (r *run) setupTTL(ctx context.Context) error {
	if !r.cfg.SkipExpired {
		return nil
	}
	out, err := r.cfg.Source.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(r.cfg.InputTable)})
	if err != nil {
		return &dynamo.TableError{Table: r.cfg.InputTable, Op: "DescribeTimeToLive", Err: err}
	}
	d := out.TimeToLiveDescription
	if d == nil || d.AttributeName == nil || (d.TimeToLiveStatus != types.TimeToLiveStatusEnabled && d.TimeToLiveStatus != types.TimeToLiveStatusEnabling) {
		r.log.Warn(fmt.Sprintf("skipping expired items (%s): time to live is not enabled on %s; every item is copied", r.cfg.Names.Of("SkipExpired"), r.cfg.InputTable))
		return nil
	}
	r.ttlAttr = *d.AttributeName
	r.log.Info(fmt.Sprintf("Skipping items that time to live will delete: attribute %s lies in the past, but not more than five years (DynamoDB never deletes those)", r.ttlAttr))
	return nil
}

// expired reports whether DynamoDB's time to live would delete item: its
// TTL attribute is a number of epoch seconds before now, and not more than
// five years before now (DynamoDB ignores such values and never deletes
// those items, so they are copied). Items without the attribute (or with
// another type) are kept, as DynamoDB keeps them.
func (r *run) expired(item map[string]types.AttributeValue, now time.Time) bool {
	v, ok := item[r.ttlAttr].(*types.AttributeValueMemberN)
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(v.Value, 64)
	return err == nil && f < float64(now.Unix()) && f >= float64(now.AddDate(-ttlHorizonYears, 0, 0).Unix())
}

// ttlHorizonYears: DynamoDB's time to live does not delete items whose TTL
// value lies more than five years in the past.
const ttlHorizonYears = 5

func (r *run) scanSegment(ctx context.Context, s *segment) error {
	start, err := s.ckpt.LastKey.Decode()
	if err != nil {
		return fmt.Errorf("checkpoint of segment %d is damaged (%v): remove the entry's checkpoints (state key %s in the %s) to start over", s.n, err, r.cfg.StateKey, state.Where(r.cfg.Store))
	}
	if start != nil {
		r.log.Debug(fmt.Sprintf("Segment %d resumes after %d items", s.n, s.ckpt.ItemsWritten))
	}
	in := &dynamodb.ScanInput{
		TableName:              aws.String(r.cfg.InputTable),
		Segment:                aws.Int32(int32(s.n)),
		TotalSegments:          aws.Int32(int32(r.total)),
		ExclusiveStartKey:      start,
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	if r.scanLimit > 0 {
		in.Limit = aws.Int32(r.scanLimit)
	}
	if f := r.scanFilter; f != nil {
		in.FilterExpression = f.Filter()
		in.ExpressionAttributeNames = f.Names()
		in.ExpressionAttributeValues = f.Values()
	}
	for {
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		out, err := r.scanPage(ctx, s, in)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		p := &page{seg: s, final: len(out.LastEvaluatedKey) == 0}
		if !p.final {
			if p.key, err = EncodeKey(out.LastEvaluatedKey); err != nil {
				return &dynamo.TableError{Table: r.cfg.InputTable, Op: "Scan", Err: err}
			}
		}
		// With a FilterExpression, DynamoDB read ScannedCount items and
		// returned Count of them: the others were left out by the filter.
		n := int64(len(out.Items))
		read := max(n, int64(out.ScannedCount))
		r.read.Add(read)
		r.st.ItemsRead.Add(read)
		reqs, filtered := r.pageRequests(p, out.Items)
		filtered += read - n
		p.skipped += filtered
		if filtered > 0 {
			r.filtered.Add(filtered)
			r.st.ItemsFiltered.Add(filtered)
		}
		if p.skipped > 0 {
			r.skipped.Add(p.skipped)
			r.st.ItemsSkipped.Add(p.skipped)
		}
		if p.failed > 0 {
			r.failed.Add(p.failed)
			r.st.ItemsFailed.Add(p.failed)
		}
		p.items = int64(len(reqs))
		nb := (len(reqs) + dynamo.MaxBatchWrite - 1) / dynamo.MaxBatchWrite
		p.remaining.Store(int32(nb))
		s.mu.Lock()
		s.pending = append(s.pending, p)
		s.mu.Unlock()
		if nb == 0 {
			if err := r.pageDone(ctx, p); err != nil {
				return err
			}
		}
		for i := 0; i < len(reqs); i += dynamo.MaxBatchWrite {
			b := &batch{p: p, reqs: reqs[i:min(i+dynamo.MaxBatchWrite, len(reqs))]}
			select {
			case r.jobs <- b:
				r.st.BufferLen.Store(int64(len(r.jobs)))
			case <-ctx.Done():
				return nil
			}
		}
		if p.final {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// pageRequests turns a page's items into puts: items DynamoDB's TTL will
// delete are left out (--skip-expired, counted in p.skipped), then the
// program filters and transforms the others. Items the filter rejects are
// counted in filtered (and are skipped), items it fails on in p.failed,
// each logged with its input key.
func (r *run) pageRequests(p *page, items []map[string]types.AttributeValue) (reqs []types.WriteRequest, filtered int64) {
	reqs = make([]types.WriteRequest, 0, len(items))
	var now time.Time
	if r.ttlAttr != "" {
		now = r.now()
	}
	prog := r.cfg.Program
	for _, it := range items {
		if r.ttlAttr != "" && r.expired(it, now) {
			p.skipped++
			continue
		}
		if prog != nil {
			out, keep, err := prog.Apply(it)
			if err == nil && keep && prog.HasTransform() {
				err = transform.CheckKeys(out, r.outKeys)
			}
			switch {
			case err != nil:
				p.failed++
				r.logFailed(it, err)
				continue
			case !keep:
				filtered++
				continue
			}
			it = out
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
	}
	return reqs, filtered
}

// logFailed logs an item the program failed on, with its input key.
func (r *run) logFailed(item map[string]types.AttributeValue, err error) {
	r.log.Error("item failed: "+err.Error(), zap.String("key", r.inKeys.FormatKey(item)))
}

// scanPage reads one page, within the read budget. Throttling is retried
// for as long as it lasts; other retryable errors a few rounds (beyond the
// SDK's own retries); anything else stops the run.
func (r *run) scanPage(ctx context.Context, s *segment, in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
	est := s.lastRCU
	if err := r.rlim.Wait(ctx, est); err != nil {
		return nil, err
	}
	var out *dynamodb.ScanOutput
	err := r.pacer.Call(ctx, func() error {
		var err error
		out, err = r.cfg.Source.Scan(ctx, in)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &dynamo.TableError{Table: r.cfg.InputTable, Op: "Scan", Err: err}
	}
	consumed := 0.0
	if out.ConsumedCapacity != nil {
		consumed = aws.ToFloat64(out.ConsumedCapacity.CapacityUnits)
	}
	r.rcu.Add(consumed)
	r.st.ConsumedRCU.Add(consumed)
	s.lastRCU = consumed
	if err := r.rlim.Settle(ctx, max(len(out.Items), int(out.ScannedCount)), est, consumed); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *run) writeLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case b, ok := <-r.jobs:
			if !ok {
				return nil
			}
			r.st.BufferLen.Store(int64(len(r.jobs)))
			if err := r.write(ctx, b); err != nil {
				return err
			}
		}
	}
}

func (r *run) write(ctx context.Context, b *batch) error {
	if s := b.p.seg; s.ctx != nil {
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			return nil // the segment stopped (lease lost, handed over or run stopping): its new owner reads the page again
		}
		s.writing.Add(1)
		s.mu.Unlock()
		defer s.writing.Done()
		// Stop at once if the lease is lost while writing; the writer's
		// client refuses to send once the lease is lost or overdue.
		wctx, cancel := s.lease.WithContext(ctx)
		defer cancel()
		ctx = wctx
	}
	n, err := r.writer.Write(ctx, b.reqs)
	r.written.Add(int64(n))
	r.st.ItemsWritten.Add(int64(n))
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) || errors.Is(err, lease.ErrLost) {
			return nil // abandoned: the page is not checkpointed and is read again on resume
		}
		failed := int64(len(b.reqs) - n)
		r.failed.Add(failed)
		r.st.ItemsFailed.Add(failed)
		return err
	}
	// Let the written items go now rather than with their whole page.
	clear(b.reqs)
	if b.p.remaining.Add(-1) == 0 {
		return r.pageDone(ctx, b.p)
	}
	return nil
}

// pageDone marks a page written and moves the segment's checkpoint past
// every page at the head of its queue that is fully written.
func (r *run) pageDone(ctx context.Context, p *page) error {
	s := p.seg
	s.mu.Lock()
	p.done = true
	popped := 0
	finished := false
	for len(s.pending) > 0 && s.pending[0].done {
		q := s.pending[0]
		s.pending[0] = nil
		s.pending = s.pending[1:]
		popped++
		if q.failed > 0 && !r.cfg.SkipFailedItems {
			// Items of this page failed: the checkpoint stays before it,
			// so that the run, which fails, copies them when run again
			// (skipping them, or after starting over with a corrected
			// transform).
			s.stuck = true
		}
		if s.stuck {
			if q.final && s.finished != nil {
				close(s.finished) // scanned to the end; see processLeased
			}
			continue
		}
		s.ckpt.ItemsFailed += q.failed
		s.ckpt.LastKey = q.key
		s.ckpt.ItemsWritten += q.items
		s.ckpt.ItemsSkipped += q.skipped
		s.ckpt.Pages++
		if q.final {
			s.ckpt.Done = true
			s.ckpt.LastKey = nil
			finished = true
		}
		s.version++
	}
	items := s.ckpt.ItemsWritten
	s.mu.Unlock()
	for range popped {
		<-s.sem
	}
	if popped == 0 {
		return nil
	}
	if err := r.flush(ctx, s); err != nil {
		return err
	}
	if finished {
		r.log.Info(fmt.Sprintf("Segment %d of %d complete: %d items written", s.n, r.total, items))
		if s.finished != nil {
			close(s.finished)
		}
	}
	return nil
}

// flush writes the segment's checkpoint if it moved since the last write.
func (r *run) flush(ctx context.Context, s *segment) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	c, v := s.ckpt, s.version
	s.mu.Unlock()
	if v == s.saved {
		return nil
	}
	c.Updated = time.Now().UTC()
	if s.lease != nil {
		err := s.lease.Checkpoint(context.WithoutCancel(ctx), c)
		switch {
		case errors.Is(err, lease.ErrLost) || errors.Is(err, lease.ErrEnded):
			return nil // no longer ours: the new owner goes on from the last checkpoint
		case err != nil:
			return fmt.Errorf("save the checkpoint of segment %d: %w", s.n, err)
		}
		s.saved = v
		return nil
	}
	if err := r.cfg.Store.Put(context.WithoutCancel(ctx), segmentKey(r.cfg.StateKey, s.n), c); err != nil {
		return fmt.Errorf("save the checkpoint of segment %d: %w", s.n, err)
	}
	s.saved = v
	return nil
}
