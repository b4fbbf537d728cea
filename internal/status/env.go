package status

import (
	"context"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

// Env is what a status display or a run observer uses of the command
// running: its streams, its clock, its logs and the progress interval.
// The command's factory fills it in (cmdutil.Factory.Status).
type Env struct {
	IO  *iostreams.IOStreams
	Now func() time.Time
	// Logger returns the run's logger (ProgressLog writes to it).
	Logger func() (*zap.Logger, error)
	// LogJSON: the logs are JSON (--log-format json), so the progress
	// block is one structured line.
	LogJSON bool
	// ProgressInterval is --progress-interval (0: no progress log).
	ProgressInterval time.Duration
	// SetLogHook makes log lines go through hook until restore is called
	// (the display prints them above itself); nil: log lines are left
	// alone.
	SetLogHook func(hook func(out io.Writer, p []byte) (int, error)) (restore func())
}

// Func starts a status display or run observer for a run of the given
// kind ("backfill", "stream", "sync", "diff"). The returned stop function
// draws the final state and returns when the display is gone.
type Func func(ctx context.Context, env Env, reg *stats.Registry, kind string) (stop func())
