package cmdutil

import (
	"context"
	"errors"
	"fmt"

	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
)

// ErrDryRunWrite is returned by a ReadOnlyStore asked to write: a dry run
// that reaches a write is a bug, and fails rather than write.
var ErrDryRunWrite = errors.New("dry run: a checkpoint write was attempted and refused")

// ReadOnlyStore is the checkpoint store of a dry run: reads go to Store,
// writes are refused (ErrDryRunWrite). The state directory of a
// state.FileStore is created by its first write only, so a dry run never
// creates it.
type ReadOnlyStore struct{ state.Store }

// Put implements state.Store: refused.
func (ReadOnlyStore) Put(context.Context, string, any) error { return ErrDryRunWrite }

// Delete implements state.Store: refused.
func (ReadOnlyStore) Delete(context.Context, string) error { return ErrDryRunWrite }

// Where names the store it reads (state.Where), for messages.
func (s ReadOnlyStore) Where() string { return state.Where(s.Store) }

// dryRunCheckpointStore is CheckpointStore for a dry run: the checkpoint
// table's key schema is checked but a missing table is not created. Then
// the store is an empty one (no checkpoints: a run would start afresh)
// and note says what a run would create.
func (f *Factory) dryRunCheckpointStore(ctx context.Context, p *plan.Plan, prov *creds.Provider, worker string) (store state.Store, note string, err error) {
	if p.CheckpointTable == nil {
		s, err := f.StateStore()
		return s, "", err
	}
	log, err := f.Logger()
	if err != nil {
		return nil, "", err
	}
	clients, err := prov.For(ctx, *p.CheckpointTable)
	if err != nil {
		return nil, "", err
	}
	ds := state.NewDynamoStore(clients.DynamoDB, p.CheckpointTable.Table, state.DynamoOptions{Writer: worker, Logger: log})
	exists, err := ds.CheckTable(ctx)
	if err != nil {
		return nil, "", err
	}
	if !exists {
		return ReadOnlyStore{Store: state.NewMemory()}, fmt.Sprintf("checkpoint table %s does not exist: a run would create it (on-demand billing, key %s (S, hash) + %s (S, range)); no checkpoints yet",
			p.CheckpointTable.Table, state.AttrPK, state.AttrSK), nil
	}
	return ReadOnlyStore{Store: ds}, "", nil
}
