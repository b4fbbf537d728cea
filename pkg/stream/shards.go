package stream

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/retry"
)

// Shard is one shard of a stream as DescribeStream lists it.
type Shard struct {
	ID     string `json:"id"`
	Parent string `json:"parent,omitempty"`
	// Start and End are the shard's sequence number range; End is empty
	// while the shard is open.
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Closed reports whether the shard takes no more records.
func (s Shard) Closed() bool { return s.End != "" }

// Listing is one full DescribeStream listing of a stream.
type Listing struct {
	StreamARN string
	Status    streamtypes.StreamStatus
	ViewType  streamtypes.StreamViewType
	Shards    []Shard
}

// maxShardsPerPage is DescribeStream's page size limit.
const maxShardsPerPage = 100

// ListShards lists every shard of a stream, following DescribeStream's
// pages (at most 100 shards each). Throttling is waited out; the listing
// is eventually consistent, so callers poll it again to see new shards.
func ListShards(ctx context.Context, c StreamsAPI, arn string) (*Listing, error) {
	l := &Listing{StreamARN: arn}
	var start *string
	seen := map[string]bool{}
	// Throttling is waited out for ever; other retryable errors a limited
	// number of times.
	p := &retry.Pacer{Backoff: readBackoff, MaxErrors: maxErrorRounds}
	for {
		var out *dynamodbstreams.DescribeStreamOutput
		err := p.Call(ctx, func() error {
			var err error
			out, err = c.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{
				StreamArn:             aws.String(arn),
				ExclusiveStartShardId: start,
				Limit:                 aws.Int32(maxShardsPerPage),
			})
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("DescribeStream %s: %s: %w", arn, dynamo.Describe(err), err)
		}
		d := out.StreamDescription
		if d == nil {
			return nil, fmt.Errorf("DescribeStream %s returned no description", arn)
		}
		l.Status = d.StreamStatus
		l.ViewType = d.StreamViewType
		for _, s := range d.Shards {
			id := aws.ToString(s.ShardId)
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			sh := Shard{ID: id, Parent: aws.ToString(s.ParentShardId)}
			if r := s.SequenceNumberRange; r != nil {
				sh.Start = aws.ToString(r.StartingSequenceNumber)
				sh.End = aws.ToString(r.EndingSequenceNumber)
			}
			l.Shards = append(l.Shards, sh)
		}
		if d.LastEvaluatedShardId == nil || *d.LastEvaluatedShardId == "" {
			return l, nil
		}
		start = d.LastEvaluatedShardId
	}
}

// CompareSeq compares two stream sequence numbers as the decimal integers
// they are (they have up to 40 digits and differ in length, so string
// comparison is wrong). An empty or malformed number sorts first.
func CompareSeq(a, b string) int {
	x, okx := new(big.Int).SetString(a, 10)
	y, oky := new(big.Int).SetString(b, 10)
	switch {
	case !okx && !oky:
		return 0
	case !okx:
		return -1
	case !oky:
		return 1
	}
	return x.Cmp(y)
}

func isExpired(err error) bool {
	var e *streamtypes.ExpiredIteratorException
	return errors.As(err, &e)
}

func isTrimmed(err error) bool {
	var e *streamtypes.TrimmedDataAccessException
	return errors.As(err, &e)
}
