package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/retry"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

// MaxBatchWrite is the most requests one BatchWriteItem may carry.
const MaxBatchWrite = 25

// BatchWriteAPI is the part of the DynamoDB client the Writer needs.
type BatchWriteAPI interface {
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// Writer writes items with BatchWriteItem. It resubmits UnprocessedItems
// with exponential backoff and jitter until they are written, keeps
// retrying throttled requests (throttling slows a run down, it never fails
// it), keeps within a write-capacity budget, and records consumed WCU,
// retries and throttles in Stats. A Writer is safe for concurrent use;
// each Write call is one sequence of requests.
type Writer struct {
	Client  BatchWriteAPI
	Table   string
	Limiter *Limiter     // nil: no budget
	Stats   *stats.Entry // nil: not recorded
	// Backoff between rounds of unprocessed items or throttled requests.
	// Zero fields: retry.DefaultBase, retry.DefaultMax.
	Backoff retry.Backoff
	// MaxErrorRounds is how many times a request failing with a retryable
	// error other than throttling (5xx, broken connection) is sent again
	// after the SDK's own retries gave up. Zero means 5.
	MaxErrorRounds int
}

// Write writes all requests (any number; they must not name one key
// twice within 25 consecutive requests) and returns how many were
// acknowledged. On error, the others may or may not have been written
// (unprocessed items are resubmitted out of order); the error is a
// *TableError, or ctx.Err().
func (w *Writer) Write(ctx context.Context, reqs []types.WriteRequest) (int, error) {
	p := &retry.Pacer{Backoff: w.Backoff, MaxErrors: w.MaxErrorRounds}
	if w.Stats != nil {
		p.Retries, p.Throttles = &w.Stats.Retries, &w.Stats.Throttles
	}
	written := 0
	for start := 0; start < len(reqs); start += MaxBatchWrite {
		end := min(start+MaxBatchWrite, len(reqs))
		n, err := w.writeBatch(ctx, p, reqs[start:end])
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// writeBatch writes up to 25 requests, resubmitting unprocessed ones.
func (w *Writer) writeBatch(ctx context.Context, p *retry.Pacer, pending []types.WriteRequest) (int, error) {
	written := 0
	var sendErr error // the error of BatchWriteItem itself, if the last try had one
	err := p.Call(ctx, func() error {
		sendErr = nil
		if err := ctx.Err(); err != nil {
			return err
		}
		est := w.Limiter.Estimate(len(pending))
		if err := w.Limiter.Wait(ctx, est); err != nil {
			return err
		}
		out, err := w.Client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems:           map[string][]types.WriteRequest{w.Table: pending},
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		})
		if err != nil {
			sendErr = err
			return err
		}
		consumed := 0.0
		for _, c := range out.ConsumedCapacity {
			consumed += aws.ToFloat64(c.CapacityUnits)
		}
		if w.Stats != nil {
			w.Stats.ConsumedWCU.Add(consumed)
		}
		unprocessed := out.UnprocessedItems[w.Table]
		done := len(pending) - len(unprocessed)
		written += done
		if err := w.Limiter.Settle(ctx, done, est, consumed); err != nil {
			return err
		}
		if len(unprocessed) == 0 {
			return nil
		}
		// Unprocessed items mean the table is at its capacity: back off.
		pending = unprocessed
		return retry.Again(done > 0)
	})
	if err != nil && sendErr != nil && ctx.Err() == nil {
		err = &TableError{Table: w.Table, Op: "BatchWriteItem", Err: err}
	}
	return written, err
}
