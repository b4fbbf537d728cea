package sync

import (
	"github.com/ddbsync/ddbsync/internal/cmd/shared"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/pkg/stream"
	"github.com/ddbsync/ddbsync/pkg/syncer"
)

// startAfterCopy is where the stream of a sync that copies first begins.
const startAfterCopy = "the position sync records just before the copy begins (changes made during the copy are applied after it)"

// estimate is what a sync of cfg would do (a dry run, after the run's own
// checks passed): the copy, as the backfill command estimates it (the
// copy this sync would make or resume), then the stream, as the stream
// command does.
func estimate(r *cmdutil.EntriesRun, cfg syncer.Config) (*cmdutil.Estimate, error) {
	sc := stream.Config{Common: cfg.Common, Source: cfg.Source, Dest: cfg.Dest, Streams: cfg.Streams}
	if !cfg.Backfill {
		return shared.StreamEntryEstimate(r.Ctx, sc, r.Leases, shared.StreamStartOldest)
	}
	bc, err := syncer.CopyConfig(r.Ctx, cfg)
	if err != nil {
		return nil, err
	}
	est, err := shared.BackfillEstimate(r.Ctx, bc)
	if err != nil || !cfg.Stream {
		return est, err
	}
	if est.Stream, err = shared.StreamEstimate(r.Ctx, sc, r.Leases, startAfterCopy); err != nil {
		return nil, err
	}
	return est, nil
}
