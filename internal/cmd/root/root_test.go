package root

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/pkg/creds"
)

// cliEnv, when set, makes the test binary behave as ddbsync: the bash
// completion test puts it on PATH under that name.
const cliEnv = "DDBSYNC_TEST_BINARY_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		ios := iostreams.System()
		os.Exit(Run(context.Background(), NewFactory(ios), os.Args[1:]))
	}
	os.Exit(m.Run())
}

type result struct {
	code        int
	out, errOut string
	f           *cmdutil.Factory
}

func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	f := NewFactory(ios)
	f.StartStatus = nil
	f.Globals.StateDir = filepath.Join(t.TempDir(), "state")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := Run(ctx, f, args)
	return result{code, out.String(), errOut.String(), f}
}

func writePlan(t *testing.T, yml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plan.yml")
	if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodEntry = "plan:\n  - input: {table: aaa, region: us-east-1}\n    output: {table: bbb, region: us-east-1}\n"

// The bad plans of issue 2, through the CLI of every command that takes a
// plan: exit 2, the message on stderr, nothing on stdout.
func TestBadPlansExit2(t *testing.T) {
	cases := []struct {
		name, yml string
		want      string
		commands  []string // default: all plan commands
	}{
		{"unknown key", "plan:\n  - input: {table: aaa, region: us-east-1}\n    output: {tabel: bbb}\n", `line 3: unknown key "tabel" in a table (did you mean "table"?)`, nil},
		{"missing table", "plan:\n  - input: {region: us-east-1}\n    output: {table: bbb}\n", "plan entry 1: input.table is required", nil},
		{"input equals output", "plan:\n  - input: {table: aaa, region: us-east-1}\n", "input and output are the same table (us-east-1:aaa)", nil},
		{"segment out of range", goodEntry + "    stream: {disabled: true}\n    backfill: {segments: \"0,7\", total_segments: 4}\n", "backfill segment 7 is out of range; with total_segments 4 the segments are 0 to 3", []string{"backfill", "sync"}},
		{"segments without total", goodEntry + "    stream: {disabled: true}\n    backfill: {segments: \"0\"}\n", `backfill.segments is set ("0") without backfill.total_segments`, []string{"backfill", "sync"}},
		{"segments with streaming", goodEntry + "    backfill: {segments: \"0\", total_segments: 2}\n", "cannot be combined with streaming", []string{"sync"}},
		{"malformed yaml", "plan:\n  - input: {table: aaa\n", "line 2: malformed YAML: did not find expected ',' or '}'", nil},
		{"empty plan", "plan: []\n", "the plan is empty", nil},
		{"empty file", "", "is empty: it needs a \"plan:\" list", nil},
	}
	for _, cmdName := range []string{"backfill", "stream", "sync", "diff"} {
		t.Run(cmdName, func(t *testing.T) {
			if r := run(t, "", cmdName, "--help"); !strings.Contains(r.out, "--config-file") {
				t.Skipf("ddbsync %s has no --config-file yet (its command is still a stub)", cmdName)
			}
			for _, tc := range cases {
				if tc.commands != nil && !contains(tc.commands, cmdName) {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					file := writePlan(t, tc.yml)
					r := run(t, "", cmdName, "--config-file", file)
					checkUsageError(t, r, tc.want)
					if !strings.Contains(r.errOut, "plan file "+file) {
						t.Errorf("the message does not name the file:\n%s", r.errOut)
					}
					// The same plan on standard input.
					r = run(t, tc.yml, cmdName, "--config-file", "-")
					checkUsageError(t, r, tc.want)
					if !strings.Contains(r.errOut, "plan file (standard input)") {
						t.Errorf("the message does not name standard input:\n%s", r.errOut)
					}
				})
			}
		})
	}
}

func checkUsageError(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 2 {
		t.Errorf("exit %d, want 2; stderr:\n%s", r.code, r.errOut)
	}
	if !strings.Contains(r.errOut, want) {
		t.Errorf("stderr does not contain %q:\n%s", want, r.errOut)
	}
	if !strings.HasPrefix(r.errOut, "Error: ") {
		t.Errorf("stderr does not start with \"Error: \":\n%s", r.errOut)
	}
	if r.out != "" {
		t.Errorf("stdout not empty:\n%s", r.out)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestConfigFileAndFlagsExclusive(t *testing.T) {
	p := writePlan(t, goodEntry)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backfill", "--config-file", p, "--input-table", "x"}, "--config-file and --input-table cannot be used together"},
		{[]string{"sync", "--config-file", p, "--output-region", "eu-west-1"}, "--config-file and --output-region cannot be used together"},
		{[]string{"diff", "--config-file", p, "--master", "us-east-1:x"}, "--config-file and --master cannot be used together"},
	} {
		if r := run(t, "", tc.args[0], "--help"); !strings.Contains(r.out, "--config-file") {
			t.Logf("skipping %s: no --config-file yet", tc.args[0])
			continue
		}
		r := run(t, "", tc.args...)
		checkUsageError(t, r, tc.want)
		if !strings.Contains(r.errOut, "Run 'ddbsync "+tc.args[0]+" --help' for usage.") {
			t.Errorf("no usage hint:\n%s", r.errOut)
		}
	}
}

func TestConfigFileAndEnvFlagsExclusive(t *testing.T) {
	if r := run(t, "", "backfill", "--help"); !strings.Contains(r.out, "--input-table") {
		t.Skip("ddbsync backfill has no plan flags yet")
	}
	t.Setenv("DDBSYNC_INPUT_TABLE", "from-env")
	r := run(t, "", "backfill", "--config-file", writePlan(t, goodEntry))
	checkUsageError(t, r, "--config-file and DDBSYNC_INPUT_TABLE (environment) cannot be used together")
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		want, hint string
	}{
		{[]string{"--bogus"}, "unknown flag: --bogus", "Run 'ddbsync --help' for usage."},
		{[]string{"version", "--bogus"}, "unknown flag: --bogus", "Run 'ddbsync version --help' for usage."},
		{[]string{"diff", "--parallel", "many"}, `invalid argument "many" for "--parallel" flag`, "Run 'ddbsync diff --help' for usage."},
		{[]string{"bogus"}, `unknown command "bogus" for "ddbsync"`, "Run 'ddbsync --help' for usage."},
		{[]string{"version", "extra"}, `unknown command "extra" for "ddbsync version"`, "Run 'ddbsync version --help' for usage."},
		{[]string{"version", "--log-format", "xml"}, `invalid argument "xml" for "--log-format" flag: "xml" is not one of text, json`, "Run 'ddbsync version --help' for usage."},
		{[]string{"version", "--log-level", "loud"}, `"loud" is not one of debug, info, warn, error`, ""},
		{[]string{"version", "--max-retries", "-1"}, "--max-retries is -1; allowed: 0 or more", ""},
		{[]string{"version", "--retry-delay-base", "0"}, "--retry-delay-base is 0s; allowed: a positive duration", ""},
		{[]string{"version", "--retry-delay-base", "soon"}, `"soon" is neither milliseconds nor a duration such as 250ms`, ""},
		{[]string{"version", "--progress-interval", "-1m"}, "--progress-interval is -1m0s; allowed: 0 (never)", ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := run(t, "", tc.args...)
			checkUsageError(t, r, tc.want)
			if tc.hint != "" && !strings.Contains(r.errOut, tc.hint) {
				t.Errorf("no usage hint %q:\n%s", tc.hint, r.errOut)
			}
		})
	}
}

func TestEnvironmentFillsFlags(t *testing.T) {
	t.Setenv("DDBSYNC_MAX_RETRIES", "7")
	t.Setenv("DDBSYNC_LOG_FORMAT", "json")
	t.Setenv("DDBSYNC_RETRY_DELAY_BASE", "250")
	t.Setenv("DDBSYNC_ENDPOINT_URL", "http://localhost:8000")
	t.Setenv("DDBSYNC_NO_STATUS", "true")
	r := run(t, "", "version")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.errOut)
	}
	g := r.f.Globals
	if g.MaxRetries != 7 || g.LogFormat != "json" || g.RetryDelayBase != 250*time.Millisecond || g.EndpointURL != "http://localhost:8000" || !g.NoStatus {
		t.Fatalf("globals from the environment: %+v", g)
	}
	// An empty variable is ignored.
	t.Setenv("DDBSYNC_PROGRESS_INTERVAL", "")
	if r := run(t, "", "version"); r.code != 0 || r.f.Globals.ProgressInterval != 20*time.Minute {
		t.Fatalf("empty DDBSYNC_PROGRESS_INTERVAL: exit %d, %s", r.code, r.f.Globals.ProgressInterval)
	}
	// A flag beats the environment.
	r = run(t, "", "version", "--max-retries", "2", "--log-format", "text")
	if r.f.Globals.MaxRetries != 2 || r.f.Globals.LogFormat != "text" {
		t.Fatalf("flags must beat the environment: %+v", r.f.Globals)
	}
}

func TestRetryDelayBaseMeansMilliseconds(t *testing.T) {
	for arg, want := range map[string]time.Duration{"250": 250 * time.Millisecond, "1.5s": 1500 * time.Millisecond, "75ms": 75 * time.Millisecond} {
		r := run(t, "", "version", "--retry-delay-base", arg)
		if r.code != 0 || r.f.Globals.RetryDelayBase != want {
			t.Errorf("--retry-delay-base %s: exit %d, %s; want %s", arg, r.code, r.f.Globals.RetryDelayBase, want)
		}
	}
	// And it reaches the retryer: the credentials provider gets it.
	r := run(t, "", "version", "--retry-delay-base", "250", "--max-retries", "4")
	var got creds.Options
	r.f.CredsOptions = func(o *creds.Options) { got = *o }
	if n := r.f.Creds(nil).Retryer().MaxAttempts(); n != 5 || got.RetryBase != 250*time.Millisecond {
		t.Errorf("attempts %d, retry base %s", n, got.RetryBase)
	}
}

func TestBadEnvironmentValues(t *testing.T) {
	for _, tc := range []struct{ env, val, want string }{
		{"DDBSYNC_MAX_RETRIES", "lots", `environment variable DDBSYNC_MAX_RETRIES="lots" is not a valid value for --max-retries: not a number`},
		{"DDBSYNC_LOG_FORMAT", "xml", `environment variable DDBSYNC_LOG_FORMAT="xml" is not a valid value for --log-format: "xml" is not one of text, json`},
		{"DDBSYNC_NO_STATUS", "perhaps", `environment variable DDBSYNC_NO_STATUS="perhaps" is not a valid value for --no-status: not true or false`},
		{"DDBSYNC_MAX_RETRIES", "-3", "DDBSYNC_MAX_RETRIES (environment) is -3; allowed: 0 or more"},
		{"DDBSYNC_RETRY_DELAY_BASE", "later", `environment variable DDBSYNC_RETRY_DELAY_BASE="later" is not a valid value for --retry-delay-base`},
	} {
		t.Run(tc.env+"="+tc.val, func(t *testing.T) {
			t.Setenv(tc.env, tc.val)
			checkUsageError(t, run(t, "", "version"), tc.want)
		})
	}
}

func TestHelpShowsExamples(t *testing.T) {
	r := run(t, "", "--help")
	if r.code != 0 || !strings.Contains(r.out, "Examples:\n  # Copy a table to another region") || !strings.Contains(r.out, "Exit status:") {
		t.Fatalf("root help (exit %d):\n%s", r.code, r.out)
	}
	for _, c := range NewCmdRoot(NewFactory(iostreams.System())).Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.Name() == "version" {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			if strings.Contains(c.Short, "being built") {
				t.Skipf("ddbsync %s is still a stub", c.Name())
			}
			r := run(t, "", c.Name(), "--help")
			if r.code != 0 || !strings.Contains(r.out, "Examples:\n  ") || !strings.Contains(r.out, "ddbsync "+c.Name()) {
				t.Errorf("ddbsync %s --help has no real examples (exit %d):\n%s", c.Name(), r.code, r.out)
			}
		})
	}
	for _, args := range [][]string{{"completion", "--help"}, {"version", "--help"}} {
		if r := run(t, "", args...); r.code != 0 || r.out == "" {
			t.Errorf("%v: exit %d", args, r.code)
		}
	}
}

func TestVersion(t *testing.T) {
	r := run(t, "", "version")
	platform := fmt.Sprintf("go:       %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if r.code != 0 || !strings.HasPrefix(r.out, "ddbsync dev\n") || !strings.HasSuffix(r.out, platform) || r.errOut != "" {
		t.Fatalf("exit %d out %q err %q; want ddbsync dev … %q", r.code, r.out, r.errOut, platform)
	}
	r = run(t, "", "--version")
	if r.code != 0 || !strings.HasPrefix(r.out, "ddbsync version dev") {
		t.Fatalf("--version: %q", r.out)
	}
}

func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	r := run(t, "", "completion", "bash")
	if r.code != 0 || !strings.Contains(r.out, "__start_ddbsync") {
		t.Fatalf("completion bash: exit %d\n%s", r.code, r.errOut)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "ddbsync.bash")
	if err := os.WriteFile(script, []byte(r.out), 0o600); err != nil {
		t.Fatal(err)
	}
	// The script asks `ddbsync __complete ...`: put this test binary on
	// PATH as ddbsync.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "ddbsync")); err != nil {
		t.Fatal(err)
	}
	// Cobra's script relies on the bash-completion package, as every
	// cobra program's does (docs/usage.md says so); without it installed,
	// stand in for its one function the script calls.
	bashCompletion := `_get_comp_words_by_ref() { cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }`
	for _, p := range []string{"/usr/share/bash-completion/bash_completion", "/etc/bash_completion"} {
		if _, err := os.Stat(p); err == nil {
			bashCompletion = fmt.Sprintf("source %q", p)
			break
		}
	}
	complete := func(line string) []string {
		t.Helper()
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, fmt.Sprintf("%q", w))
		}
		prog := fmt.Sprintf(`%s
source %q
complete -p ddbsync >/dev/null || { echo "no completion registered" >&2; exit 1; }
COMP_WORDS=(%s); COMP_CWORD=%d; COMP_LINE=%q; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
__start_ddbsync ddbsync "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%%s\n' "${COMPREPLY[@]}"`, bashCompletion, script, strings.Join(quoted, " "), len(words)-1, line)
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
		cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), cliEnv+"=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, stderr.String())
		}
		return strings.Fields(string(out))
	}
	got := complete("ddbsync ")
	for _, want := range []string{"backfill", "stream", "sync", "diff", "version", "completion"} {
		if !contains(got, want) {
			t.Errorf("completing subcommands: %q lacks %q", got, want)
		}
	}
	if got := complete("ddbsync ba"); len(got) != 1 || got[0] != "backfill" {
		t.Errorf("completing \"ba\": %q", got)
	}
	if got := complete("ddbsync version --log-format "); !contains(got, "json") || !contains(got, "text") {
		t.Errorf("completing --log-format: %q", got)
	}
}

// fakeAWS fails every request with an error naming nothing secret, like
// a real endpoint rejecting the credentials.
type fakeAWS struct{}

func (fakeAWS) Do(req *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, req.Body)
	rec := httptest.NewRecorder()
	if req.Header.Get("X-Amz-Target") == "" {
		rec.Header().Set("Content-Type", "text/xml")
		rec.WriteHeader(http.StatusForbidden)
		io.WriteString(rec, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
	} else {
		rec.Header().Set("Content-Type", "application/x-amz-json-1.0")
		rec.WriteHeader(http.StatusBadRequest)
		io.WriteString(rec, `{"__type":"com.amazonaws.dynamodb.v20120810#UnrecognizedClientException","message":"The security token included in the request is invalid."}`)
	}
	res := rec.Result()
	res.Request = req
	return res, nil
}

// recordSTS answers AssumeRole with credentials and records the form.
type recordSTS struct {
	fakeAWS
	forms []string
}

func (r *recordSTS) Do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") != "" {
		return r.fakeAWS.Do(req)
	}
	body, _ := io.ReadAll(req.Body)
	r.forms = append(r.forms, string(body))
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "text/xml")
	io.WriteString(rec, `<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>`)
	res := rec.Result()
	res.Request = req
	return res, nil
}

// --mfa-token (or DDBSYNC_MFA_TOKEN) reaches AssumeRole for the commands
// with plan flags.
func TestMFATokenFlagReachesSTS(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CA_BUNDLE", "")
	os.Unsetenv("AWS_CA_BUNDLE")
	planFile := writePlan(t, "plan:\n  - input: {table: aaa, region: us-east-1, role_arn: 'arn:aws:iam::1:role/r', mfa_serial: 'arn:aws:iam::1:mfa/m'}\n    output: {table: bbb}\n")
	for _, cmdName := range []string{"backfill", "stream", "sync"} {
		for _, viaEnv := range []bool{false, true} {
			args := []string{cmdName, "--config-file", planFile, "--max-retries", "0", "--no-status"}
			if viaEnv {
				t.Setenv("DDBSYNC_MFA_TOKEN", "246802")
			} else {
				args = append(args, "--mfa-token", "246802")
			}
			ios, _, _, errOut := iostreams.Test()
			f := NewFactory(ios)
			f.StartStatus = nil
			f.Globals.StateDir = filepath.Join(t.TempDir(), "state")
			fake := &recordSTS{}
			f.CredsOptions = func(o *creds.Options) { o.HTTPClient = fake; o.STSEndpointURL = "http://sts.test" }
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			code := Run(ctx, f, args)
			cancel()
			if len(fake.forms) == 0 || !strings.Contains(fake.forms[0], "TokenCode=246802") || !strings.Contains(fake.forms[0], "SerialNumber=arn%3Aaws%3Aiam%3A%3A1%3Amfa%2Fm") {
				t.Errorf("%v (env %v): exit %d, AssumeRole forms %q\n%s", args, viaEnv, code, fake.forms, errOut)
			}
			os.Unsetenv("DDBSYNC_MFA_TOKEN")
		}
	}
}

// TestNoCredentialLeaks runs command lines, failing ones included, with
// recognisable credentials in the environment and on the command line,
// and checks that none of them appears on stdout or stderr.
func TestNoCredentialLeaks(t *testing.T) {
	secrets := map[string]string{
		"AWS_ACCESS_KEY_ID":     "AKIDLEAKCHECKCLIKEY01",
		"AWS_SECRET_ACCESS_KEY": "leakCheckCliSecretAccessKey000000000001",
		"AWS_SESSION_TOKEN":     "leakCheckCliSessionToken000000000001",
	}
	const mfa = "739164"
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CA_BUNDLE", "")
	os.Unsetenv("AWS_CA_BUNDLE")
	t.Setenv("AWS_PROFILE", "")
	os.Unsetenv("AWS_PROFILE")
	plan := writePlan(t, "plan:\n  - input: {table: aaa, region: us-east-1, role_arn: 'arn:aws:iam::1:role/r', mfa_serial: 'arn:aws:iam::1:mfa/m'}\n    output: {table: bbb}\n")
	lines := [][]string{
		{"version", "--log-level", "debug"},
		{"--help"},
		{"version", "--max-retries", "nope"},
		{"diff", "-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--role-arn", "arn:aws:iam::1:role/r", "--mfa-serial", "arn:aws:iam::1:mfa/m", "--mfa-token", mfa, "--max-retries", "0", "--log-level", "debug", "--no-status"},
		{"diff", "-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--mfa-token", mfa},
		{"diff", "-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--role-arn", "arn:aws:iam::1:role/r", "--mfa-serial", "arn:aws:iam::1:mfa/m", "--mfa-token", "12" + mfa, "--no-status"},
		{"diff", "--config-file", plan, "--log-format", "json", "--max-retries", "0", "--no-status"},
		{"backfill", "--config-file", plan, "--max-retries", "0", "--no-status"},
		{"sync", "--config-file", plan, "--max-retries", "0", "--no-status"},
		{"stream", "--config-file", plan, "--max-retries", "0", "--no-status"},
	}
	for i, args := range append(lines, []string{"diff", "-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--no-status"}, lines[len(lines)-3]) {
		if i == len(lines) {
			// A code from the environment is not repeated either.
			t.Setenv("DDBSYNC_MFA_TOKEN", "x"+mfa)
		}
		ios, in, out, errOut := iostreams.Test()
		in.WriteString(mfa + "\n")
		if i == len(lines)+1 {
			// On a terminal: the code is asked for on stderr, read from stdin.
			ios.SetTTY(true, true, true)
		}
		f := NewFactory(ios)
		f.StartStatus = nil
		f.Globals.StateDir = filepath.Join(t.TempDir(), "state")
		f.CredsOptions = func(o *creds.Options) {
			o.HTTPClient = fakeAWS{}
			o.STSEndpointURL = "http://sts.test"
			o.RetryBase, o.MaxBackoff = time.Microsecond, time.Microsecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		code := Run(ctx, f, args)
		cancel()
		all := out.String() + errOut.String()
		for name, v := range secrets {
			if strings.Contains(all, v) {
				t.Errorf("%v: output contains %s:\n%s", args, name, all)
			}
		}
		if strings.Contains(all, mfa) {
			t.Errorf("%v: output contains the MFA code:\n%s", args, all)
		}
		t.Logf("%v: exit %d:\n%s", args, code, all)
	}
}
