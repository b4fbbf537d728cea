package cmdutil

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/internal/logging"
	"github.com/ddbsync/ddbsync/internal/stats"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/state"
)

// Globals are the settings of the root command, shared by every command.
type Globals struct {
	EndpointURL      string
	LogFormat        string
	LogLevel         string
	MaxRetries       int
	RetryDelayBase   time.Duration
	StateDir         string
	NoStatus         bool
	ProgressInterval time.Duration
	MetricsAddr      string
}

// DefaultGlobals are the defaults of the global flags.
func DefaultGlobals() Globals {
	return Globals{
		LogFormat:        "text",
		LogLevel:         "info",
		MaxRetries:       creds.DefaultMaxRetries,
		RetryDelayBase:   creds.DefaultRetryBase,
		StateDir:         ".ddbsync",
		ProgressInterval: 20 * time.Minute,
	}
}

// StatusFunc starts the live status display and the progress log for a
// run of the given kind ("backfill", "stream", "sync", "diff"). The
// returned stop function draws the final state and returns when the
// display is gone.
type StatusFunc func(ctx context.Context, f *Factory, reg *stats.Registry, kind string) (stop func())

// Factory builds the dependencies of a command lazily, so that --help and
// flag errors never load credentials or touch the state directory.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Globals   Globals
	Version   string
	Now       func() time.Time

	// StartStatus starts the status display; nil means none.
	StartStatus StatusFunc
	// CredsOptions adjusts the options of the credentials provider (tests:
	// a fault-injecting HTTP client).
	CredsOptions func(*creds.Options)

	logOnce sync.Once
	logger  *zap.Logger
	logErr  error
}

// Logger returns the run's logger (stdout, --log-format, --log-level).
func (f *Factory) Logger() (*zap.Logger, error) {
	f.logOnce.Do(func() {
		f.logger, f.logErr = logging.New(f.IOStreams.Out, logging.Options{Format: f.Globals.LogFormat, Level: f.Globals.LogLevel})
		if f.logErr != nil {
			f.logErr = &FlagError{Err: f.logErr}
		}
	})
	return f.logger, f.logErr
}

// Creds returns a credentials provider. mfaTokens maps an MFA device
// serial to a code given on the command line; other serials are asked for
// on the terminal when possible.
func (f *Factory) Creds(mfaTokens map[string]string) *creds.Provider {
	opts := creds.Options{
		MaxRetries:  f.Globals.MaxRetries,
		RetryBase:   f.Globals.RetryDelayBase,
		EndpointURL: f.Globals.EndpointURL,
		MFAToken: func(serial string) (string, error) {
			if tok, ok := mfaTokens[serial]; ok && tok != "" {
				return tok, nil
			}
			if tok, ok := mfaTokens[""]; ok && tok != "" {
				return tok, nil
			}
			if !f.IOStreams.CanPrompt() {
				return "", &UsageError{Err: fmt.Errorf("an MFA code is needed for %s but there is no terminal to ask on: pass it with --mfa-token", serial)}
			}
			return f.IOStreams.Prompt(fmt.Sprintf("MFA code for %s: ", serial))
		},
	}
	if f.Globals.MaxRetries == 0 {
		opts.MaxRetries = -1 // --max-retries 0 means no retries
	}
	if f.CredsOptions != nil {
		f.CredsOptions(&opts)
	}
	return creds.New(opts)
}

// StateStore returns the checkpoint store of --state-dir.
func (f *Factory) StateStore() (state.Store, error) {
	return state.NewFileStore(f.Globals.StateDir)
}

// Status starts the status display when one is configured and wanted.
func (f *Factory) Status(ctx context.Context, reg *stats.Registry, kind string) (stop func()) {
	if f.StartStatus == nil || f.Globals.NoStatus {
		return func() {}
	}
	return f.StartStatus(ctx, f, reg, kind)
}
