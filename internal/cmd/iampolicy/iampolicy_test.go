package iampolicy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	iampolicycmd "github.com/ddbsync/ddbsync/internal/cmd/iampolicy"
	"github.com/ddbsync/ddbsync/internal/cmd/root"
	"github.com/ddbsync/ddbsync/internal/cmdtest"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/pkg/creds"
)

// isolate keeps the machine's AWS configuration out of the tests.
func isolate(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "credentials"))
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-never-printed")
	t.Setenv("AWS_REGION", "ap-southeast-2")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Unsetenv("AWS_PROFILE")
	os.Unsetenv("AWS_SESSION_TOKEN")
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DDBSYNC_") {
			k, _, _ := strings.Cut(kv, "=")
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

type policy struct {
	Version   string
	Statement []struct {
		Sid      string
		Effect   string
		Action   []string
		Resource []string
	}
}

// run runs ddbsync with args and returns the exit code, stdout and stderr.
func run(t *testing.T, stdin string, sts *stsStub, args ...string) (int, string, string) {
	t.Helper()
	f := cmdtest.NewFactory(t, stdin)
	f.CredsOptions = func(o *creds.Options) {
		if sts != nil {
			o.APIOptions = append(o.APIOptions, sts.middleware)
		}
	}
	r := cmdtest.Run(t, f, args...)
	return r.Code, r.Stdout, r.Stderr
}

func parse(t *testing.T, out string) map[string][2][]string {
	t.Helper()
	var p policy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("stdout is not a JSON policy: %v\n%s", err, out)
	}
	if p.Version != "2012-10-17" {
		t.Errorf("Version %q", p.Version)
	}
	m := map[string][2][]string{}
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: Effect %q", s.Sid, s.Effect)
		}
		m[s.Sid] = [2][]string{s.Action, s.Resource}
	}
	return m
}

func TestPolicyFromFlags(t *testing.T) {
	isolate(t)
	code, out, errOut := run(t, "", nil, "iam-policy", "backfill",
		"--input-table", "orders", "--input-region", "us-east-1", "--output-region", "eu-west-1",
		"--create-output-table", "--skip-expired", "--account-id", "123456789012")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := parse(t, out)
	want := map[string][2][]string{
		"InputTables":  {{"dynamodb:DescribeContinuousBackups", "dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive", "dynamodb:ListTagsOfResource", "dynamodb:Scan"}, {"arn:aws:dynamodb:us-east-1:123456789012:table/orders"}},
		"OutputTables": {{"dynamodb:BatchWriteItem", "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:TagResource", "dynamodb:UpdateContinuousBackups", "dynamodb:UpdateTimeToLive"}, {"arn:aws:dynamodb:eu-west-1:123456789012:table/orders"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if errOut != "" {
		t.Errorf("stderr: %q", errOut)
	}
}

func TestPolicyEveryCommand(t *testing.T) {
	isolate(t)
	tables := []string{"--input-table", "orders", "--input-region", "us-east-1", "--output-table", "orders2", "--account-id", "123456789012"}
	for _, tc := range []struct {
		args    []string
		actions map[string][]string // Sid → actions
	}{
		{append([]string{"stream"}, tables...), map[string][]string{
			"InputTables":  {"dynamodb:DescribeTable", "dynamodb:GetItem"},
			"InputStreams": {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"},
			"OutputTables": {"dynamodb:BatchWriteItem", "dynamodb:DescribeTable"},
		}},
		{append([]string{"stream", "--stream-view-type", "NEW_IMAGE"}, tables...), map[string][]string{
			"InputTables":  {"dynamodb:DescribeTable"},
			"InputStreams": {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"},
			"OutputTables": {"dynamodb:BatchWriteItem", "dynamodb:DescribeTable"},
		}},
		{append([]string{"sync", "--stream-view-type", "NEW_AND_OLD_IMAGES"}, tables...), map[string][]string{
			"InputTables":  {"dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:Scan"},
			"InputStreams": {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"},
			"OutputTables": {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:Scan"},
		}},
		{append([]string{"sync", "--stream=false", "--create-output-table"}, tables...), map[string][]string{
			"InputTables":  {"dynamodb:DescribeContinuousBackups", "dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive", "dynamodb:ListTagsOfResource", "dynamodb:Scan"},
			"OutputTables": {"dynamodb:BatchWriteItem", "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:TagResource", "dynamodb:UpdateContinuousBackups", "dynamodb:UpdateTimeToLive"},
		}},
		{[]string{"diff", "-m", "us-east-1:orders", "-s", "eu-west-1:orders", "-s", "us-west-2:orders", "--account-id", "123456789012"}, map[string][]string{
			"MasterTables": {"dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:Scan"},
			"SlavesTables": {"dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:Scan"},
		}},
		{[]string{"diff", "-m", "us-east-1:orders", "-s", "eu-west-1:orders", "--write-missing", "--delete-extra", "--account-id", "123456789012"}, map[string][]string{
			"MasterTables": {"dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:Scan"},
			"SlavesTables": {"dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:Scan"},
		}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, "", nil, append([]string{"iam-policy"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			got := map[string][]string{}
			for sid, v := range parse(t, out) {
				got[sid] = v[0]
			}
			if !reflect.DeepEqual(got, tc.actions) {
				t.Errorf("got %v\nwant %v", got, tc.actions)
			}
		})
	}
	// The diff slaves' resources.
	_, out, _ := run(t, "", nil, "iam-policy", "diff", "-m", "us-east-1:orders", "-s", "eu-west-1:orders", "-s", "us-west-2:orders", "--account-id", "123456789012")
	if got := parse(t, out)["SlavesTables"][1]; !reflect.DeepEqual(got, []string{
		"arn:aws:dynamodb:eu-west-1:123456789012:table/orders", "arn:aws:dynamodb:us-west-2:123456789012:table/orders"}) {
		t.Errorf("slave resources %v", got)
	}
}

// A plan file with a checkpoint table and roles; the account of tables
// without a role comes from STS, once per set of credentials.
func TestPolicyFromPlanWithSTS(t *testing.T) {
	isolate(t)
	planYAML := `
checkpoint_table:
  table: ddbsync-checkpoints
plan:
  - input: {table: orders, region: us-east-1}
    output: {table: orders, region: eu-west-1, role_arn: "arn:aws:iam::999988887777:role/writer"}
  - input: {table: users}
    output: {table: users-copy}
    stream: {disabled: true}
`
	stub := &stsStub{account: "111122223333"}
	code, out, errOut := run(t, planYAML, stub, "iam-policy", "sync", "--config-file", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := parse(t, out)
	want := map[string][2][]string{
		"InputTables":     {{"dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:Scan"}, {"arn:aws:dynamodb:us-east-1:111122223333:table/orders"}},
		"InputTables2":    {{"dynamodb:DescribeTable", "dynamodb:Scan"}, {"arn:aws:dynamodb:ap-southeast-2:111122223333:table/users"}},
		"InputStreams":    {{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}, {"arn:aws:dynamodb:us-east-1:111122223333:table/orders/stream/*"}},
		"OutputTables":    {{"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:Scan"}, {"arn:aws:dynamodb:eu-west-1:999988887777:table/orders"}},
		"OutputTables2":   {{"dynamodb:BatchWriteItem", "dynamodb:DescribeTable"}, {"arn:aws:dynamodb:ap-southeast-2:111122223333:table/users-copy"}},
		"CheckpointTable": {{"dynamodb:CreateTable", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem"}, {"arn:aws:dynamodb:ap-southeast-2:111122223333:table/ddbsync-checkpoints"}},
		"AssumeRoles":     {{"sts:AssumeRole"}, {"arn:aws:iam::999988887777:role/writer"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	// us-east-1 and ap-southeast-2 (the default region) are two client
	// sets: two calls; the role's account needs none.
	if stub.calls != 2 {
		t.Errorf("%d GetCallerIdentity calls, want 2", stub.calls)
	}
	if strings.Contains(out+errOut, "secret-never-printed") {
		t.Error("a credential was printed")
	}
}

func TestSTSFailureNamesTheWayOut(t *testing.T) {
	isolate(t)
	stub := &stsStub{fail: true}
	code, out, errOut := run(t, "", stub, "iam-policy", "stream", "--input-table", "orders", "--output-table", "orders2")
	if code != cmdutil.ExitRuntime || out != "" {
		t.Fatalf("exit %d, stdout %q; want 3 and nothing on stdout", code, out)
	}
	if !strings.Contains(errOut, "GetCallerIdentity") || !strings.Contains(errOut, "--account-id") {
		t.Errorf("error does not say what failed and what to do: %s", errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	isolate(t)
	tables := []string{"--input-table", "orders", "--output-table", "orders2", "--account-id", "123456789012"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "name the command the policy is for: one of backfill, stream, sync, diff"},
		{[]string{"copy"}, `"copy" has no policy; allowed: backfill, stream, sync, diff`},
		{append([]string{"backfill", "--delete-extra"}, tables...), "--delete-extra does not apply to `iam-policy backfill`"},
		{append([]string{"backfill", "--stream-view-type", "NEW_IMAGE"}, tables...), "--stream-view-type does not apply"},
		{append([]string{"stream", "--stream-view-type", "ALL"}, tables...), `--stream-view-type "ALL": allowed: NEW_AND_OLD_IMAGES, NEW_IMAGE, OLD_IMAGE, KEYS_ONLY`},
		{[]string{"backfill", "--input-table", "orders", "--output-table", "o2", "--account-id", "12345"}, `--account-id "12345" is not an AWS account ID`},
		{[]string{"diff", "--input-table", "orders"}, "--input-table does not apply to `iam-policy diff`"},
		{[]string{"diff", "-m", "us-east-1:orders", "--account-id", "123456789012"}, "give at least one slave table"},
		{[]string{"diff", "-m", "orders", "-s", "eu-west-1:orders"}, `--master "orders": expected REGION:TABLE`},
		{[]string{"diff", "-c", "plan.yml", "-m", "us-east-1:orders"}, "--config-file and --master cannot be used together"},
		{[]string{"backfill"}, "give a plan with --config-file"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, "", nil, append([]string{"iam-policy"}, tc.args...)...)
			if code != cmdutil.ExitUsage {
				t.Errorf("exit %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q lacks %q", errOut, tc.want)
			}
		})
	}
}

// Flags map onto Options (runF, no run).
func TestFlagsToOptions(t *testing.T) {
	isolate(t)
	ios, _, _, _ := iostreams.Test()
	f := root.NewFactory(ios)
	var got *iampolicycmd.Options
	cmd := iampolicycmd.NewCmdIAMPolicy(f, func(o *iampolicycmd.Options) error { got = o; return nil })
	cmd.SetArgs([]string{"diff", "-m", "us-east-1:orders", "-s", "eu-west-1:orders", "--slave-role-arn", "arn:aws:iam::999988887777:role/r",
		"--write-differing", "--scan-for-extra", "--account-id", "123456789012"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Command != "diff" || !got.Flags.WriteDiffering || !got.Flags.ScanForExtra || got.Flags.WriteMissing || got.AccountID != "123456789012" {
		t.Errorf("options %+v", got)
	}
	if len(got.Plan.Entries) != 1 || got.Plan.Entries[0].Output.RoleARN != "arn:aws:iam::999988887777:role/r" || got.Plan.Entries[0].Input.RoleARN != "" {
		t.Errorf("plan %+v", got.Plan.Entries)
	}
	names := append([]string(nil), cmd.ValidArgs...)
	sort.Strings(names)
	if strings.Join(names, ",") != "backfill,diff,stream,sync" {
		t.Errorf("ValidArgs %v", names)
	}
}

// stsStub answers GetCallerIdentity without a network request.
type stsStub struct {
	account string
	fail    bool
	calls   int
}

func (s *stsStub) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("stsStub",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if _, ok := in.Parameters.(*sts.GetCallerIdentityInput); !ok {
				return next.HandleInitialize(ctx, in)
			}
			s.calls++
			if s.fail {
				return middleware.InitializeOutput{}, middleware.Metadata{}, &stubError{}
			}
			return middleware.InitializeOutput{Result: &sts.GetCallerIdentityOutput{Account: aws.String(s.account)}}, middleware.Metadata{}, nil
		}), middleware.Before)
}

type stubError struct{}

func (*stubError) Error() string { return "no valid credential sources found" }

func TestPolicyWithCheckpointTableFlag(t *testing.T) {
	isolate(t)
	code, out, errOut := run(t, "", nil, "iam-policy", "stream",
		"--input-table", "orders", "--input-region", "us-east-1", "--output-table", "orders-copy",
		"--stream-view-type", "NEW_IMAGE", "--checkpoint-table", "ddbsync-ckpt", "--account-id", "123456789012")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := parse(t, out)["CheckpointTable"]
	want := [2][]string{{"dynamodb:CreateTable", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem"},
		{"arn:aws:dynamodb:us-east-1:123456789012:table/ddbsync-ckpt"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CheckpointTable statement = %v, want %v", got, want)
	}
	// diff keeps no checkpoints: the flag is refused there.
	code, _, errOut = run(t, "", nil, "iam-policy", "diff", "-m", "us-east-1:orders", "-s", "us-east-1:orders-copy",
		"--checkpoint-table", "ddbsync-ckpt", "--account-id", "123456789012")
	if code != 2 || !strings.Contains(errOut, "--checkpoint-table does not apply") {
		t.Errorf("diff with --checkpoint-table: exit %d, stderr %q", code, errOut)
	}
}

func TestPolicyNotesTheOldImagesOfATransform(t *testing.T) {
	isolate(t)
	tr := filepath.Join(t.TempDir(), "t.yml")
	if err := os.WriteFile(tr, []byte("set:\n  id: item.email\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"iam-policy", "sync", "--input-table", "orders", "--input-region", "us-east-1", "--output-table", "users",
		"--account-id", "123456789012", "--transform", tr}
	code, out, errOut := run(t, "", nil, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, plain, _ := run(t, "", nil, args[:len(args)-2]...)
	if out != plain {
		t.Errorf("the policy changed with a transform:\n%s\nwithout:\n%s", out, plain)
	}
	if !strings.Contains(errOut, "[orders] ⇨ [users] has a transform") || !strings.Contains(errOut, "NEW_AND_OLD_IMAGES or OLD_IMAGE") {
		t.Errorf("stderr lacks the old-image note: %q", errOut)
	}
	// A stream known to carry old images needs no note.
	_, _, errOut = run(t, "", nil, append(args, "--stream-view-type", "NEW_AND_OLD_IMAGES")...)
	if errOut != "" {
		t.Errorf("stderr with old images: %q", errOut)
	}
}

// --filter, --transform and --skip-failed-items are accepted by the
// backfill, stream and sync forms (the run's flags as they are), change
// no permission, and are compiled like the run's (a bad expression is
// exit 2); a filter alone needs no note. diff refuses them, saying they
// change nothing there. --skip-failed-items is hidden from the help.
func TestPolicyAcceptsTheProgramFlags(t *testing.T) {
	isolate(t)
	tr := filepath.Join(t.TempDir(), "t.yml")
	if err := os.WriteFile(tr, []byte("drop: [\"tmp*\"]\nrename:\n  qty: quantity\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, command := range []string{"backfill", "stream", "sync"} {
		base := []string{"iam-policy", command, "--input-table", "orders", "--input-region", "us-east-1", "--output-table", "orders-v2",
			"--account-id", "123456789012"}
		code, plain, errOut := run(t, "", nil, base...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", command, code, errOut)
		}
		code, out, errOut := run(t, "", nil, append(base, "--filter", `item.tenant == "acme"`, "--skip-failed-items")...)
		if code != 0 || out != plain || errOut != "" {
			t.Errorf("%s with a filter: exit %d, stderr %q; policy changed: %v", command, code, errOut, out != plain)
		}
		code, out, errOut = run(t, "", nil, append(base, "--filter", `item.tenant == "acme"`, "--transform", tr, "--skip-failed-items")...)
		noted := strings.Contains(errOut, "has a transform")
		if code != 0 || out != plain || noted != (command != "backfill") {
			t.Errorf("%s with a transform: exit %d, policy changed: %v, stderr %q", command, code, out != plain, errOut)
		}
		code, _, errOut = run(t, "", nil, append(base, "--filter", "item.tenant ==")...)
		if code != 2 || !strings.Contains(errOut, "filter 1:") {
			t.Errorf("%s with a bad filter: exit %d, stderr %q", command, code, errOut)
		}
	}
	code, _, errOut := run(t, "", nil, "iam-policy", "diff", "-m", "us-east-1:orders", "-s", "us-east-1:orders-v2",
		"--account-id", "123456789012", "--filter", "has(item.x)")
	if code != 2 || !strings.Contains(errOut, "--filter does not change the policy of a diff") {
		t.Errorf("diff with --filter: exit %d, stderr %q", code, errOut)
	}
	_, help, _ := run(t, "", nil, "iam-policy", "--help")
	if regexp.MustCompile(`\n\s+--skip-failed-items\s`).MatchString(help) || !strings.Contains(help, "it changes no permission") {
		t.Errorf("help shows --skip-failed-items or lacks what --filter does here:\n%s", help)
	}
}
