package cmdutil

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/lease"
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

// LeaseFlags are the scale-out flags of backfill, stream and sync.
type LeaseFlags struct {
	// CheckpointTable is --checkpoint-table.
	CheckpointTable string
	// Duration is --lease-duration: a worker whose leases were not renewed
	// for this long is considered dead and its units are taken over.
	Duration time.Duration
}

// Bounds of --lease-duration.
const (
	MinLeaseDuration = time.Second
	MaxLeaseDuration = 10 * time.Minute
)

// AddLeaseFlags registers --checkpoint-table and --lease-duration on cmd.
func AddLeaseFlags(cmd *cobra.Command, lf *LeaseFlags) {
	AddCheckpointTableFlag(cmd, &lf.CheckpointTable)
	cmd.Flags().DurationVar(&lf.Duration, "lease-duration", lease.DefaultDuration,
		"with a checkpoint table: how long a silent worker keeps its leases before others take over its work (renewed every third of it)")
}

// Apply puts the flags into a loaded plan (see ApplyCheckpointTable) and
// checks --lease-duration.
func (lf *LeaseFlags) Apply(cmd *cobra.Command, p *plan.Plan, mode plan.Mode) error {
	if f := cmd.Flags().Lookup("lease-duration"); f != nil && f.Changed {
		if lf.Duration < MinLeaseDuration || lf.Duration > MaxLeaseDuration {
			return FlagErrorf("--lease-duration %s is out of range; allowed: %s to %s", lf.Duration, MinLeaseDuration, MaxLeaseDuration)
		}
	}
	return ApplyCheckpointTable(p, lf.CheckpointTable, mode)
}

// LeaseOptions are the lease.Options of a run.
func (lf *LeaseFlags) LeaseOptions(log *zap.Logger) lease.Options {
	d := lf.Duration
	if d <= 0 {
		d = lease.DefaultDuration
	}
	return lease.Options{Duration: d, Logger: log}
}
