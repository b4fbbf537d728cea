package backfill

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

// countingSource and countingDest add dynamo.CountRetries to every call of
// the run's clients, so the SDK's own retries show in the counters.
type countingSource struct {
	SourceAPI
	st *stats.Entry
}

func count(st *stats.Entry, optFns []func(*dynamodb.Options)) []func(*dynamodb.Options) {
	return append(optFns, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, dynamo.CountRetries(st)) })
}

func (c countingSource) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return c.SourceAPI.Scan(ctx, in, count(c.st, optFns)...)
}

type countingDest struct {
	DestAPI
	st *stats.Entry
}

func (c countingDest) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return c.DestAPI.BatchWriteItem(ctx, in, count(c.st, optFns)...)
}
