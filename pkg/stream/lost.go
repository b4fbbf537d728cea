package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// checkLost runs once at start, before any shard is read: every stored
// checkpoint of a shard that is not finished and no longer in the
// stream's listing is a gap. Such a shard was trimmed after the consumer
// stopped (it was stopped for longer than the retention): the records it
// held after the checkpoint are gone, and reading its children from their
// trim horizon would skip them silently.
func (e *engine) checkLost(ctx context.Context, l *Listing) error {
	listed := make(map[string]bool, len(l.Shards))
	for _, s := range l.Shards {
		listed[s.ID] = true
	}
	for _, id := range e.cfg.FinishedShards {
		listed[id] = true // consumed by definition (sync: closed before T0)
	}
	stored, err := e.storedCheckpoints(ctx)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(stored))
	for id := range stored {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		cp := stored[id]
		if cp.Done || listed[id] {
			continue
		}
		if !cp.Created.IsZero() && e.now().Sub(cp.Created) < e.cfg.Retention-time.Minute {
			// Its last applied record is within the retention, so the
			// shard still exists: the listing (eventually consistent)
			// does not show it yet.
			continue
		}
		return &GapError{
			Table: e.cfg.InputTable, Shard: id, From: cp.Created, To: e.now().Add(-e.cfg.Retention),
			Detail: fmt.Sprintf("the shard, checkpointed at sequence number %s, is no longer in the stream: it was trimmed while the consumer was stopped for longer than the retention", cp.Seq),
		}
	}
	return nil
}

// storedCheckpoints returns the shard checkpoints this entry holds: in
// the state store, or in the shard leases of the checkpoint table (only
// leases with a checkpoint: a shard never read lost nothing of ours).
func (e *engine) storedCheckpoints(ctx context.Context) (map[string]checkpoint, error) {
	out := map[string]checkpoint{}
	if e.cfg.Leases != nil {
		infos, err := e.cfg.Leases.Manager.List(ctx, e.leaseScope())
		if err != nil {
			return nil, err
		}
		for _, in := range infos {
			if len(in.Checkpoint) == 0 {
				continue
			}
			var cp checkpoint
			if err := json.Unmarshal(in.Checkpoint, &cp); err != nil {
				return nil, fmt.Errorf("checkpoint of stream shard %s in the checkpoint table is damaged: %w", in.Unit, err)
			}
			cp.Done = cp.Done || in.Finished
			out[in.Unit] = cp
		}
		return out, nil
	}
	prefix := e.key("shards") + "/"
	keys, err := e.cfg.Store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		id := strings.TrimPrefix(k, prefix)
		cp, err := e.loadCheckpoint(ctx, id)
		if err != nil {
			return nil, err
		}
		out[id] = cp
	}
	return out, nil
}

// checkLostLeased is checkLost for a worker sharing the stream.
func (e *engine) checkLostLeased(ctx context.Context) error {
	l, err := ListShards(ctx, e.cfg.Streams, e.info.ARN)
	if err != nil {
		return err
	}
	return e.checkLost(ctx, l)
}
