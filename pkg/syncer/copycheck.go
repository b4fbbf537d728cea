package syncer

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// CopyCheck is what CheckCopy needs: the entry's state and its input.
type CopyCheck struct {
	// Common: the entry's tables, store and state key, logger and clock;
	// Leases is the checkpoint table when the entry's work is shared (nil:
	// the state directory only). Stats is not used.
	job.Common

	Source    dynamodb.DescribeTableAPIClient
	Retention time.Duration // default 24h
}

// CheckCopy is run before a stream that has no checkpoint yet applies a
// copy made by another run (`stream` after `backfill`, `sync
// --backfill=false`): it reads the whole stream from its trim horizon, so
// the output is right only if the copy finished before (an older copied
// item written after a newer change would overwrite it for good) and
// began when the stream already existed and still holds every change
// since (otherwise changes in between are in neither). A copy of the
// entry found in the state that breaks either rule is a *plan.Error (exit
// 2, nothing written) saying what to run instead. No copy in the state:
// nothing can be checked, and the stream is applied as it is.
func CheckCopy(ctx context.Context, c CopyCheck) error {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Retention <= 0 {
		c.Retention = 24 * time.Hour
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	// A stream with checkpoints continues from them: checked when it began.
	if streamed, err := hasStreamCheckpoints(ctx, c); err != nil || streamed {
		return err
	}
	// A sync of the entry still copying: its stream phase follows.
	var h Handover
	ok, err := c.Store.Get(ctx, handoverKey(c.StateKey), &h)
	if err != nil {
		return err
	}
	if ok && h.Backfill {
		var started struct{}
		begun, err := h.stepDone(ctx, c.Store, c.StateKey, "stream-started", &started)
		if err != nil {
			return err
		}
		if !begun {
			return &plan.Error{Msg: fmt.Sprintf("%s ⇨ %s: a sync of this entry (begun %s) has not finished its copy: applying the stream now could let the copy's older items overwrite newer changes; resume it with ddbsync sync (same plan and state), which streams once the copy is done",
				c.InputTable, c.OutputTable, h.T0.Format(time.RFC3339))}
		}
		return nil
	}
	m, ok, err := backfill.LoadMeta(ctx, c.Store, c.StateKey)
	if err != nil || !ok {
		return err
	}
	complete, pending, err := copyComplete(ctx, c, m)
	if err != nil {
		return err
	}
	if !complete {
		return &plan.Error{Msg: fmt.Sprintf("%s ⇨ %s: the copy of this entry in the state is not finished (%s): applying the stream while it runs could let its older items overwrite newer changes for good; finish the copy first (run the same ddbsync backfill again), or run ddbsync sync, which copies and then streams in order",
			c.InputTable, c.OutputTable, pending)}
	}
	if m.Began.IsZero() {
		c.Logger.Warn(fmt.Sprintf("the copy of %s ⇨ %s in the state does not say when it began (made by an older ddbsync): make sure it began after the stream was enabled and less than %s ago, or changes made in between are missing", c.InputTable, c.OutputTable, c.Retention))
		return nil
	}
	oldest := c.Now().Add(-c.Retention + time.Hour)
	if m.Began.Before(oldest) {
		return &plan.Error{Msg: fmt.Sprintf("%s ⇨ %s: the copy of this entry began at %s, longer ago than the stream keeps changes (%s, with an hour to spare): changes made since the copy began may be in neither the copy nor the stream; run ddbsync sync, which copies the table again and then streams from there",
			c.InputTable, c.OutputTable, m.Began.UTC().Format(time.RFC3339), c.Retention)}
	}
	enabled, err := streamEnabledAt(ctx, c)
	if err != nil {
		return err
	}
	if !enabled.IsZero() && m.Began.Before(enabled) {
		return &plan.Error{Msg: fmt.Sprintf("%s ⇨ %s: the copy of this entry began at %s, before the input's stream was enabled (%s): changes made in between are in neither the copy nor the stream; run ddbsync sync, which copies the table again and then streams from there",
			c.InputTable, c.OutputTable, m.Began.UTC().Format(time.RFC3339), enabled.UTC().Format(time.RFC3339))}
	}
	c.Logger.Info(fmt.Sprintf("applying the stream after the copy of this entry begun at %s", m.Began.UTC().Format(time.RFC3339)))
	return nil
}

// copyComplete reports whether every segment of the copy m describes is
// finished (all of them, whichever machine ran them), and if not which.
func copyComplete(ctx context.Context, c CopyCheck, m *backfill.Meta) (bool, string, error) {
	if c.Leases != nil {
		scope := lease.Scope(c.Leases.Entry.ID(), lease.KindBackfill)
		infos, err := c.Leases.Manager.List(ctx, scope)
		if err != nil {
			return false, "", err
		}
		if len(infos) > 0 {
			left := 0
			for _, in := range infos {
				if !in.Finished {
					left++
				}
			}
			return left == 0, fmt.Sprintf("%d of %d segment leases not finished", left, len(infos)), nil
		}
	}
	left := 0
	for seg := range m.TotalSegments {
		s, ok, err := backfill.LoadSegment(ctx, c.Store, c.StateKey, seg)
		if err != nil {
			return false, "", err
		}
		if !ok || !s.Done {
			left++
		}
	}
	return left == 0, fmt.Sprintf("%d of %d segments not done", left, m.TotalSegments), nil
}

// streamEnabledAt is when the input's current stream was created, from
// its label (an ISO 8601 UTC time, as DynamoDB writes it); zero when the
// label cannot be read as one.
func streamEnabledAt(ctx context.Context, c CopyCheck) (time.Time, error) {
	out, err := c.Source.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(c.InputTable)})
	if err != nil {
		return time.Time{}, err
	}
	label := aws.ToString(out.Table.LatestStreamLabel)
	for _, layout := range []string{"2006-01-02T15:04:05.000", time.RFC3339Nano, "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, label); err == nil {
			return t, nil
		}
	}
	return time.Time{}, nil
}

// hasStreamCheckpoints reports whether a stream of the entry already ran.
func hasStreamCheckpoints(ctx context.Context, c CopyCheck) (bool, error) {
	var arn struct{}
	ok, err := c.Store.Get(ctx, c.StateKey+"/stream/arn", &arn)
	if err != nil || ok {
		return ok, err
	}
	if c.Leases != nil {
		infos, err := c.Leases.Manager.List(ctx, lease.Scope(c.Leases.Entry.ID(), lease.KindStream))
		if err != nil {
			return false, err
		}
		return len(infos) > 0, nil
	}
	return false, nil
}

// CheckNotStreaming is run before a shared backfill (a checkpoint table):
// while other workers apply the entry's stream to the output, a copy
// could write an item as it was scanned after the stream applied a newer
// change of it, and that change would be lost for good. A stream lease
// with an owner is such a worker (or one that died less than a lease
// duration ago): a *plan.Error (exit 2, nothing written). A stream
// stopped first is safe: resumed after the copy, it applies every change
// since its checkpoints again, in order.
func CheckNotStreaming(ctx context.Context, leases *lease.Manager, entry plan.Entry) error {
	if leases == nil {
		return nil
	}
	infos, err := leases.List(ctx, lease.Scope(entry.ID(), lease.KindStream))
	if err != nil {
		return err
	}
	for _, in := range infos {
		if in.Owner != "" && !in.Finished {
			return &plan.Error{Msg: fmt.Sprintf("%s ⇨ %s: worker %s is applying the input's stream to the output (it holds the lease of shard %s in checkpoint table %s): a backfill now could overwrite newer changes with older copies; stop the stream workers first (resumed afterwards, they apply every change since their checkpoints again), or run sync, which copies and streams in order",
				entry.Input.Table, entry.Output.Table, in.Owner, in.Unit, leases.Table())}
		}
	}
	return nil
}
