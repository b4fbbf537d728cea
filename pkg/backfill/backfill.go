// Package backfill copies every item of an input table to an output
// table: a parallel Scan whose pages flow into concurrent BatchWriteItem
// writers, checkpointed per segment so an interrupted run resumes.
package backfill

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/internal/stats"
	"github.com/ddbsync/ddbsync/pkg/state"
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
	Source      SourceAPI
	Dest        DestAPI
	InputTable  string
	OutputTable string

	// Segments to copy (nil: all) out of TotalSegments (0: chosen from the
	// table size, at least 4).
	Segments      []int
	TotalSegments int

	MaxWCU float64 // output write units per second, 0: no limit
	MaxRCU float64 // input read units per second, 0: no limit

	SkipExpired       bool // leave out items whose TTL lies in the past
	CreateOutputTable bool // create a missing output table from the input's description

	// Store keeps checkpoints under StateKey (the plan entry's ID).
	Store    state.Store
	StateKey string

	Stats  *stats.Entry // nil: counters are not kept
	Logger *zap.Logger  // nil: no logs
}

// Result summarises a backfill.
type Result struct {
	ItemsRead    int64
	ItemsWritten int64
	ItemsFailed  int64
	ItemsSkipped int64
	ConsumedRCU  float64
	ConsumedWCU  float64
	Duration     time.Duration
	// Resumed is true when the run continued from checkpoints.
	Resumed bool
}

// ErrNotImplemented is returned until the engine is built.
var ErrNotImplemented = errors.New("backfill engine not built yet")

// Run copies the table. It returns when every selected segment is copied,
// on the first fatal error, or when ctx is cancelled (after checkpointing
// what was fully written; the error is then ctx.Err()).
func Run(ctx context.Context, cfg Config) (Result, error) {
	return Result{}, ErrNotImplemented
}

// Done reports whether the checkpoints under stateKey say the backfill of
// those segments already completed (sync uses it to resume in the stream
// phase).
func Done(ctx context.Context, store state.Store, stateKey string) (bool, error) {
	return false, ErrNotImplemented
}
