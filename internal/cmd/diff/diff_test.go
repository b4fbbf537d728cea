package diff_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	diffcmd "github.com/ddbsync/ddbsync/internal/cmd/diff"
	"github.com/ddbsync/ddbsync/internal/cmd/root"
	"github.com/ddbsync/ddbsync/internal/cmdtest"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/iostreams"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// Flags map to Options.
func TestFlagsToOptions(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := root.NewFactory(ios)
	var got *diffcmd.Options
	cmd := diffcmd.NewCmdDiff(f, func(o *diffcmd.Options) error { got = o; return nil })
	cmd.SetArgs([]string{"-m", "us-east-1:orders", "-s", "eu-west-1:orders", "--slave", "ap-south-1:orders",
		"--write-missing", "--delete-extra", "--ignore", "aws:rep:*", "--ignore-att", "ts", "--parallel", "8",
		"--scan-limit", "500", "--batch-read-limit", "100", "--version-attribute", "ver", "-v", "--report", "r.jsonl",
		"--output", "json", "--slave-profile", "replica", "--method", "lookup", "--memory-limit", "1GiB"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Master != "us-east-1:orders" || fmt.Sprint(got.Slaves) != "[eu-west-1:orders ap-south-1:orders]" ||
		!got.WriteMissing || got.WriteDiffering || !got.DeleteExtra || fmt.Sprint(got.Ignore) != "[aws:rep:* ts]" ||
		got.Parallel != 8 || got.ScanLimit != 500 || got.BatchReadLimit != 100 || got.VersionAttribute != "ver" ||
		!got.Verbose || got.Report != "r.jsonl" || got.Output != "json" || got.SlaveProfile != "replica" ||
		got.Method != "lookup" || got.MemoryLimit != "1GiB" {
		t.Fatalf("options: %+v", got)
	}
}

// methodEnv names the --method the suite's runs pass; without it they
// pass none (the method is chosen: merge for tables of the same size).
// TestSuiteWithLookupMethod runs the suite again with --method lookup.
const methodEnv = "DDBSYNC_TEST_DIFF_METHOD"

// Every test of this package again, with --method lookup.
func TestSuiteWithLookupMethod(t *testing.T) {
	if os.Getenv(methodEnv) != "" {
		t.Skip("this is the run with " + os.Getenv(methodEnv))
	}
	if testing.Short() {
		t.Skip("the suite runs once in -short mode")
	}
	ddbtest.Endpoint(t) // skips without DynamoDB Local
	args := []string{"-test.count=1"}
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.run") || strings.HasPrefix(a, "-test.v") || strings.HasPrefix(a, "-test.timeout") {
			args = append(args, a)
		}
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), methodEnv+"=lookup")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("PASS")) {
		t.Fatalf("the suite with --method lookup failed (%v):\n%s", err, out)
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	if m := os.Getenv(methodEnv); m != "" {
		args = append(args, "--method", m)
	}
	r := cmdtest.Run(t, cmdtest.NewFactory(t, ""), append([]string{"diff", "--no-status"}, args...)...)
	return r.Code, r.Stdout, r.Stderr
}

// Bad usage: exit 2 with a message saying what is wrong, before any AWS
// call (there is no endpoint: a call would fail with exit 3).
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	twoMasters := filepath.Join(dir, "plan.yml")
	os.WriteFile(twoMasters, []byte("plan:\n- input: {table: aaa, region: us-east-1}\n  output: {table: bbb, region: us-east-1}\n- input: {table: ccc, region: us-east-1}\n  output: {table: ddd, region: us-east-1}\n"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-s", "us-east-1:b"}, "--master"},
		{[]string{"-m", "us-east-1:aaa"}, "--slave"},
		{[]string{"-m", "orders", "-s", "us-east-1:b"}, "expected REGION:TABLE"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--batch-read-limit", "101"}, "allowed: 1 to 100"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--batch-read-limit", "0"}, "allowed: 1 to 100"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--parallel", "0"}, "--parallel"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--output", "yaml"}, "not one of text, json"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--starting-key", "{bad"}, "--starting-key"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--starting-key", `{"pk":{"S":"a"}}`, "--parallel", "4"}, "serial scan"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--ignore", "[x"}, "not a valid glob"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--memory-limit", "lots"}, "--memory-limit"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--memory-limit", "100KiB"}, "at least 1MiB"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:aaa"}, "same table"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "-s", "us-east-1:bbb"}, "given twice"},
		{[]string{"-m", "us-east-1:aaa", "-s", "us-east-1:bbb", "--mfa-token", "123456"}, "--mfa-serial"},
		{[]string{"--config-file", twoMasters, "-m", "us-east-1:aaa"}, "cannot be used together"},
		{[]string{"--config-file", twoMasters}, "same input"},
		{[]string{"--config-file", filepath.Join(dir, "none.yml")}, "cannot read plan file"},
		{[]string{"-m", "us-east-1:a!", "-s", "us-east-1:bbb"}, "not a valid DynamoDB table name"},
	}
	for _, tc := range cases {
		code, out, errOut := runCLI(t, tc.args...)
		if code != cmdutil.ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", tc.args, out)
		}
	}
}

type av = types.AttributeValue

func item(pk, v string) map[string]av {
	return map[string]av{"pk": &types.AttributeValueMemberS{Value: pk}, "v": &types.AttributeValueMemberN{Value: v}}
}

// Exit codes 0, 1, 2 and the --output json contract, against DynamoDB
// Local.
func TestRunExitCodesAndJSON(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	ep := ddbtest.Endpoint(t)
	m, sl := ddbtest.Name(t, "cli-m"), ddbtest.Name(t, "cli-s")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sl, ddbtest.StringKey)
	var mi, si []map[string]av
	for i := range 100 {
		mi = append(mi, item(fmt.Sprintf("k%03d", i), fmt.Sprint(i)))
		switch {
		case i < 3: // missing
		case i < 5:
			si = append(si, item(fmt.Sprintf("k%03d", i), "-1")) // differing
		default:
			si = append(si, item(fmt.Sprintf("k%03d", i), fmt.Sprint(i)))
		}
	}
	si = append(si, item("extra", "1"))
	ddbtest.PutItems(t, c, m, mi)
	ddbtest.PutItems(t, c, sl, si)
	base := []string{"--endpoint-url", ep, "-m", "us-east-1:" + m, "-s", "us-east-1:" + sl}
	dir := t.TempDir()
	report := filepath.Join(dir, "report.jsonl")

	// Dry run with differences: exit 1, JSON on stdout, logs on stderr.
	code, out, errOut := runCLI(t, append(base, "--scan-for-extra", "--output", "json", "--report", report, "-v")...)
	if code != cmdutil.ExitDifferences {
		t.Fatalf("dry run: exit %d, want 1; stderr:\n%s", code, errOut)
	}
	var top map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&top); err != nil || dec.More() {
		t.Fatalf("stdout is not one JSON object (%v):\n%s", err, out)
	}
	if keys := sortedKeys(top); keys != "duration_seconds,master,slaves" {
		t.Fatalf("JSON keys = %s", keys)
	}
	var sum struct {
		Master          string                       `json:"master"`
		Slaves          []map[string]json.RawMessage `json:"slaves"`
		DurationSeconds float64                      `json:"duration_seconds"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Master != "us-east-1:"+m || len(sum.Slaves) != 1 || sum.DurationSeconds <= 0 {
		t.Fatalf("summary: %s", out)
	}
	if keys := sortedKeys(sum.Slaves[0]); keys != "candidates_resolved,consumed_rcu,consumed_wcu,deleted,differing,errors,extra,failed,filtered_out,matching,method,missing,scanned,skipped,slave,written" {
		t.Fatalf("slave keys = %s", keys)
	}
	wantMethod := `"merge"`
	if m := os.Getenv(methodEnv); m != "" {
		wantMethod = `"` + m + `"`
	}
	if string(sum.Slaves[0]["method"]) != wantMethod || string(sum.Slaves[0]["consumed_rcu"]) == "0" {
		t.Fatalf("method %s (want %s), consumed_rcu %s", sum.Slaves[0]["method"], wantMethod, sum.Slaves[0]["consumed_rcu"])
	}
	want := map[string]string{"slave": `"us-east-1:` + sl + `"`, "scanned": "100", "matching": "95", "missing": "3", "differing": "2", "extra": "1", "written": "0", "deleted": "0", "skipped": "0", "errors": "0", "failed": "0", "filtered_out": "0"}
	for k, v := range want {
		if string(sum.Slaves[0][k]) != v {
			t.Fatalf("%s = %s, want %s", k, sum.Slaves[0][k], v)
		}
	}
	if !strings.Contains(errOut, "+ {\"pk\":\"k000\"} missing") || !strings.Contains(errOut, "summary: scanned 100") {
		t.Fatalf("stderr lacks the verbose lines or the summary:\n%s", errOut)
	}
	rep, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(rep)), "\n")
	if len(lines) != 6 {
		t.Fatalf("report has %d lines, want 6:\n%s", len(lines), rep)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil || line["slave"] != "us-east-1:"+sl || line["kind"] == nil || line["key"] == nil {
		t.Fatalf("report line %s (%v)", lines[0], err)
	}

	// Repair everything: exit 0, text output on stdout.
	code, out, errOut = runCLI(t, append(base, "--write-missing", "--write-differing", "--delete-extra")...)
	if code != cmdutil.ExitOK {
		t.Fatalf("repair: exit %d, want 0; stderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "written 5, deleted 1") {
		t.Fatalf("summary line missing from stdout:\n%s", out)
	}
	if !regexp.MustCompile(`WCU; \d+ retries \(\d+ throttled\)`).MatchString(out) {
		t.Fatalf("summary line lacks the retries:\n%s", out)
	}
	// In sync now: exit 0.
	if code, out, errOut = runCLI(t, append(base, "--scan-for-extra")...); code != cmdutil.ExitOK || !strings.Contains(out, "matching 100, missing 0, differing 0, extra 0") {
		t.Fatalf("second dry run: exit %d\n%s%s", code, out, errOut)
	}

	// A missing table: exit 2, and the report file is not created.
	report2 := filepath.Join(dir, "never.jsonl")
	code, _, errOut = runCLI(t, "--endpoint-url", ep, "-m", "us-east-1:"+m, "-s", "us-east-1:no-such-table", "--report", report2, "--write-missing")
	if code != cmdutil.ExitUsage || !strings.Contains(errOut, "no-such-table does not exist") {
		t.Fatalf("missing table: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(report2); !os.IsNotExist(err) {
		t.Fatalf("report file created for a usage error: %v", err)
	}
}

func sortedKeys[V any](m map[string]V) string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}
