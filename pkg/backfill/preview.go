package backfill

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

// Preview is what a run of a Config would do, found without writing
// anything: the input's description, whether the output exists, and the
// segments and sizing Run would choose from the same functions Run uses.
type Preview struct {
	// Input is DescribeTable of the input (ItemCount and TableSizeBytes
	// are DynamoDB's approximate figures, updated about every 6 hours).
	Input *types.TableDescription
	// OutputExists is false when the output is missing (a run with
	// CreateOutputTable would create it with the input's key schema).
	OutputExists bool
	// TotalSegments is the scan's total; Segments the ones this worker
	// would copy (all of them for a leased run, shared with the others);
	// SegmentsDone those of Segments the checkpoints say are copied.
	TotalSegments int
	Segments      []int
	SegmentsDone  int
	// AlreadyDone: the checkpoints say every selected segment is copied;
	// a run would read nothing.
	AlreadyDone bool
	// Leased: the segments are shared with other workers through leases.
	Leased bool
	// Parallel is how many segments would be scanned at once, Writers
	// how many BatchWriteItem requests could be in flight.
	Parallel, Writers int
}

// PreviewRun returns what Run would do with cfg. It does not repeat
// Check (call it first: a dry run calls exactly the checks a run calls);
// it reads the tables' descriptions and the checkpoints, and writes
// nothing.
func PreviewRun(ctx context.Context, cfg Config) (Preview, error) {
	var p Preview
	in, err := dynamo.DescribeTable(ctx, cfg.Source, cfg.InputTable, "")
	if err != nil {
		return p, err
	}
	p.Input = in
	_, err = dynamo.DescribeTable(ctx, cfg.Dest, cfg.OutputTable, createHint(cfg))
	var nf *dynamo.NotFoundError
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return p, err
	default:
		p.OutputExists = true
	}
	total, segs, _, err := plan0(ctx, cfg, in.TableSizeBytes)
	if err != nil {
		return p, err
	}
	// A preview logs nothing: its setup (the Scan filter of a plain
	// equality among them) would otherwise log as if a run had begun.
	r := &run{cfg: cfg, log: zap.NewNop(), st: stats.NewEntry(cfg.InputTable, cfg.OutputTable), total: total}
	p.TotalSegments, p.Segments, p.Leased = total, segs, cfg.leased()
	todo := len(segs)
	if !p.Leased {
		var res Result
		left, done, err := r.loadCheckpoints(ctx, &res, segs)
		if err != nil {
			return p, err
		}
		todo, p.SegmentsDone = len(left), done
		p.AlreadyDone = todo == 0
	}
	if !p.AlreadyDone {
		p.Parallel, _, p.Writers = r.setup(in, todo, p.Leased)
	}
	return p, nil
}
