package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// mfaFunc returns the MFAToken function a factory gives the provider.
func mfaFunc(t *testing.T, f *Factory, tokens map[string]string) func(string) (string, error) {
	t.Helper()
	var got creds.Options
	f.CredsOptions = func(o *creds.Options) { got = *o }
	f.Creds(tokens)
	if got.MFAToken == nil {
		t.Fatal("no MFAToken function")
	}
	return got.MFAToken
}

func TestCredsMFAFromFlags(t *testing.T) {
	ios, _, out, errOut := iostreams.Test()
	f := &Factory{IOStreams: ios, Globals: DefaultGlobals()}
	tok := mfaFunc(t, f, map[string]string{"arn:aws:iam::1:mfa/a": "111111", "": "222222"})
	if code, err := tok("arn:aws:iam::1:mfa/a"); code != "111111" || err != nil {
		t.Fatalf("serial a: %q %v", code, err)
	}
	if code, err := tok("arn:aws:iam::1:mfa/b"); code != "222222" || err != nil {
		t.Fatalf("serial b takes the code given for any serial: %q %v", code, err)
	}
	// Renewal: the codes are spent and there is no terminal.
	_, err := tok("arn:aws:iam::1:mfa/a")
	if err == nil || !strings.Contains(err.Error(), "needs a new code (for another role, or to renew the role session after an hour), but the --mfa-token code was already used and there is no terminal to ask for another") {
		t.Fatalf("renewal: %v", err)
	}
	if strings.Contains(err.Error(), "111111") {
		t.Errorf("error repeats the code: %v", err)
	}
	if out.Len() != 0 || errOut.Len() != 0 {
		t.Errorf("output written: stdout %q stderr %q", out, errOut)
	}
}

func TestCredsMFAFromFactory(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := &Factory{IOStreams: ios, Globals: DefaultGlobals(), MFAToken: "333333"}
	if code, err := mfaFunc(t, f, nil)("arn:aws:iam::1:mfa/a"); code != "333333" || err != nil {
		t.Fatalf("Creds(nil) with Factory.MFAToken: %q %v", code, err)
	}
	// An explicit map (diff's) is used as given.
	if _, err := mfaFunc(t, f, map[string]string{})("arn:aws:iam::1:mfa/a"); err == nil {
		t.Fatal("Factory.MFAToken used despite an explicit map")
	}
}

func TestCredsMFANoTerminal(t *testing.T) {
	ios, _, out, errOut := iostreams.Test()
	ios.SetTTY(false, true, true) // stdin is a pipe
	f := &Factory{IOStreams: ios, Globals: DefaultGlobals()}
	_, err := mfaFunc(t, f, nil)("arn:aws:iam::1:mfa/a")
	if err == nil || err.Error() != "an MFA code is needed for arn:aws:iam::1:mfa/a but there is no terminal to ask on: pass it with --mfa-token" {
		t.Fatalf("err = %v", err)
	}
	if ExitCode(err) != ExitUsage {
		t.Errorf("exit code %d, want 2", ExitCode(err))
	}
	if out.Len() != 0 || errOut.Len() != 0 {
		t.Errorf("prompted without a terminal: stdout %q stderr %q", out, errOut)
	}
}

func TestCredsMFAPromptsOnErrOut(t *testing.T) {
	ios, in, out, errOut := iostreams.Test()
	ios.SetTTY(true, false, true) // stdout redirected: still may prompt on stderr
	in.WriteString("654321\n")
	f := &Factory{IOStreams: ios, Globals: DefaultGlobals()}
	code, err := mfaFunc(t, f, nil)("arn:aws:iam::1:mfa/a")
	if err != nil || code != "654321" {
		t.Fatalf("%q %v", code, err)
	}
	if got := errOut.String(); got != "MFA code for arn:aws:iam::1:mfa/a: " {
		t.Errorf("prompt on stderr = %q", got)
	}
	if out.Len() != 0 {
		t.Errorf("stdout = %q; prompts never go to stdout", out)
	}
}

func TestCredsRetryOptions(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := &Factory{IOStreams: ios, Globals: DefaultGlobals()}
	f.Globals.MaxRetries = 0
	f.Globals.RetryDelayBase = 250 * time.Millisecond
	f.Globals.EndpointURL = "http://localhost:8000"
	var got creds.Options
	f.CredsOptions = func(o *creds.Options) { got = *o }
	p := f.Creds(nil)
	if got.MaxRetries != -1 || got.RetryBase != 250*time.Millisecond || got.EndpointURL != "http://localhost:8000" {
		t.Fatalf("options %+v", got)
	}
	if n := p.Retryer().MaxAttempts(); n != 1 {
		t.Errorf("--max-retries 0 gave %d attempts, want 1", n)
	}
	f.Globals.MaxRetries = 4
	if n := f.Creds(nil).Retryer().MaxAttempts(); n != 5 {
		t.Errorf("--max-retries 4 gave %d attempts, want 5", n)
	}
}

func TestMillisDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"250": 250 * time.Millisecond, "1.5": 1500 * time.Microsecond, "2s": 2 * time.Second, "250ms": 250 * time.Millisecond} {
		var d time.Duration
		if err := (MillisDuration{D: &d}).Set(in); err != nil || d != want {
			t.Errorf("Set(%q) = %s, %v; want %s", in, d, err, want)
		}
	}
	var d time.Duration
	if err := (MillisDuration{D: &d}).Set("soon"); err == nil || err.Error() != `"soon" is neither milliseconds nor a duration such as 250ms` {
		t.Errorf("err = %v", err)
	}
}

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{&ExitError{Code: 1}, 1},
		{FlagErrorf("x"), 2},
		{Usagef("x"), 2},
		{fmt.Errorf("wrapped: %w", &plan.Error{Msg: "x"}), 2},
		{&dynamo.NotFoundError{Table: "t"}, 2},
		{&dynamo.TableError{Table: "t", Op: "Scan", Err: errors.New("x")}, 3},
		{fmt.Errorf("stopping: %w", context.Canceled), 130},
		{errors.New("boom"), 3},
	} {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if !IsSilent(&ExitError{Code: 1}) || IsSilent(&ExitError{Code: 3, Err: errors.New("x")}) {
		t.Error("IsSilent")
	}
}

// planCmd is a command with the plan flags, as backfill/stream/sync have.
func planCmd(mode plan.Mode, args ...string) (*plan.Plan, error) {
	pf := &PlanFlags{}
	var p *plan.Plan
	cmd := &cobra.Command{Use: "x", RunE: func(cmd *cobra.Command, _ []string) error {
		var err error
		p, err = pf.Load(cmd, mode, strings.NewReader("plan:\n  - input: {table: from-stdin, region: us-east-1}\n    output: {table: other}\n"))
		return err
	}}
	AddPlanFlags(cmd, pf)
	cmd.Flags().BoolVar(&pf.Backfill, "backfill", true, "")
	cmd.Flags().BoolVar(&pf.Stream, "stream", true, "")
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.Execute()
	return p, err
}

func TestPlanFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plan.yml")
	if err := os.WriteFile(file, []byte("plan:\n  - input: {table: aaa, region: us-east-1}\n    output: {table: bbb}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("file and flags are mutually exclusive", func(t *testing.T) {
		_, err := planCmd(plan.ModeSync, "--config-file", file, "--input-table", "x", "--output-region", "eu-west-1")
		var fe *FlagError
		if !errors.As(err, &fe) || err.Error() != "--config-file and --input-table, --output-region cannot be used together: put the tables in the plan file, or drop --config-file" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("neither", func(t *testing.T) {
		_, err := planCmd(plan.ModeSync)
		if ExitCode(err) != 2 || !strings.Contains(err.Error(), "give a plan with --config-file, or a table pair with --input-table and --output-table") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("flags", func(t *testing.T) {
		p, err := planCmd(plan.ModeBackfill, "--input-table", "src", "--input-region", "us-east-1", "--output-table", "dst",
			"--output-role-arn", "arn:aws:iam::1:role/w", "--output-external-id", "e", "--input-profile", "prof", "--input-endpoint-url", "http://h:1",
			"--backfill-segments", "1,0", "--backfill-total-segments", "4", "--max-wcu", "10", "--max-rcu", "5")
		if err != nil {
			t.Fatal(err)
		}
		e := p.Entries[0]
		want := plan.Entry{
			Input:    plan.Table{Table: "src", Region: "us-east-1", Profile: "prof", EndpointURL: "http://h:1"},
			Output:   plan.Table{Table: "dst", Region: "us-east-1", RoleARN: "arn:aws:iam::1:role/w", ExternalID: "e"},
			Stream:   plan.Stream{Disabled: true},
			Backfill: plan.Backfill{Segments: "1,0", TotalSegments: 4, MaxWCU: 10, MaxRCU: 5},
		}
		if e != want {
			t.Fatalf("entry\n got %+v\nwant %+v", e, want)
		}
	})
	t.Run("mfa token", func(t *testing.T) {
		pf := &PlanFlags{}
		if pf.MFATokens() != nil {
			t.Fatal("tokens without --mfa-token")
		}
		pf.MFAToken = "123456"
		if got := pf.MFATokens(); len(got) != 1 || got[""] != "123456" {
			t.Fatalf("MFATokens() = %v", got)
		}
		if _, err := planCmd(plan.ModeBackfill, "--config-file", file, "--mfa-token", "123456"); err != nil {
			t.Fatalf("--mfa-token with a plan file: %v", err)
		}
	})
	t.Run("stdin plan with flag overrides", func(t *testing.T) {
		p, err := planCmd(plan.ModeSync, "-c", "-", "--backfill=false")
		if err != nil {
			t.Fatal(err)
		}
		if e := p.Entries[0]; e.Input.Table != "from-stdin" || !e.Backfill.Disabled || e.Stream.Disabled || p.Source != "(standard input)" {
			t.Fatalf("entry %+v", e)
		}
	})
	t.Run("stream mode never backfills", func(t *testing.T) {
		p, err := planCmd(plan.ModeStream, "--config-file", file)
		if err != nil || !p.Entries[0].Backfill.Disabled || p.Entries[0].Stream.Disabled {
			t.Fatalf("%+v %v", p, err)
		}
	})
	t.Run("segments with streaming in sync", func(t *testing.T) {
		_, err := planCmd(plan.ModeSync, "--config-file", file, "--backfill-segments", "0", "--backfill-total-segments", "2")
		if ExitCode(err) != 2 || !strings.Contains(err.Error(), "cannot be combined with streaming") {
			t.Fatalf("err = %v", err)
		}
		if _, err := planCmd(plan.ModeSync, "--config-file", file, "--backfill-segments", "0", "--backfill-total-segments", "2", "--stream=false"); err != nil {
			t.Fatalf("with --stream=false: %v", err)
		}
	})
	t.Run("same table from flags", func(t *testing.T) {
		_, err := planCmd(plan.ModeBackfill, "--input-table", "src", "--input-region", "us-east-1")
		if ExitCode(err) != 2 || err.Error() != "[src] ⇨ [src]: input and output are the same table (us-east-1:src); name another output table, region, account or endpoint" {
			t.Fatalf("err = %v", err)
		}
	})
}
