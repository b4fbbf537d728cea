package backfill

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
)

// Estimate is what a backfill of cfg would do (a dry run, after the
// run's own checks passed): the input's approximate size, the output
// table, the segments and writers the run would choose, and the capacity
// units and time the copy would take at the budgets.
func Estimate(ctx context.Context, cfg backfill.Config) (*cmdutil.Estimate, error) {
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
