package syncer

import (
	"context"

	"github.com/ddbsync/ddbsync/pkg/backfill"
)

// CopyConfig is the backfill configuration of the copy a run of cfg would
// make or resume: the copy of the recorded handover, or, for a first run
// (no record yet), a copy of its own with no checkpoint (earlier progress
// of the entry never counts, see recordHandover). Without the stream it
// is the entry's own backfill, as the backfill command copies. It reads
// the handover and writes nothing.
func CopyConfig(ctx context.Context, cfg Config) (backfill.Config, error) {
	cfg.defaults()
	var h *Handover
	if cfg.Stream {
		h = &Handover{}
		ok, err := cfg.Store.Get(ctx, cfg.handoverKey(), h)
		if err != nil {
			return backfill.Config{}, err
		}
		if !ok {
			h.Generation = "new"
		}
	}
	return cfg.backfillConfig(h), nil
}
