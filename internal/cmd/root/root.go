// Package root builds the ddbsync command tree and turns the outcome of a
// run into an exit code.
package root

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	backfillcmd "github.com/ddbsync/ddbsync/internal/cmd/backfill"
	diffcmd "github.com/ddbsync/ddbsync/internal/cmd/diff"
	streamcmd "github.com/ddbsync/ddbsync/internal/cmd/stream"
	synccmd "github.com/ddbsync/ddbsync/internal/cmd/sync"
	versioncmd "github.com/ddbsync/ddbsync/internal/cmd/version"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/internal/logging"
)

// version is set with -ldflags "-X github.com/ddbsync/ddbsync/internal/cmd/root.version=…".
var version string

// Main runs ddbsync with the process's arguments and streams and returns
// the exit code. SIGINT or SIGTERM cancel the run's context once, for a
// clean, checkpointed stop; a second signal kills the process.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // the next signal gets the default behaviour
	}()
	f := NewFactory(iostreams.System())
	return Run(ctx, f, os.Args[1:])
}

// NewFactory returns the factory of a real run.
func NewFactory(ios *iostreams.IOStreams) *cmdutil.Factory {
	return &cmdutil.Factory{
		IOStreams:   ios,
		Globals:     cmdutil.DefaultGlobals(),
		Version:     version,
		Now:         time.Now,
		StartStatus: startStatus,
	}
}

// startStatus is replaced by the status display package when it is linked in.
var startStatus cmdutil.StatusFunc

// Run executes one command line and returns its exit code.
func Run(ctx context.Context, f *cmdutil.Factory, args []string) int {
	cmd := NewCmdRoot(f)
	cmd.SetArgs(args)
	cmd.SetIn(f.IOStreams.In)
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	err := cmd.ExecuteContext(ctx)
	if l, lerr := f.Logger(); lerr == nil {
		_ = l.Sync()
	}
	if err == nil {
		return cmdutil.ExitOK
	}
	code := cmdutil.ExitCode(err)
	if !cmdutil.IsSilent(err) {
		printError(f, cmd, err, code)
	}
	return code
}

func printError(f *cmdutil.Factory, root *cobra.Command, err error, code int) {
	w := f.IOStreams.ErrOut
	var fe *cmdutil.FlagError
	switch {
	case errors.As(err, &fe):
		fmt.Fprintf(w, "Error: %v\n", err)
		c, _, ferr := root.Find(os.Args[1:])
		name := root.Name()
		if ferr == nil && c != nil {
			name = c.CommandPath()
		}
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", name)
	case code == cmdutil.ExitInterrupted:
		fmt.Fprintln(w, "Interrupted: progress is checkpointed; run the same command again to resume.")
	default:
		fmt.Fprintf(w, "Error: %v\n", err)
	}
}

// NewCmdRoot builds the command tree.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ddbsync <command>",
		Short: "Copy DynamoDB tables and keep them in sync",
		Long: `ddbsync copies DynamoDB tables and keeps them in sync, across regions,
accounts and DynamoDB-compatible endpoints.

  backfill  parallel Scan of the input table, BatchWriteItem into the output
  stream    apply the input table's DynamoDB Stream to the output, in order
  sync      backfill, then stream, with no change lost in the handover
  diff      compare a master table with slave tables; optionally repair

Logs go to standard output; the live status goes to standard error.

Exit status:
  0  success (diff: tables in sync, or every difference repaired)
  1  diff found differences that remain
  2  invalid usage or configuration; nothing was read or written
  3  runtime failure
  130 interrupted before the work was done (progress is checkpointed)`,
		Example: `  # Copy a table to another region, then keep applying its stream
  ddbsync sync --input-table orders --input-region us-east-1 \
               --output-table orders --output-region eu-west-1

  # Run every entry of a plan file
  ddbsync sync --config-file plan.yml

  # Compare a table with its replica and write what is missing
  ddbsync diff -m us-east-1:orders -s eu-west-1:orders --write-missing`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       versioncmd.Version(f.Version),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			return checkGlobals(f)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })

	g := &f.Globals
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.EndpointURL, "endpoint-url", g.EndpointURL, "endpoint URL for every table that names none (DynamoDB Local, Alternator)")
	pf.StringVar(&g.LogFormat, "log-format", g.LogFormat, "log format: "+strings.Join(logging.Formats, " or "))
	pf.StringVar(&g.LogLevel, "log-level", g.LogLevel, "log level: "+strings.Join(logging.Levels, ", "))
	pf.IntVar(&g.MaxRetries, "max-retries", g.MaxRetries, "retries of a failed request (throttling, 5xx, connection errors) before it counts as failed")
	pf.Var(cmdutil.MillisDuration{D: &g.RetryDelayBase}, "retry-delay-base", "backoff base between retries (attempt n waits up to base·2ⁿ; a plain number means milliseconds)")
	pf.StringVar(&g.StateDir, "state-dir", g.StateDir, "directory for checkpoints")
	pf.BoolVar(&g.NoStatus, "no-status", false, "do not show the live status on standard error")
	pf.DurationVar(&g.ProgressInterval, "progress-interval", g.ProgressInterval, "how often to log a progress block (0: never)")
	pf.StringVar(&g.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics on HOST:PORT")
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions(logging.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions(logging.Levels, cobra.ShellCompDirectiveNoFileComp))

	cmd.AddCommand(
		backfillcmd.NewCmdBackfill(f, nil),
		streamcmd.NewCmdStream(f, nil),
		synccmd.NewCmdSync(f, nil),
		diffcmd.NewCmdDiff(f, nil),
		versioncmd.NewCmdVersion(f),
	)
	cmd.CompletionOptions.HiddenDefaultCmd = false
	return cmd
}

// applyEnv fills every flag not given on the command line from its
// DDBSYNC_* environment variable (--max-wcu ← DDBSYNC_MAX_WCU).
func applyEnv(cmd *cobra.Command) error {
	v := viper.New()
	v.SetEnvPrefix("DDBSYNC")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	var firstErr error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || firstErr != nil {
			return
		}
		if !v.IsSet(fl.Name) {
			return
		}
		val := v.GetString(fl.Name)
		if err := fl.Value.Set(val); err != nil {
			firstErr = cmdutil.FlagErrorf("environment variable DDBSYNC_%s=%q is not a valid value for --%s: %v",
				strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_")), val, fl.Name, err)
		}
	})
	return firstErr
}

func checkGlobals(f *cmdutil.Factory) error {
	g := f.Globals
	if g.MaxRetries < 0 {
		return cmdutil.FlagErrorf("--max-retries is %d; allowed: 0 or more", g.MaxRetries)
	}
	if g.RetryDelayBase <= 0 {
		return cmdutil.FlagErrorf("--retry-delay-base is %s; allowed: a positive duration such as 50ms", g.RetryDelayBase)
	}
	if g.ProgressInterval < 0 {
		return cmdutil.FlagErrorf("--progress-interval is %s; allowed: 0 (never) or a positive duration such as 20m", g.ProgressInterval)
	}
	if _, err := f.Logger(); err != nil {
		return err
	}
	return nil
}
