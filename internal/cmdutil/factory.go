package cmdutil

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	smithylogging "github.com/aws/smithy-go/logging"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/internal/logging"
	"github.com/ddbsync/ddbsync/internal/status"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
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
	// LogFile, when set, receives the logs (appended) instead of
	// standard output.
	LogFile string
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

// StatusFunc starts the live status display or a run observer (the
// progress log, the metrics endpoint); see status.Func.
type StatusFunc = status.Func

// Factory builds the dependencies of a command lazily, so that --help and
// flag errors never load credentials or touch the state directory.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Globals   Globals
	Version   string
	Now       func() time.Time

	// StartStatus starts the status display; nil means none.
	StartStatus StatusFunc
	// RunObservers are started by Status for every run, even with
	// --no-status: the progress log and the metrics endpoint.
	RunObservers []StatusFunc
	// CredsOptions adjusts the options of the credentials provider (tests:
	// a fault-injecting HTTP client).
	CredsOptions func(*creds.Options)
	// MFAToken is the --mfa-token of the command being run (set by the
	// root command); Creds(nil) uses it for whichever MFA device asks.
	MFAToken string
	// ReadOnly is set by a dry run (--dry-run): the checkpoint stores it
	// returns refuse every write, so neither the state directory nor a
	// checkpoint document is ever written, and CheckpointStore creates no
	// checkpoint table.
	ReadOnly bool

	logOnce sync.Once
	logger  *zap.Logger
	logErr  error

	logWriterOnce sync.Once
	logWriter     *LogWriter
	logFile       *os.File
	logFileErr    error
}

// LogWriter returns the writer the run's logger writes to: IOStreams.Out,
// through a hook the status display can set, or the --log-file.
func (f *Factory) LogWriter() *LogWriter {
	f.logWriterOnce.Do(func() {
		if f.Globals.LogFile == "" {
			f.logWriter = NewLogWriter(f.IOStreams.Out)
			return
		}
		f.logFile, f.logFileErr = os.OpenFile(f.Globals.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if f.logFileErr != nil {
			f.logWriter = NewLogWriter(io.Discard)
			return
		}
		f.logWriter = NewFileLogWriter(f.logFile)
	})
	return f.logWriter
}

// Logger returns the run's logger (stdout or --log-file, --log-format,
// --log-level). A --log-file that cannot be opened is a usage error.
func (f *Factory) Logger() (*zap.Logger, error) {
	f.logOnce.Do(func() {
		w := f.LogWriter()
		if f.logFileErr != nil {
			f.logErr = FlagErrorf("--log-file: %v", f.logFileErr)
			return
		}
		f.logger, f.logErr = logging.New(w, logging.Options{Format: f.Globals.LogFormat, Level: f.Globals.LogLevel})
		if f.logErr != nil {
			f.logErr = &FlagError{Err: f.logErr}
		}
	})
	return f.logger, f.logErr
}

// CloseLog flushes the logger and closes the --log-file, if any; the
// root command calls it when the command returns.
func (f *Factory) CloseLog() {
	if f.logger != nil {
		_ = f.logger.Sync()
	}
	if f.logFile != nil {
		_ = f.logFile.Close()
	}
}

// Creds returns a credentials provider. mfaTokens maps an MFA device
// serial to a code given on the command line ("" applies to any serial);
// other serials are asked for on the terminal (on ErrOut, never stdout)
// when possible. A code from the command line is used once: when the role
// session is renewed (after creds.DefaultRoleDuration) a new code is asked
// for on the terminal, or the run fails with a message saying why.
func (f *Factory) Creds(mfaTokens map[string]string) *creds.Provider {
	if mfaTokens == nil && f.MFAToken != "" {
		mfaTokens = map[string]string{"": f.MFAToken}
	}
	var mu sync.Mutex
	used := map[string]bool{}
	opts := creds.Options{
		MaxRetries:  f.Globals.MaxRetries,
		RetryBase:   f.Globals.RetryDelayBase,
		EndpointURL: f.Globals.EndpointURL,
		MFAToken: func(serial string) (string, error) {
			mu.Lock()
			for _, key := range []string{serial, ""} {
				if tok := mfaTokens[key]; tok != "" && !used[key] {
					used[key] = true
					mu.Unlock()
					return tok, nil
				}
			}
			renewal := used[serial] || used[""]
			mu.Unlock()
			if !f.IOStreams.CanPrompt() {
				if renewal {
					return "", fmt.Errorf("MFA device %s needs a new code (for another role, or to renew the role session after an hour), but the --mfa-token code was already used and there is no terminal to ask for another", serial)
				}
				return "", &UsageError{Err: fmt.Errorf("an MFA code is needed for %s but there is no terminal to ask on: pass it with --mfa-token", serial)}
			}
			return f.IOStreams.Prompt(fmt.Sprintf("MFA code for %s: ", serial))
		},
	}
	if f.Globals.MaxRetries == 0 {
		opts.MaxRetries = -1 // --max-retries 0 means no retries
	}
	if l, err := f.Logger(); err == nil {
		// The SDK's own warnings go to the run's log, not straight to
		// the terminal under the status display.
		sdk := l.Named("aws-sdk")
		opts.Logger = smithylogging.LoggerFunc(func(c smithylogging.Classification, format string, v ...any) {
			// The instance-metadata client's warnings ("falling back to
			// IMDSv1") are the credential chain looking for an EC2 role:
			// noise before the error that explains what is missing.
			if c == smithylogging.Debug || strings.Contains(format, "IMDS") {
				sdk.Debug(fmt.Sprintf(format, v...))
				return
			}
			sdk.Warn(fmt.Sprintf(format, v...))
		})
	}
	if f.CredsOptions != nil {
		f.CredsOptions(&opts)
	}
	return creds.New(opts)
}

// StateStore returns the checkpoint store of --state-dir (read-only when
// f.ReadOnly). The directory is created by the first write only.
func (f *Factory) StateStore() (state.Store, error) {
	s, err := state.NewFileStore(f.Globals.StateDir)
	if err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	if f.ReadOnly {
		return ReadOnlyStore{Store: s}, nil
	}
	return s, nil
}

// Status starts the run observers, and the status display when one is
// configured and wanted. stop stops them in reverse order: the display
// draws its final state first.
// statusEnv is what the status display and the run observers use of the
// factory.
func (f *Factory) statusEnv() status.Env {
	return status.Env{
		IO:               f.IOStreams,
		Now:              f.Now,
		Logger:           f.Logger,
		LogJSON:          f.Globals.LogFormat == "json",
		ProgressInterval: f.Globals.ProgressInterval,
		SetLogHook:       f.LogWriter().SetHook,
	}
}

func (f *Factory) Status(ctx context.Context, reg *stats.Registry, kind string) (stop func()) {
	var stops []func()
	for _, o := range f.RunObservers {
		if o != nil {
			stops = append(stops, o(ctx, f.statusEnv(), reg, kind))
		}
	}
	if f.StartStatus != nil && !f.Globals.NoStatus {
		stops = append(stops, f.StartStatus(ctx, f.statusEnv(), reg, kind))
	}
	return func() {
		for i := len(stops) - 1; i >= 0; i-- {
			if stops[i] != nil {
				stops[i]()
			}
		}
	}
}
