package stream

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func dynamoCount(st *stats.Entry) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, dynamo.CountRetries(st)) }
}

func streamsCount(st *stats.Entry) func(*dynamodbstreams.Options) {
	return func(o *dynamodbstreams.Options) { o.APIOptions = append(o.APIOptions, dynamo.CountRetries(st)) }
}

// countingStreams, countingSource and countingDest add dynamo.CountRetries to
// every call of the engine's clients.
type countingStreams struct {
	StreamsAPI
	st *stats.Entry
}

func (c countingStreams) DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	return c.StreamsAPI.DescribeStream(ctx, in, append(optFns, streamsCount(c.st))...)
}

func (c countingStreams) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	return c.StreamsAPI.GetShardIterator(ctx, in, append(optFns, streamsCount(c.st))...)
}

func (c countingStreams) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	return c.StreamsAPI.GetRecords(ctx, in, append(optFns, streamsCount(c.st))...)
}

type countingSource struct {
	SourceAPI
	st *stats.Entry
}

func (c countingSource) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return c.SourceAPI.DescribeTable(ctx, in, append(optFns, dynamoCount(c.st))...)
}

func (c countingSource) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return c.SourceAPI.GetItem(ctx, in, append(optFns, dynamoCount(c.st))...)
}

type countingDest struct {
	DestAPI
	st *stats.Entry
}

func (c countingDest) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return c.DestAPI.DescribeTable(ctx, in, append(optFns, dynamoCount(c.st))...)
}

func (c countingDest) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return c.DestAPI.BatchWriteItem(ctx, in, append(optFns, dynamoCount(c.st))...)
}
