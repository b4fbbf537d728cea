package stream

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

// StartOldest is where the stream command begins reading a shard without
// a checkpoint.
const StartOldest = "the oldest record the stream holds (TRIM_HORIZON, up to 24 hours back)"

// Estimate is what a stream of cfg would read (a dry run, after the
// run's own checks passed): the stream, its shards, the checkpoints of
// the entry (in the state, or in the leases of a checkpoint table) and
// where reading would begin; fresh says where a shard without a
// checkpoint begins.
func Estimate(ctx context.Context, cfg stream.Config, leases *lease.Manager, fresh string) (*cmdutil.Estimate, error) {
	in, err := dynamo.DescribeTable(ctx, cfg.Source, cfg.InputTable, "")
	if err != nil {
		return nil, err
	}
	est := &cmdutil.Estimate{Approximate: true, Items: aws.ToInt64(in.ItemCount), Bytes: aws.ToInt64(in.TableSizeBytes), OutputExists: true}
	if est.Items > 0 {
		est.AvgItemBytes = float64(est.Bytes) / float64(est.Items)
	}
	se, err := StreamEstimate(ctx, cfg, leases, fresh)
	if err != nil {
		return nil, err
	}
	est.Stream = se
	return est, nil
}

// StreamEstimate is the stream part of Estimate (sync uses it too).
func StreamEstimate(ctx context.Context, cfg stream.Config, leases *lease.Manager, fresh string) (*cmdutil.StreamEstimate, error) {
	info, err := stream.Check(ctx, cfg.Source, cfg.InputTable)
	if err != nil {
		return nil, err
	}
	l, err := stream.ListShards(ctx, cfg.Streams, info.ARN)
	if err != nil {
		return nil, err
	}
	se := &cmdutil.StreamEstimate{StreamARN: info.ARN, ViewType: string(info.ViewType), Shards: len(l.Shards)}
	for _, sh := range l.Shards {
		if !sh.Closed() {
			se.OpenShards++
		}
	}
	if cfg.Leases != nil && leases != nil {
		infos, err := leases.List(ctx, lease.Scope(cfg.Leases.Entry.ID(), lease.KindStream))
		if err != nil {
			return nil, err
		}
		for _, in := range infos {
			if in.Checkpoint != nil || in.Finished {
				se.Checkpoints++
			}
		}
	} else {
		keys, err := cfg.Store.List(ctx, cfg.StateKey+"/stream/shards/")
		if err != nil {
			return nil, err
		}
		se.Checkpoints = len(keys)
	}
	se.StartPosition = "no checkpoints: a run would start from " + fresh
	if se.Checkpoints > 0 {
		se.StartPosition = fmt.Sprintf("checkpoints of %d shard(s): a run would continue after the last applied record of each; other shards from %s", se.Checkpoints, fresh)
	}
	return se, nil
}
