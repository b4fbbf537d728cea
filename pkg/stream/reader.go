package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/retry"
)

// maxRecordsPerCall is GetRecords' limit.
const maxRecordsPerCall = 1000

// maxErrorRounds is how many times in a row a failing stream call (other
// than throttling, which is retried forever) is tried again.
const maxErrorRounds = 10

var readBackoff = retry.Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second}

// GapError is data lost to the stream's retention: records of a shard
// after the last applied one were trimmed before they could be read.
type GapError struct {
	Table string
	Shard string
	// From and To bound the creation times of the changes that may be lost;
	// a zero To means "up to now".
	From, To time.Time
	Detail   string
}

func (e *GapError) Error() string {
	to := "now"
	if !e.To.IsZero() {
		to = e.To.UTC().Format(time.RFC3339)
	}
	span := fmt.Sprintf("between %s and %s", e.From.UTC().Format(time.RFC3339), to)
	if e.From.IsZero() {
		// An undated checkpoint: only the end of the span is known.
		span = "up to " + to
	}
	return fmt.Sprintf("stream of table %s, shard %s: changes made %s may be lost: they were trimmed from the stream (24 h retention) before they could be applied (%s); the output table can no longer be trusted: copy it again with sync, or repair it with diff",
		e.Table, e.Shard, span, e.Detail)
}

// readShard reads one shard from its checkpoint (or its trim horizon) to
// its end, applying every batch before reading the next.
func (e *engine) readShard(ctx context.Context, sh *shardState) error {
	cp, err := e.loadCheckpoint(ctx, sh.ID)
	if err != nil {
		return err
	}
	if cp.Done {
		e.setState(sh, func(s *shardState) { s.done = true })
		return nil
	}
	return e.consume(ctx, sh, cp, unitIO{
		save: func(ctx context.Context, cp checkpoint) error {
			return e.saveCheckpoint(ctx, sh.ID, cp)
		},
		finishing: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithoutCancel(ctx), func() {}
		},
	})
}

// unitIO is how consume saves progress: in the state store, or through a
// lease of the checkpoint table.
type unitIO struct {
	// save records the shard's checkpoint.
	save func(ctx context.Context, cp checkpoint) error
	// finishing returns the context a batch read before a stop is written
	// and checkpointed under: it outlives ctx's cancellation (a stop
	// finishes the writes in flight), but a lease mode ends it when the
	// lease is lost (the new owner applies the batch again).
	finishing func(ctx context.Context) (context.Context, context.CancelFunc)
}

// consume reads one shard after cp to its end.
func (e *engine) consume(ctx context.Context, sh *shardState, cp checkpoint, sink unitIO) error {
	log := e.log.With(zap.String("shard", sh.ID))
	// skipUpTo: after recovering from trimmed data from the trim horizon,
	// records up to the checkpoint were applied already.
	skipUpTo := ""
	iter, err := e.iterator(ctx, sh.ID, cp)
	if isTrimmed(err) {
		iter, skipUpTo, err = e.recoverTrimmed(ctx, sh.ID, cp)
	}
	if err != nil {
		return err
	}
	log.Debug("reading shard", zap.String("after", cp.Seq))
	trimmedRounds := 0
	var lastCall time.Time
	reported := false
	emptyPages := 0 // consecutive pages with no record at all
	for {
		if err := ctx.Err(); err != nil {
			return err // stopping, or the shard was handed over
		}
		out, err := e.getRecords(ctx, iter, &lastCall)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if isTrimmed(err) {
				trimmedRounds++
			}
			if iter, skipUpTo, err = e.reposition(ctx, log, sh, cp, err, trimmedRounds, skipUpTo); err != nil {
				return err
			}
			continue
		}
		trimmedRounds = 0
		recs := out.Records
		if len(recs) == 0 {
			emptyPages++
		} else {
			emptyPages = 0
		}
		e.st.RecordsRead.Add(int64(len(recs)))
		if skipUpTo != "" {
			recs = e.skipApplied(recs, skipUpTo)
			if len(recs) > 0 || out.NextShardIterator == nil {
				skipUpTo = ""
			}
		}
		// DynamoDB Streams may answer an empty page from a stretch of the
		// shard without records while more records follow, so one empty
		// page is not the end: only several in a row are.
		caughtUp := len(recs) == 0 && emptyPages >= caughtUpEmptyPages
		if len(recs) > 0 {
			// The batch is written and checkpointed even when ctx is
			// cancelled meanwhile: a stop finishes the writes in flight.
			fctx, done := sink.finishing(ctx)
			last, err := e.apply(fctx, recs)
			if err == nil {
				cp.Seq, cp.Created = seqOf(last), createdOf(last)
				err = sink.save(fctx, cp)
			}
			done()
			if err != nil {
				return err
			}
			if cp.Created.After(e.started) {
				caughtUp = true // read past the run's start
			}
		}
		if out.NextShardIterator == nil || *out.NextShardIterator == "" {
			cp.Done = true
			fctx, done := sink.finishing(ctx)
			err := sink.save(fctx, cp)
			done()
			if err != nil {
				return err
			}
			log.Debug("shard finished")
			e.setState(sh, func(s *shardState) { s.done = true })
			return nil
		}
		iter = *out.NextShardIterator
		if caughtUp && !reported {
			reported = true
			e.setState(sh, func(s *shardState) { s.caughtUp = true })
		}
		if len(out.Records) == 0 {
			if err := retry.Sleep(ctx, e.cfg.PollInterval); err != nil {
				return err
			}
		}
	}
}

// reposition answers a failed GetRecords with a new iterator: after the
// checkpoint when the iterator expired, from the first record still
// available when data was trimmed (at most maxErrorRounds times in a row:
// trimmed counts them); any other error is returned for the run to stop.
// skipUpTo is the last record already applied when the new iterator
// starts before it (unchanged after an expired iterator).
func (e *engine) reposition(ctx context.Context, log *zap.Logger, sh *shardState, cp checkpoint, err error, trimmed int, skipUpTo string) (string, string, error) {
	switch {
	case isExpired(err):
		log.Debug("iterator expired; resuming from the checkpoint")
		iter, err := e.iterator(ctx, sh.ID, cp)
		if isTrimmed(err) {
			return e.recoverTrimmed(ctx, sh.ID, cp)
		}
		return iter, skipUpTo, err
	case isTrimmed(err):
		if trimmed > maxErrorRounds {
			return "", "", &dynamo.TableError{Table: e.cfg.InputTable, Op: fmt.Sprintf("GetRecords on stream shard %s (trimmed data %d times in a row)", sh.ID, trimmed), Err: err}
		}
		return e.recoverTrimmed(ctx, sh.ID, cp)
	case dynamo.IsNotFound(err):
		return "", "", &dynamo.TableError{Table: e.cfg.InputTable, Op: "GetRecords", Err: err}
	}
	return "", "", &dynamo.TableError{Table: e.cfg.InputTable, Op: "GetRecords on stream shard " + sh.ID, Err: err}
}

// skipApplied leaves out the records up to skipUpTo, applied already.
func (e *engine) skipApplied(recs []streamtypes.Record, skipUpTo string) []streamtypes.Record {
	kept := recs[:0:0]
	for _, r := range recs {
		if CompareSeq(seqOf(r), skipUpTo) <= 0 {
			e.st.RecordsSkipped.Add(1)
			continue
		}
		kept = append(kept, r)
	}
	return kept
}

// iterator returns an iterator just after the checkpoint, or at the trim
// horizon of a shard never read.
func (e *engine) iterator(ctx context.Context, shard string, cp checkpoint) (string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{
		StreamArn:         aws.String(e.info.ARN),
		ShardId:           aws.String(shard),
		ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
	}
	if cp.Seq != "" {
		in.ShardIteratorType = streamtypes.ShardIteratorTypeAfterSequenceNumber
		in.SequenceNumber = aws.String(cp.Seq)
	}
	return e.getIterator(ctx, in)
}

func (e *engine) getIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput) (string, error) {
	var out *dynamodbstreams.GetShardIteratorOutput
	p := &retry.Pacer{Backoff: readBackoff, MaxErrors: maxErrorRounds, Throttles: &e.st.Throttles}
	err := p.Call(ctx, func() error {
		var err error
		out, err = e.cfg.Streams.GetShardIterator(ctx, in)
		return err
	})
	switch {
	case err == nil:
		return aws.ToString(out.ShardIterator), nil
	case ctx.Err() != nil:
		return "", ctx.Err()
	case isTrimmed(err):
		return "", err
	case dynamo.IsNotFound(err):
		return "", &dynamo.TableError{Table: e.cfg.InputTable, Op: "GetShardIterator", Err: err}
	}
	return "", &dynamo.TableError{Table: e.cfg.InputTable, Op: "GetShardIterator on stream shard " + aws.ToString(in.ShardId), Err: err}
}

// getRecords reads one page of a shard, at most one call per
// MinReadInterval, through the engine's pacer: throttling is waited out,
// other retryable errors are tried maxErrorRounds times; the error of the
// last try is returned as it is, for consume to sort out.
func (e *engine) getRecords(ctx context.Context, iter string, lastCall *time.Time) (*dynamodbstreams.GetRecordsOutput, error) {
	var out *dynamodbstreams.GetRecordsOutput
	err := e.pacer().Call(ctx, func() error {
		if err := ctx.Err(); err != nil {
			return err // stopping, or the shard was handed over
		}
		if wait := e.cfg.MinReadInterval - time.Since(*lastCall); wait > 0 {
			if err := retry.Sleep(ctx, wait); err != nil {
				return err
			}
		}
		*lastCall = time.Now()
		var err error
		out, err = e.cfg.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{
			ShardIterator: aws.String(iter),
			Limit:         aws.Int32(maxRecordsPerCall),
		}, withEmptyMapFix)
		return err
	})
	return out, err
}

// pacer retries the engine's reads of the stream and the input table,
// counting retries and throttling in the entry's counters.
func (e *engine) pacer() *retry.Pacer {
	return &retry.Pacer{Backoff: readBackoff, MaxErrors: maxErrorRounds, Retries: &e.st.Retries, Throttles: &e.st.Throttles}
}

// caughtUpEmptyPages is how many empty pages in a row an open shard must
// answer before it counts as read to its end (for --until-caught-up).
const caughtUpEmptyPages = 3

// trimProbePages bounds how many empty pages recoverTrimmed reads from the
// trim horizon looking for the first record still available.
const trimProbePages = 10

// recoverTrimmed handles TrimmedDataAccessException for a shard with a
// checkpoint. It reads the shard from its trim horizon: when the first
// record still available is at or before the checkpoint, nothing after
// the checkpoint was trimmed (DynamoDB Local reports trimmed data
// spuriously on a shard idle for about 30 s) and reading continues from
// there, skipping what was applied already. Otherwise changes may be lost
// and the error says which shard and which time span.
func (e *engine) recoverTrimmed(ctx context.Context, shard string, cp checkpoint) (iter, skipUpTo string, err error) {
	if cp.Seq == "" {
		// Nothing of this shard was applied yet, so nothing the run needs
		// can be lost: what was trimmed is older than the oldest record
		// still there, and a run reading a shard for the first time wants
		// what the stream holds (sync: only what follows T0, which the
		// retention check guards). DynamoDB Local answers this on a shard
		// idle about 30 s, and DynamoDB when the horizon moved between
		// GetShardIterator and GetRecords: start again from the horizon.
		e.log.Debug("trimmed data before the first record of a shard never read; reading again from the trim horizon", zap.String("shard", shard))
		iter, err = e.getIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn:         aws.String(e.info.ARN),
			ShardId:           aws.String(shard),
			ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
		})
		if isTrimmed(err) {
			return "", "", &dynamo.TableError{Table: e.cfg.InputTable, Op: "GetShardIterator (TRIM_HORIZON) on stream shard " + shard, Err: err}
		}
		return iter, "", err
	}
	iter, err = e.getIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn:         aws.String(e.info.ARN),
		ShardId:           aws.String(shard),
		ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		return "", "", err
	}
	first, err := e.firstAvailable(ctx, iter)
	if err != nil {
		return "", "", err
	}
	v := verdict(cp, first, e.now(), e.cfg.Retention)
	if v != "" && first != nil && !e.cfg.SkipBefore.IsZero() && !createdOf(*first).IsZero() && !createdOf(*first).After(e.cfg.SkipBefore) {
		// What was trimmed is older than SkipBefore: sync's copy has it.
		v = ""
	}
	switch v {
	case "":
		e.log.Warn("stream reported trimmed data, but nothing after the checkpoint is gone; continuing",
			zap.String("shard", shard), zap.String("checkpoint", cp.Seq))
		// Read again from the trim horizon: firstAvailable consumed pages.
		iter, err = e.getIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn:         aws.String(e.info.ARN),
			ShardId:           aws.String(shard),
			ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
		})
		return iter, cp.Seq, err
	default:
		gap := &GapError{Table: e.cfg.InputTable, Shard: shard, From: cp.Created, Detail: v}
		if first != nil {
			gap.To = createdOf(*first)
		}
		return "", "", gap
	}
}

// verdict decides whether trimmed data means lost changes: "" when the
// checkpoint is still covered, otherwise why changes may be lost.
func verdict(cp checkpoint, first *streamtypes.Record, now time.Time, retention time.Duration) string {
	if first != nil {
		if CompareSeq(seqOf(*first), cp.Seq) <= 0 {
			return ""
		}
		return fmt.Sprintf("the first record still in the shard, %s, comes after the last applied one, %s", seqOf(*first), cp.Seq)
	}
	// Nothing readable at all: records after the checkpoint are younger
	// than the checkpoint, so none of them can have been trimmed while the
	// checkpoint itself is within the retention period.
	if !cp.Created.IsZero() && now.Sub(cp.Created) < retention-time.Hour {
		return ""
	}
	return fmt.Sprintf("no record is left in the shard and the last applied one, %s, is older than the retention period", cp.Seq)
}

// firstAvailable returns the first record readable from iter, or nil when
// the shard has none (closed and empty, or several empty pages in a row).
func (e *engine) firstAvailable(ctx context.Context, iter string) (*streamtypes.Record, error) {
	for page := 0; page < trimProbePages && iter != ""; page++ {
		var out *dynamodbstreams.GetRecordsOutput
		probe := &retry.Pacer{Backoff: readBackoff, MaxErrors: maxErrorRounds, BoundThrottling: true}
		err := probe.Call(ctx, func() error {
			var err error
			out, err = e.cfg.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(iter), Limit: aws.Int32(1)}, withEmptyMapFix)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &dynamo.TableError{Table: e.cfg.InputTable, Op: "GetRecords (trim horizon)", Err: err}
		}
		if len(out.Records) > 0 {
			return &out.Records[0], nil
		}
		iter = aws.ToString(out.NextShardIterator)
	}
	return nil, nil
}

func seqOf(r streamtypes.Record) string {
	if r.Dynamodb == nil {
		return ""
	}
	return aws.ToString(r.Dynamodb.SequenceNumber)
}

func createdOf(r streamtypes.Record) time.Time {
	if r.Dynamodb == nil || r.Dynamodb.ApproximateCreationDateTime == nil {
		return time.Time{}
	}
	return *r.Dynamodb.ApproximateCreationDateTime
}

var errNoImage = errors.New("stream record has no new image")
