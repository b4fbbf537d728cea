// Package diff compares a master DynamoDB table with one or more slave
// tables, reports every missing, differing and extra item, and repairs
// them on request with conditional writes that never overwrite a change
// made by someone else after the diff read the slave.
//
// The walk follows rclone's fs/march: the master is scanned (one or more
// segments), each page is cut into chunks of at most BatchReadLimit keys,
// and checkers look every chunk up in each slave with BatchGetItem. Items
// only in the master are "missing" (sigil +), items in both that differ
// "differing" (*), items only in a slave "extra" (-, found by a second
// scan of the slave, only with DeleteExtra or ScanForExtra). That is the
// lookup method; the merge method (merge.go, the usual choice: two scans
// instead of a read unit per item) scans every table once and compares
// the scans by key, confirming each difference with consistent reads
// before it is reported or repaired.
package diff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/retry"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// Limits of the DynamoDB API.
const (
	MaxBatchRead          = 100
	DefaultBatchReadLimit = 50
)

// Client is the part of the DynamoDB client the diff needs; a
// *dynamodb.Client satisfies it.
type Client interface {
	dynamodb.ScanAPIClient
	dynamodb.BatchGetItemAPIClient
	dynamodb.DescribeTableAPIClient
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Table is one side of the diff.
type Table struct {
	Name   string // DynamoDB table name
	Label  string // "REGION:TABLE", used in logs, reports and JSON output
	Client Client
	// Stats receives the counters of a slave (nil: one is created). Not
	// used for the master.
	Stats *stats.Entry
	// Logger receives the lines about a slave (nil: Config.Logger). The
	// command names it after the master and the slave. Not used for the
	// master.
	Logger *zap.Logger

	// keys is the table's key schema, set by Check (the master's, or
	// the slaves' output key).
	keys dynamo.KeySchema
}

// Config is one diff run.
type Config struct {
	Master Table
	Slaves []Table

	// Names is how the caller spells the options named in messages (nil:
	// their Go names, the fields of Config).
	Names job.Names

	// Method is MethodMerge, MethodLookup, or MethodAuto ("" too): the
	// cheaper of the two, estimated from the table sizes (method.go).
	Method string
	// MemoryLimit bounds the memory of the merge method, counted in what
	// Go spends (0: DefaultMemoryLimit): the scanned records spill to disk
	// past a sixteenth of it, and the Scan pages are sized to fit in an
	// eighth (memory.go).
	MemoryLimit int64
	// StateDir makes the merge method resumable: its spill files and scan
	// positions are kept in StateDir/diff-<id> (resume.go), and a run
	// with the same tables, segments and ignored attributes continues
	// where an interrupted one stopped. Empty: spill files go to the
	// system's temporary directory, and a run starts from the beginning.
	StateDir string

	// TotalSegments is the number of scan segments (1 or 0: a serial scan).
	TotalSegments int
	// PageSize is the Scan page size (0: DynamoDB's 1 MB pages, which the
	// merge method cuts to fit MemoryLimit: memory.go).
	PageSize int32
	// BatchReadLimit is the number of keys per BatchGetItem (0: 50; at
	// most 100).
	BatchReadLimit int
	// StartingKey resumes a serial master scan after this key (the
	// LastEvaluatedKey the log shows). Not allowed with TotalSegments > 1.
	StartingKey map[string]types.AttributeValue

	WriteMissing   bool // put master items the slave lacks
	WriteDiffering bool // overwrite slave items that differ
	DeleteExtra    bool // scan slaves, delete items the master lacks
	ScanForExtra   bool // scan slaves for extra items, report only
	// ExtraOnly leaves out the walk of the master: only the slaves are
	// scanned, for items the master lacks (reported, and deleted with
	// DeleteExtra). sync uses it to reconcile an output table that held
	// items before the copy.
	ExtraOnly bool

	// Ignore lists attribute names or globs left out of comparisons (and
	// never written over on the slave).
	Ignore []string
	// Program, when set, is the filter and transform of a migration: the
	// master is compared as the migration would write it. Master items
	// the filter rejects are left out, the others are transformed and
	// matched with slave items by the output key (the slaves' key schema,
	// which may differ from the master's); repairs write transformed
	// items. See transform.go for what confirms an extra item.
	Program *transform.Program
	// SkipFailedItems makes Run succeed although master items failed the
	// program (an evaluation error, an output key of the wrong type):
	// they are counted in SlaveResult.Failed and logged either way;
	// without it Run ends with a *FailedItemsError.
	SkipFailedItems bool
	// VersionAttribute, when set, makes repairs conditional on this
	// attribute alone, and forbids replacing a newer slave version with an
	// older master one.
	VersionAttribute string

	// Checkers is the number of concurrent chunk checkers (0: 4 per scan
	// segment, at least 8, at most 64).
	Checkers int
	// Writers bounds the concurrent conditional repair writes (0: 16).
	Writers int

	// Verbose logs one line per difference (and per equal item at debug
	// level), with rclone check's sigils.
	Verbose bool
	// Report receives every difference as one JSON object a line.
	Report io.Writer
	// ResumeLogEvery is how often the resume key of a serial scan is
	// logged (0: 10 s; negative: after every page).
	ResumeLogEvery time.Duration
	// Backoff between retries of throttled requests and unprocessed keys
	// (zero fields: retry.DefaultBase, retry.DefaultMax).
	Backoff retry.Backoff

	Logger *zap.Logger // nil: no logs
}

// SlaveResult is the outcome for one slave.
type SlaveResult struct {
	Slave     string `json:"slave"`
	Scanned   int64  `json:"scanned"`
	Matching  int64  `json:"matching"`
	Missing   int64  `json:"missing"`
	Differing int64  `json:"differing"`
	Extra     int64  `json:"extra"`
	Written   int64  `json:"written"`
	Deleted   int64  `json:"deleted"`
	Skipped   int64  `json:"skipped"`
	Errors    int64  `json:"errors"`
	// Failed counts master items the filter or transform could not
	// process (logged with their key); FilteredOut the master items the
	// filter left out. Both count in every slave's line, like Scanned.
	Failed      int64 `json:"failed"`
	FilteredOut int64 `json:"filtered_out"`
	// Method is how the slave was compared: merge or lookup.
	Method      string  `json:"method"`
	ConsumedRCU float64 `json:"consumed_rcu"`
	ConsumedWCU float64 `json:"consumed_wcu"`
	// CandidatesResolved counts the differences the scans suggested that
	// consistent reads found resolved (merge method): items changed
	// during the scans.
	CandidatesResolved int64 `json:"candidates_resolved"`
	// Retries counts requests sent again (by the SDK's retryer or by the
	// diff: throttling, 5xx, dropped connections, unprocessed keys), and
	// Throttles the throttling answers among the failures. The master
	// scan serves every slave, so its retries count in each slave's line.
	Retries   int64 `json:"-"`
	Throttles int64 `json:"-"`
}

// Remaining is the number of differences found and not repaired.
func (r SlaveResult) Remaining() int64 {
	return r.Missing + r.Differing + r.Extra - r.Written - r.Deleted
}

// Result is the outcome of a run.
type Result struct {
	Master   string
	Slaves   []SlaveResult
	Duration time.Duration
}

// Remaining is the number of differences left over all slaves.
func (r Result) Remaining() int64 {
	var n int64
	for _, s := range r.Slaves {
		n += s.Remaining()
	}
	return n
}

// Differ is a prepared diff: tables described and checked.
type Differ struct {
	cfg    Config
	keys   dynamo.KeySchema
	ignore *Matcher
	log    *zap.Logger
	slaves []*slave
	writes chan struct{}

	// prg is Config.Program (nil: none); out is the slaves' key schema
	// (d.keys without a transform). keyed is set when master records
	// carry their input key beside the output key (the output key is not
	// the input key); carriers names, per input key attribute, the output
	// attribute holding a copy of it (nil when an output item does not
	// name its input item: see transform.go).
	prg      *transform.Program
	out      dynamo.KeySchema
	keyed    bool
	carriers []string

	method   string      // MethodMerge or MethodLookup
	estimate Estimate    // of both methods, from the table sizes
	sizes    []tableSize // master, then the slaves

	reportMu sync.Mutex
	report   *json.Encoder
}

type slave struct {
	Table
	st       *stats.Entry
	log      *zap.Logger
	resolved atomic.Int64 // merge candidates resolved on a consistent read
	failed   atomic.Int64 // master items the program failed on
	filtered atomic.Int64 // master items the filter left out
}

// Check checks the configuration and that every table exists and
// shares the master's key schema. A missing table is a
// *dynamo.NotFoundError, a key mismatch or bad setting a *plan.Error (both
// usage errors: nothing was read or written).
func Check(ctx context.Context, cfg Config) (*Differ, error) {
	if len(cfg.Slaves) == 0 {
		return nil, &plan.Error{Msg: fmt.Sprintf("no slave table: give at least one (%s)", cfg.Names.Of("Slaves"))}
	}
	if cfg.TotalSegments <= 0 {
		cfg.TotalSegments = 1
	}
	if cfg.BatchReadLimit == 0 {
		cfg.BatchReadLimit = DefaultBatchReadLimit
	}
	if cfg.BatchReadLimit < 1 || cfg.BatchReadLimit > MaxBatchRead {
		return nil, &plan.Error{Msg: fmt.Sprintf("batch read limit is %d; allowed: 1 to %d", cfg.BatchReadLimit, MaxBatchRead)}
	}
	if cfg.PageSize < 0 {
		return nil, &plan.Error{Msg: fmt.Sprintf("scan limit is %d; allowed: 0 (DynamoDB's 1 MB pages) or more", cfg.PageSize)}
	}
	switch cfg.Method {
	case "", MethodAuto, MethodMerge, MethodLookup:
	default:
		return nil, &plan.Error{Msg: fmt.Sprintf("method %q; allowed: auto, merge, lookup", cfg.Method)}
	}
	if cfg.StartingKey != nil && cfg.Method == MethodMerge {
		return nil, &plan.Error{Msg: "a starting key resumes the lookup method's serial scan; it cannot be combined with the merge method (which resumes from the state directory)"}
	}
	if cfg.StartingKey != nil && cfg.TotalSegments > 1 {
		return nil, &plan.Error{Msg: fmt.Sprintf("a starting key (%s) resumes a serial scan; it cannot be combined with more than one segment (%s)", cfg.Names.Of("StartingKey"), cfg.Names.Of("TotalSegments"))}
	}
	if cfg.Checkers <= 0 {
		cfg.Checkers = min(max(8, 4*cfg.TotalSegments), 64)
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 16
	}
	if cfg.ResumeLogEvery == 0 {
		cfg.ResumeLogEvery = 10 * time.Second
	}
	ign, err := NewMatcher(cfg.Ignore)
	if err != nil {
		return nil, &plan.Error{Msg: fmt.Sprintf("ignore pattern: %v", err)}
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	d := &Differ{cfg: cfg, ignore: ign, log: log, writes: make(chan struct{}, cfg.Writers)}
	if cfg.Report != nil {
		d.report = json.NewEncoder(cfg.Report)
	}

	mdesc, err := dynamo.DescribeTable(ctx, cfg.Master.Client, cfg.Master.Name, "check the master table ("+cfg.Names.Of("Master")+")")
	if err != nil {
		return nil, err
	}
	d.keys = dynamo.KeySchemaOf(mdesc)
	for _, name := range d.keys.Names() {
		if ign.Ignored(name) {
			return nil, &plan.Error{Msg: fmt.Sprintf("the attributes to ignore (%s) match the key attribute %q; key attributes cannot be ignored", cfg.Names.Of("Ignore"), name)}
		}
	}
	if cfg.StartingKey != nil {
		if err := checkKey(cfg.StartingKey, d.keys); err != nil {
			return nil, &plan.Error{Msg: fmt.Sprintf("starting key %s does not fit table %s: %v", FormatKeyJSON(cfg.StartingKey), cfg.Master.Label, err)}
		}
	}
	d.cfg.Master.keys = d.keys
	d.prg = cfg.Program
	for i, s := range cfg.Slaves {
		sdesc, err := dynamo.DescribeTable(ctx, s.Client, s.Name, "check the slave table ("+cfg.Names.Of("Slaves")+")")
		if err != nil {
			return nil, err
		}
		if err := d.checkSlaveKeys(i, s, dynamo.KeySchemaOf(sdesc)); err != nil {
			return nil, err
		}
		s.keys = d.out
		st := s.Stats
		if st == nil {
			st = stats.NewEntry(cfg.Master.Label, s.Label)
		}
		st.ApproxItems.Store(aws.ToInt64(mdesc.ItemCount))
		st.ApproxBytes.Store(aws.ToInt64(mdesc.TableSizeBytes))
		slaveLog := s.Logger
		if slaveLog == nil {
			slaveLog = log
		}
		d.slaves = append(d.slaves, &slave{Table: s, st: st, log: slaveLog})
		d.sizes = append(d.sizes, sizeOf(sdesc))
	}
	d.sizes = append([]tableSize{sizeOf(mdesc)}, d.sizes...)
	if err := d.prepareProgram(); err != nil {
		return nil, err
	}
	d.chooseMethod(d.sizes[0], d.sizes[1:])
	return d, nil
}

// KeySchema is the key of the tables.
func (d *Differ) KeySchema() dynamo.KeySchema { return d.keys }

// Run compares (and repairs) every slave. It returns the counts so far
// and an error when the run could not finish: ctx.Err() when cancelled,
// a *dynamo.TableError when a table failed or disappeared. Differences that
// remain are not an error: see Result.Remaining.
func (d *Differ) Run(ctx context.Context) (Result, error) {
	start := time.Now()
	for _, s := range d.slaves {
		stats.SetPhase(&s.st.DiffPhase, stats.Running)
		s.st.Started.Store(start.UnixNano())
	}
	err := d.run(ctx)
	phase := stats.Complete
	if err != nil {
		phase = stats.Failed
	}
	res := Result{Master: d.cfg.Master.Label, Duration: time.Since(start)}
	for _, s := range d.slaves {
		stats.SetPhase(&s.st.DiffPhase, phase)
		res.Slaves = append(res.Slaves, SlaveResult{
			Slave:       s.Label,
			Scanned:     s.st.Scanned.Load(),
			Matching:    s.st.Matching.Load(),
			Missing:     s.st.Missing.Load(),
			Differing:   s.st.Differing.Load(),
			Extra:       s.st.Extra.Load(),
			Written:     s.st.Repaired.Load(),
			Deleted:     s.st.Deleted.Load(),
			Skipped:     s.st.Conflicts.Load(),
			Errors:      s.st.Errors.Load(),
			Failed:      s.failed.Load(),
			FilteredOut: s.filtered.Load(),
			ConsumedRCU: s.st.ConsumedRCU.Load(),
			ConsumedWCU: s.st.ConsumedWCU.Load(),
			Retries:     s.st.Retries.Load(),
			Throttles:   s.st.Throttles.Load(),
			Method:      d.method,

			CandidatesResolved: s.resolved.Load(),
		})
	}
	if err == nil && !d.cfg.SkipFailedItems {
		if n := res.Failed(); n > 0 {
			err = &FailedItemsError{Count: n, Option: d.cfg.Names.Of("SkipFailedItems")}
		}
	}
	return res, err
}

func (d *Differ) run(ctx context.Context) error {
	mode := "dry run: nothing is written"
	if d.cfg.WriteMissing || d.cfg.WriteDiffering || d.cfg.DeleteExtra {
		mode = fmt.Sprintf("repairing: write-missing=%v write-differing=%v delete-extra=%v", d.cfg.WriteMissing, d.cfg.WriteDiffering, d.cfg.DeleteExtra)
	}
	d.log.Info(fmt.Sprintf("diff of master %s with %d slave(s), key %s, %d scan segment(s); %s%s",
		d.cfg.Master.Label, len(d.slaves), d.keys, d.cfg.TotalSegments, mode, d.describeProgram()))
	if d.cfg.ExtraOnly {
		return d.walkSlaves(ctx)
	}
	if d.method == MethodMerge {
		return d.runMerge(ctx)
	}
	err := d.walk(ctx, walkSpec{
		name:   "master " + d.cfg.Master.Label,
		table:  d.cfg.Master,
		start:  d.cfg.StartingKey,
		resume: d.cfg.TotalSegments == 1,
		chargeRCU: func(u float64) {
			for _, s := range d.slaves {
				s.st.ConsumedRCU.Add(u / float64(len(d.slaves)))
			}
		},
		chargeRetries: func(retries, throttles int64) {
			for _, s := range d.slaves {
				s.st.Retries.Add(retries)
				s.st.Throttles.Add(throttles)
			}
		},
		check: d.checkMasterChunk,
	})
	if err != nil {
		return err
	}
	if !d.cfg.DeleteExtra && !d.cfg.ScanForExtra {
		return nil
	}
	return d.walkSlaves(ctx)
}

// walkSlaves scans every slave for items the master lacks.
func (d *Differ) walkSlaves(ctx context.Context) error {
	for _, s := range d.slaves {
		s.log.Info("scanning the slave for items the master lacks")
		err := d.walk(ctx, walkSpec{
			name:      "slave " + s.Label,
			table:     s.Table,
			chargeRCU: func(u float64) { s.st.ConsumedRCU.Add(u) },
			chargeRetries: func(retries, throttles int64) {
				s.st.Retries.Add(retries)
				s.st.Throttles.Add(throttles)
			},
			check: func(ctx context.Context, items []map[string]types.AttributeValue) error {
				return d.checkSlaveChunk(ctx, s, items)
			},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// item is a DynamoDB item.
type item = map[string]types.AttributeValue

// walkSpec is one scan of a table whose chunks are checked concurrently.
type walkSpec struct {
	name      string
	table     Table
	start     item
	resume    bool // log the resume key (serial scans)
	chargeRCU func(float64)
	// chargeRetries counts the retries and throttling answers of the scan.
	chargeRetries func(retries, throttles int64)
	check         func(ctx context.Context, items []item) error
}

type chunk struct {
	items []item
	seg   *segment
	page  *page
}

// segment tracks the pages of one scan segment so that the key after
// which every item has been checked is known (for --starting-key).
type segment struct {
	n       int
	mu      sync.Mutex
	pages   []*page
	safe    item // every item up to this key is checked; nil: from the start
	started bool
	done    bool
	lastLog time.Time
}

type page struct {
	remaining int
	lek       item
}

func (d *Differ) walk(ctx context.Context, w walkSpec) error {
	g, gctx := errgroup.WithContext(ctx)
	// The queue holds about two 1 MB pages of chunks beyond what the
	// checkers work on, so that a scan segment fetches its next page while
	// the checkers work through the last one; divided among the segments
	// so that memory stays bounded whatever the parallelism.
	chunks := make(chan chunk, 2*d.cfg.Checkers+160/d.cfg.TotalSegments)
	segs := make([]*segment, d.cfg.TotalSegments)
	var scanners sync.WaitGroup
	for i := range segs {
		segs[i] = &segment{n: i, safe: w.start, started: w.start != nil, lastLog: time.Now()}
		scanners.Add(1)
		g.Go(func() error {
			defer scanners.Done()
			return d.scanSegment(gctx, w, segs[i], chunks)
		})
	}
	go func() {
		scanners.Wait()
		close(chunks)
	}()
	for range d.cfg.Checkers {
		g.Go(func() error {
			for c := range chunks {
				if err := w.check(gctx, c.items); err != nil {
					return err
				}
				d.chunkDone(w, c)
			}
			return nil
		})
	}
	err := g.Wait()
	if err != nil && w.resume {
		s := segs[0]
		s.mu.Lock()
		safe, started := s.safe, s.started
		s.mu.Unlock()
		if started && safe != nil {
			d.log.Info(fmt.Sprintf("%s: stopped; every item up to this key was checked: resume with the starting key (%s) '%s'", w.name, d.cfg.Names.Of("StartingKey"), FormatKeyJSON(safe)))
		} else if !started {
			d.log.Info(fmt.Sprintf("%s: stopped before the first page was checked: run again without a starting key (%s)", w.name, d.cfg.Names.Of("StartingKey")))
		}
	}
	return err
}

func (d *Differ) scanSegment(ctx context.Context, w walkSpec, seg *segment, out chan<- chunk) error {
	in := &dynamodb.ScanInput{
		TableName:              aws.String(w.table.Name),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		ExclusiveStartKey:      w.start,
	}
	if d.cfg.TotalSegments > 1 {
		in.Segment = aws.Int32(int32(seg.n))
		in.TotalSegments = aws.Int32(int32(d.cfg.TotalSegments))
	}
	if d.cfg.PageSize > 0 {
		in.Limit = aws.Int32(d.cfg.PageSize)
	}
	p := dynamodb.NewScanPaginator(w.table.Client, in)
	for p.HasMorePages() {
		var out0 *dynamodb.ScanOutput
		// Counted on a scratch entry, then charged to the slaves the scan
		// serves.
		var tally stats.Entry
		err := d.retry(ctx, &tally, w.table.Name, "Scan", func() error {
			var err error
			out0, err = p.NextPage(ctx, countRetries(&tally))
			return err
		})
		if n, th := tally.Retries.Load(), tally.Throttles.Load(); n+th > 0 {
			w.chargeRetries(n, th)
		}
		if err != nil {
			return err
		}
		if out0.ConsumedCapacity != nil {
			w.chargeRCU(aws.ToFloat64(out0.ConsumedCapacity.CapacityUnits))
		}
		n := (len(out0.Items) + d.cfg.BatchReadLimit - 1) / d.cfg.BatchReadLimit
		pg := &page{remaining: n, lek: out0.LastEvaluatedKey}
		seg.mu.Lock()
		seg.pages = append(seg.pages, pg)
		seg.mu.Unlock()
		if n == 0 {
			d.pageProgress(w, seg)
			continue
		}
		for start := 0; start < len(out0.Items); start += d.cfg.BatchReadLimit {
			end := min(start+d.cfg.BatchReadLimit, len(out0.Items))
			select {
			case out <- chunk{items: out0.Items[start:end], seg: seg, page: pg}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

func (d *Differ) chunkDone(w walkSpec, c chunk) {
	c.seg.mu.Lock()
	c.page.remaining--
	c.seg.mu.Unlock()
	d.pageProgress(w, c.seg)
}

// pageProgress pops the fully checked pages at the front of the segment
// and logs the resume key now and then.
func (d *Differ) pageProgress(w walkSpec, seg *segment) {
	seg.mu.Lock()
	advanced := false
	for len(seg.pages) > 0 && seg.pages[0].remaining == 0 {
		seg.safe = seg.pages[0].lek
		seg.started = true
		if seg.safe == nil {
			seg.done = true
		}
		seg.pages = seg.pages[1:]
		advanced = true
	}
	logNow := advanced && !seg.done && seg.safe != nil && time.Since(seg.lastLog) >= d.cfg.ResumeLogEvery
	var key string
	if logNow {
		seg.lastLog = time.Now()
		key = FormatKeyJSON(seg.safe)
	}
	seg.mu.Unlock()
	switch {
	case !logNow:
	case w.resume:
		d.log.Info(fmt.Sprintf("%s: checked up to key %s (to resume: %s '%s')", w.name, key, d.cfg.Names.Of("StartingKey"), key))
	default:
		d.log.Debug(fmt.Sprintf("%s: segment %d/%d checked up to key %s", w.name, seg.n, d.cfg.TotalSegments, key))
	}
}

// retry calls fn until it succeeds: throttling is retried for as long as
// it lasts (it slows a run down, never fails it), other retryable errors
// (5xx, broken connections) a few rounds beyond the SDK's own retries.
// Other errors come back as a *dynamo.TableError.
func (d *Differ) retry(ctx context.Context, st *stats.Entry, table, op string, fn func() error) error {
	p := &retry.Pacer{Backoff: d.cfg.Backoff, OnRetry: func(err error) {
		msg := fmt.Sprintf("%s on %s failed, retrying: %s", op, table, dynamo.Describe(err))
		if d.cfg.Verbose {
			d.log.Info(msg)
		} else {
			d.log.Debug(msg)
		}
	}}
	if st != nil {
		p.Retries, p.Throttles = &st.Retries, &st.Throttles
	}
	if err := p.Call(ctx, fn); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &dynamo.TableError{Table: table, Op: op, Err: err}
	}
	return nil
}

// batchGet reads the items with the given keys (distinct) and returns
// them by KeyString. UnprocessedKeys are asked for again with backoff
// until answered; a request rejected as too large is split in halves.
func (d *Differ) batchGet(ctx context.Context, t Table, keys []item, consistent bool, st *stats.Entry, rcu func(float64)) (map[string]item, error) {
	found := make(map[string]item, len(keys))
	if err := d.batchGetInto(ctx, t, keys, consistent, st, rcu, found); err != nil {
		return nil, err
	}
	return found, nil
}

func (d *Differ) batchGetInto(ctx context.Context, t Table, keys []item, consistent bool, st *stats.Entry, rcu func(float64), found map[string]item) error {
	pending := keys
	err := d.retry(ctx, st, t.Name, "BatchGetItem", func() error {
		out, err := t.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{
				t.Name: {Keys: pending, ConsistentRead: aws.Bool(consistent)},
			},
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		}, countRetries(st))
		if err != nil {
			return err
		}
		for _, c := range out.ConsumedCapacity {
			rcu(aws.ToFloat64(c.CapacityUnits))
		}
		for _, it := range out.Responses[t.Name] {
			found[t.keys.KeyString(it)] = it
		}
		un := out.UnprocessedKeys[t.Name].Keys
		if len(un) == 0 {
			return nil
		}
		progress := len(un) < len(pending)
		pending = un
		return retry.Again(progress)
	})
	var ae smithy.APIError
	if err != nil && len(pending) > 1 && errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" {
		// e.g. a response above the size limit: ask in halves.
		half := len(pending) / 2
		d.log.Debug(fmt.Sprintf("BatchGetItem of %d keys on %s rejected (%s); splitting", len(pending), t.Name, dynamo.Describe(err)))
		if err := d.batchGetInto(ctx, t, pending[:half], consistent, st, rcu, found); err != nil {
			return err
		}
		return d.batchGetInto(ctx, t, pending[half:], consistent, st, rcu, found)
	}
	return err
}

// countRetries is the per-call option that counts the SDK's own retries
// and throttling answers in st (see dynamo.CountRetries); nil st counts
// nothing.
func countRetries(st *stats.Entry) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		if st != nil {
			o.APIOptions = append(o.APIOptions, dynamo.CountRetries(st))
		}
	}
}

// SetReport sets the writer that receives the report lines (after
// Check, so that a report file is only created once the checks pass).
func (d *Differ) SetReport(w io.Writer) {
	if w == nil {
		d.report = nil
		return
	}
	d.report = json.NewEncoder(w)
}
