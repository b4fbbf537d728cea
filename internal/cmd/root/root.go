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
	iampolicycmd "github.com/ddbsync/ddbsync/internal/cmd/iampolicy"
	streamcmd "github.com/ddbsync/ddbsync/internal/cmd/stream"
	synccmd "github.com/ddbsync/ddbsync/internal/cmd/sync"
	versioncmd "github.com/ddbsync/ddbsync/internal/cmd/version"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/internal/logging"
	"github.com/ddbsync/ddbsync/internal/metrics"
	"github.com/ddbsync/ddbsync/internal/status"
)

// version is set by release builds (GoReleaser, the Dockerfile) from the
// git tag, with -ldflags "-X github.com/ddbsync/ddbsync/internal/cmd/root.version=v1.2.3";
// without it the version comes from the build info (internal/cmd/version).
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
		// The progress log runs with --no-status too.
		RunObservers: []cmdutil.StatusFunc{status.ProgressLog},
	}
}

// startStatus is the live status display on standard error.
var startStatus cmdutil.StatusFunc = status.Start

// Run executes one command line and returns its exit code.
func Run(ctx context.Context, f *cmdutil.Factory, args []string) int {
	// Cancelled when the command returns: stops the metrics server.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := NewCmdRoot(f)
	cmd.SetArgs(args)
	cmd.SetIn(f.IOStreams.In)
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	started := markRunStart(cmd)
	ran, err := cmd.ExecuteContextC(ctx)
	if err != nil && *started {
		// No credentials, an expired SSO session, access denied…: say
		// what is wrong and what to do instead of the SDK's chain.
		command := ""
		if ran != nil {
			switch ran.Name() {
			case "backfill", "stream", "sync", "diff":
				command = ran.Name()
			}
		}
		err = cmdutil.ExplainAWS(err, command)
	}
	if err != nil && !*started && cmdutil.ExitCode(err) == cmdutil.ExitRuntime {
		// Unknown commands, bad arguments, missing required flags: cobra
		// found them before the command started, so nothing was done.
		err = &cmdutil.FlagError{Err: err}
	}
	f.CloseLog()
	if err == nil {
		return cmdutil.ExitOK
	}
	code := cmdutil.ExitCode(err)
	if !cmdutil.IsSilent(err) {
		printError(f, cmd, args, err, code)
	}
	return code
}

func printError(f *cmdutil.Factory, root *cobra.Command, args []string, err error, code int) {
	w := f.IOStreams.ErrOut
	var fe *cmdutil.FlagError
	switch {
	case errors.As(err, &fe):
		fmt.Fprintf(w, "Error: %v\n", err)
		c, _, ferr := root.Find(args)
		name := root.Name()
		if ferr == nil && c != nil {
			name = c.CommandPath()
		}
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", name)
	case code == cmdutil.ExitInterrupted:
		fmt.Fprintln(w, "Interrupted: progress is checkpointed; run the same command again to resume.")
	default:
		fmt.Fprintf(w, "Error: %v\n", err)
		var awe *cmdutil.AWSError
		if errors.As(err, &awe) && f.Globals.LogLevel == "debug" {
			fmt.Fprintf(w, "Cause: %v\n", awe.Err)
		}
	}
}

// markRunStart wraps the RunE (or Run) of every command of the tree so
// that Run can tell an error of cobra's own checks, found before any
// command started, from one of the run.
func markRunStart(root *cobra.Command) *bool {
	started := new(bool)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				*started = true
				return run(cmd, args)
			}
		} else if run := c.Run; run != nil {
			c.Run = func(cmd *cobra.Command, args []string) {
				*started = true
				run(cmd, args)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return started
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
Every flag can also be set in the environment as DDBSYNC_<FLAG>, e.g.
DDBSYNC_MAX_RETRIES=20 for --max-retries 20 (see docs/usage.md).

Exit status:
  0    success (diff: tables in sync, or every difference repaired)
  1    diff found differences that remain
  2    invalid usage or configuration; nothing was read or written
  3    runtime failure
  130  interrupted before the work was done (progress is checkpointed)`,
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
			if err := checkGlobals(cmd, f); err != nil {
				return err
			}
			if fl := cmd.Flags().Lookup("mfa-token"); fl != nil {
				f.MFAToken = fl.Value.String() // for f.Creds(nil)
			}
			return startMetrics(cmd, f)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		// invalid argument "x" for "--max-retries" flag: strconv.ParseInt:
		// parsing "x": invalid syntax → ... flag: not a number
		msg := err.Error()
		if i := strings.Index(msg, "\" flag: "); i >= 0 && strings.Contains(msg, "strconv.") {
			return cmdutil.FlagErrorf("%s\" flag: %s", msg[:i], cleanSetError(err, "", ""))
		}
		return &cmdutil.FlagError{Err: err}
	})

	g := &f.Globals
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.EndpointURL, "endpoint-url", g.EndpointURL, "endpoint URL for every table that names none (DynamoDB Local, Alternator)")
	cmdutil.StringEnumFlag(cmd, pf, &g.LogFormat, "log-format", g.LogFormat, logging.Formats, "log format")
	cmdutil.StringEnumFlag(cmd, pf, &g.LogLevel, "log-level", g.LogLevel, logging.Levels, "log level")
	pf.IntVar(&g.MaxRetries, "max-retries", g.MaxRetries, "retries of a failed request (throttling, 5xx, connection errors) before it counts as failed")
	pf.Var(cmdutil.MillisDuration{D: &g.RetryDelayBase}, "retry-delay-base", "backoff base between retries (attempt n waits up to base·2ⁿ; a plain number means milliseconds)")
	pf.StringVar(&g.StateDir, "state-dir", g.StateDir, "directory for checkpoints")
	pf.BoolVar(&g.NoStatus, "no-status", false, "do not show the live status on standard error")
	pf.DurationVar(&g.ProgressInterval, "progress-interval", g.ProgressInterval, "how often to log a progress block (0: never)")
	pf.StringVar(&g.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics on HOST:PORT")
	pf.StringVar(&g.LogFile, "log-file", "", "append the logs to FILE (same format) instead of writing them to standard output")

	cmd.AddCommand(
		backfillcmd.NewCmdBackfill(f, nil),
		streamcmd.NewCmdStream(f, nil),
		synccmd.NewCmdSync(f, nil),
		diffcmd.NewCmdDiff(f, nil),
		iampolicycmd.NewCmdIAMPolicy(f, nil),
		versioncmd.NewCmdVersion(f, nil),
	)
	cmdutil.RegisterAWSCompletions(cmd, f)
	cmd.CompletionOptions.HiddenDefaultCmd = false
	return cmd
}

// applyEnv fills every flag not given on the command line from its
// DDBSYNC_* environment variable (--max-wcu ← DDBSYNC_MAX_WCU). A flag
// filled so counts as given (Changed), and remembers its variable for
// messages (cmdutil.FlagSource).
func applyEnv(cmd *cobra.Command) error {
	v := viper.New()
	v.SetEnvPrefix("DDBSYNC")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	fs := cmd.Flags()
	var names []string
	fs.VisitAll(func(fl *pflag.Flag) {
		if !fl.Changed && fl.Name != "help" && fl.Name != "version" && v.IsSet(fl.Name) {
			names = append(names, fl.Name)
		}
	})
	for _, name := range names {
		env := "DDBSYNC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		val := v.GetString(name)
		if err := fs.Set(name, val); err != nil {
			shown := fmt.Sprintf("=%q", val)
			if sensitiveFlag(name) {
				shown = "" // never repeat a token or secret
			}
			return cmdutil.FlagErrorf("environment variable %s%s is not a valid value for --%s: %s", env, shown, name, cleanSetError(err, val, name))
		}
		_ = fs.SetAnnotation(name, cmdutil.EnvAnnotation, []string{env})
	}
	return nil
}

// sensitiveFlag reports whether a flag's value must never be repeated in
// a message (MFA codes, tokens, secrets).
func sensitiveFlag(name string) bool {
	for _, s := range []string{"token", "secret", "password"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// cleanSetError shortens strconv's wording ("strconv.ParseInt: parsing
// \"x\": invalid syntax") to what is wrong.
func cleanSetError(err error, val, name string) string {
	msg := err.Error()
	// pflag says: invalid argument "x" for "--name" flag: <reason>.
	if i := strings.Index(msg, "\" flag: "); i >= 0 && strings.HasPrefix(msg, "invalid argument ") {
		msg = msg[i+len("\" flag: "):]
	}
	switch {
	case strings.Contains(msg, "strconv.ParseBool"):
		msg = "not true or false"
	case strings.Contains(msg, "out of range"):
		msg = "out of range"
	case strings.Contains(msg, "strconv."):
		msg = "not a number"
	}
	if sensitiveFlag(name) && val != "" {
		msg = strings.ReplaceAll(msg, val, "…")
	}
	return msg
}

func checkGlobals(cmd *cobra.Command, f *cmdutil.Factory) error {
	g := f.Globals
	src := func(name string) string {
		if fl := cmd.Flags().Lookup(name); fl != nil {
			return cmdutil.FlagSource(fl)
		}
		return "--" + name
	}
	if g.MaxRetries < 0 {
		return cmdutil.FlagErrorf("%s is %d; allowed: 0 or more", src("max-retries"), g.MaxRetries)
	}
	if g.RetryDelayBase <= 0 {
		return cmdutil.FlagErrorf("%s is %s; allowed: a positive duration such as 50ms (a plain number means milliseconds)", src("retry-delay-base"), g.RetryDelayBase)
	}
	if g.ProgressInterval < 0 {
		return cmdutil.FlagErrorf("%s is %s; allowed: 0 (never) or a positive duration such as 20m", src("progress-interval"), g.ProgressInterval)
	}
	if _, err := f.Logger(); err != nil {
		return err
	}
	return nil
}

// startMetrics serves --metrics-addr for the commands that copy or compare
// tables, until the command returns. A bad or busy address is a usage
// error: nothing has been read or written yet.
func startMetrics(cmd *cobra.Command, f *cmdutil.Factory) error {
	if f.Globals.MetricsAddr == "" {
		return nil
	}
	switch cmd.Name() {
	case "backfill", "stream", "sync", "diff":
	default:
		return nil
	}
	srv, err := metrics.Listen(f.Globals.MetricsAddr)
	if err != nil {
		return cmdutil.FlagErrorf("%v", err)
	}
	f.RunObservers = append(f.RunObservers, srv.Observe)
	ctx := cmd.Context()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return nil
}
