package shared

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
)

// BackfillConfig is the backfill of one plan entry: its clients, tables,
// segments, budgets, checkpoints, stats and logger. sync builds its
// backfill phase with it too, so the two never disagree.
func BackfillConfig(e *cmdutil.RunEntry, store state.Store, skipExpired, createOutput bool, scanLimit int) (backfill.Config, error) {
	segs, err := e.Entry.Backfill.SegmentList()
	if err != nil {
		return backfill.Config{}, &plan.Error{Msg: err.Error()}
	}
	prog, err := e.Entry.Program() // compiled once already by the plan's validation
	if err != nil {
		return backfill.Config{}, &plan.Error{Msg: err.Error()}
	}
	return backfill.Config{
		Common: job.Common{
			InputTable:  e.Entry.Input.Table,
			OutputTable: e.Entry.Output.Table,
			Store:       store,
			StateKey:    e.Entry.ID(),
			Stats:       e.Stats,
			Logger:      e.Log,
			Program:     prog,
			Names:       cmdutil.OptionNames,
		},
		Source:            e.In.DynamoDB,
		Dest:              e.Out.DynamoDB,
		Segments:          segs,
		TotalSegments:     e.Entry.Backfill.TotalSegments,
		MaxWCU:            e.Entry.Backfill.MaxWCU,
		MaxRCU:            e.Entry.Backfill.MaxRCU,
		SkipExpired:       skipExpired,
		CreateOutputTable: createOutput,
		PageSize:          int32(scanLimit),
	}, nil
}

// BackfillEstimate is what a backfill of cfg would do (a dry run, after the
// run's own checks passed): the input's approximate size, the output
// table, the segments and writers the run would choose, and the capacity
// units and time the copy would take at the budgets.
func BackfillEstimate(ctx context.Context, cfg backfill.Config) (*cmdutil.Estimate, error) {
	p, err := backfill.PreviewRun(ctx, cfg)
	if err != nil {
		return nil, err
	}
	items, bytes := aws.ToInt64(p.Input.ItemCount), aws.ToInt64(p.Input.TableSizeBytes)
	est := &cmdutil.Estimate{Approximate: true, Items: items, Bytes: bytes, OutputExists: p.OutputExists}
	if items > 0 {
		est.AvgItemBytes = float64(bytes) / float64(items)
	}
	if !p.OutputExists {
		est.CreateOutputTable = true // Check refused a missing output without it
		est.OutputKeySchema = dynamo.KeySchemaOf(p.Input).String()
	}
	bf := &cmdutil.BackfillEstimate{
		AlreadyComplete: p.AlreadyDone,
		TotalSegments:   p.TotalSegments,
		Segments:        len(p.Segments),
		SegmentsDone:    p.SegmentsDone,
		Leased:          p.Leased,
		Parallel:        p.Parallel,
		Writers:         p.Writers,
		MaxRCU:          cfg.MaxRCU,
		MaxWCU:          cfg.MaxWCU,
	}
	if !p.AlreadyDone && p.TotalSegments > 0 {
		fraction := float64(len(p.Segments)-p.SegmentsDone) / float64(p.TotalSegments)
		bf.ItemsToCopy, bf.ReadUnits, bf.WriteUnits, bf.DurationSeconds = cmdutil.CopyUnits(items, bytes, fraction, cfg.MaxRCU, cfg.MaxWCU)
	}
	est.Backfill = bf
	return est, nil
}
