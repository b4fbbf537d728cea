package cmdutil

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
)

// AddCheckpointTableFlag registers --checkpoint-table on cmd.
func AddCheckpointTableFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "checkpoint-table", "",
		"DynamoDB table for checkpoints and leases shared by several workers (created when missing; default: files in --state-dir)")
}

// ApplyCheckpointTable puts --checkpoint-table into a loaded plan. The
// flag names only the table: its region is the first entry's input region
// unless the environment gives one at run time, and its endpoint the
// global --endpoint-url. A plan file that names another checkpoint_table
// is a flag error.
func ApplyCheckpointTable(p *plan.Plan, name string, mode plan.Mode) error {
	if name == "" {
		return nil
	}
	if p.CheckpointTable != nil {
		if p.CheckpointTable.Table == name {
			return nil
		}
		return FlagErrorf("--checkpoint-table %s conflicts with checkpoint_table %s of the plan file; give one of them", name, p.CheckpointTable.Table)
	}
	t := plan.Table{Table: name}
	if len(p.Entries) > 0 {
		t.Region = p.Entries[0].Input.Region
	}
	p.CheckpointTable = &t
	return p.Validate(mode)
}

// CheckpointStore returns the state store of a run: a state.DynamoStore on
// the plan's checkpoint table (created on first use, or its key schema
// checked: a wrong one is a *plan.Error), or the file store of --state-dir
// when the plan has none. prov is the run's credentials provider (the one
// its tables use, so that an MFA code is asked for once; nil: a new one),
// worker is recorded with every document written (lease.NewWorkerID()).
func (f *Factory) CheckpointStore(ctx context.Context, p *plan.Plan, prov *creds.Provider, worker string) (state.Store, error) {
	if p.CheckpointTable == nil {
		return f.StateStore()
	}
	log, err := f.Logger()
	if err != nil {
		return nil, err
	}
	if prov == nil {
		prov = f.Creds(nil)
	}
	clients, err := prov.For(ctx, *p.CheckpointTable)
	if err != nil {
		return nil, err
	}
	st := state.NewDynamoStore(clients.DynamoDB, p.CheckpointTable.Table, state.DynamoOptions{Writer: worker, Logger: log})
	if err := st.EnsureTable(ctx); err != nil {
		return nil, err
	}
	return st, nil
}
