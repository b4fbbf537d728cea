package shared

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

// StreamStartOldest is where the stream command begins reading a shard without
// a checkpoint.
const StreamStartOldest = "the oldest record the stream holds (TRIM_HORIZON, up to 24 hours back)"

// StreamEntryEstimate is what a stream of cfg would read (a dry run, after the
// run's own checks passed): the stream, its shards, the checkpoints of
// the entry (in the state, or in the leases of a checkpoint table) and
// where reading would begin; fresh says where a shard without a
// checkpoint begins.
func StreamEntryEstimate(ctx context.Context, cfg stream.Config, leases *lease.Manager, fresh string) (*cmdutil.Estimate, error) {
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

// StreamEstimate is the stream part of StreamEntryEstimate (sync uses it too).
func StreamEstimate(ctx context.Context, cfg stream.Config, leases *lease.Manager, fresh string) (*cmdutil.StreamEstimate, error) {
	info, err := stream.Describe(ctx, cfg.Source, cfg.InputTable)
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

// StreamSummary is the final line of an entry's stream.
func StreamSummary(st *stats.Entry, d time.Duration, err error) string {
	status := "stopped (checkpointed)"
	if err != nil {
		status = "FAILED"
	}
	s := fmt.Sprintf("Summary: stream %s: %d records read, %d applied, %d skipped in %s; consumed %.1f WCU; %d retries (%d throttled)",
		status, st.RecordsRead.Load(), st.RecordsApplied.Load(), st.RecordsSkipped.Load(), d.Round(time.Second), st.ConsumedWCU.Load(),
		st.Retries.Load(), st.Throttles.Load())
	if n := st.RecordsFailed.Load(); n > 0 {
		s += fmt.Sprintf("; %d records failed the filter or transform (logged with their keys)", n)
	}
	if last := st.LastApplied.Load(); last > 0 {
		s += fmt.Sprintf("; last applied change made at %s", time.UnixMilli(last).UTC().Format(time.RFC3339))
	}
	return s
}
