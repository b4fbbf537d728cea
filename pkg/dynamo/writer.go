package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/creds"
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
	// Zero value: 50 ms base, 10 s cap.
	Backoff creds.Backoff
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
	written := 0
	for start := 0; start < len(reqs); start += MaxBatchWrite {
		end := min(start+MaxBatchWrite, len(reqs))
		n, err := w.writeBatch(ctx, reqs[start:end])
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

func (w *Writer) backoff() creds.Backoff {
	b := w.Backoff
	if b.Base <= 0 {
		b.Base = 50 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	return b
}

func (w *Writer) writeBatch(ctx context.Context, pending []types.WriteRequest) (int, error) {
	written := 0
	stall := 0     // consecutive rounds without progress
	errRounds := 0 // rounds failed by non-throttle retryable errors
	maxErr := w.MaxErrorRounds
	if maxErr <= 0 {
		maxErr = 5
	}
	for len(pending) > 0 {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		est := w.Limiter.Estimate(len(pending))
		if err := w.Limiter.Wait(ctx, est); err != nil {
			return written, err
		}
		out, err := w.Client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems:           map[string][]types.WriteRequest{w.Table: pending},
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		})
		if err != nil {
			if ctx.Err() != nil {
				return written, ctx.Err()
			}
			throttled := IsThrottle(err)
			if !throttled {
				if !IsRetryable(err) || errRounds >= maxErr {
					return written, &TableError{Table: w.Table, Op: "BatchWriteItem", Err: err}
				}
				errRounds++
			}
			if w.Stats != nil {
				w.Stats.Retries.Add(1)
				if throttled {
					w.Stats.Throttles.Add(1)
				}
			}
			stall++
			if err := sleep(ctx, w.backoff().Delay(stall)); err != nil {
				return written, err
			}
			continue
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
			return written, err
		}
		if len(unprocessed) == 0 {
			return written, nil
		}
		// Unprocessed items mean the table is at its capacity: back off.
		if w.Stats != nil {
			w.Stats.Retries.Add(1)
		}
		if done > 0 {
			stall = 1
		} else {
			stall++
		}
		pending = unprocessed
		if err := sleep(ctx, w.backoff().Delay(stall)); err != nil {
			return written, err
		}
	}
	return written, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Sleep waits for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, d) }
