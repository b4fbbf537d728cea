package backfill_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/benchutil"
	backfillcmd "github.com/ddbsync/ddbsync/internal/cmd/backfill"
	"github.com/ddbsync/ddbsync/internal/cmdtest"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/status"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

func TestFlagsToOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		wantErr string
		check   func(t *testing.T, o *backfillcmd.Options)
	}{
		{
			name: "table flags",
			args: "--input-table src --output-table dst --create-output-table --skip-expired --backfill-total-segments 8 --backfill-segments 1,3 --max-wcu 100 --max-rcu 50",
			check: func(t *testing.T, o *backfillcmd.Options) {
				if !o.CreateOutputTable || !o.SkipExpired {
					t.Errorf("flags not set: %+v", o)
				}
				e := o.Plan.Entries[0]
				if e.Input.Table != "src" || e.Output.Table != "dst" || e.Backfill.TotalSegments != 8 ||
					e.Backfill.Segments != "1,3" || e.Backfill.MaxWCU != 100 || e.Backfill.MaxRCU != 50 || !e.Stream.Disabled {
					t.Errorf("entry %+v", e)
				}
			},
		},
		{
			name: "output defaults to the input's name",
			args: "--input-table src --input-region us-east-1 --output-region eu-west-1",
			check: func(t *testing.T, o *backfillcmd.Options) {
				if e := o.Plan.Entries[0]; e.Output.Table != "src" || e.Output.Region != "eu-west-1" {
					t.Errorf("entry %+v", e)
				}
			},
		},
		{
			name: "checkpoint table and scan limit",
			args: "--input-table src --output-table dst --checkpoint-table ckpt --scan-limit 100",
			check: func(t *testing.T, o *backfillcmd.Options) {
				if o.Plan.CheckpointTable == nil || o.Plan.CheckpointTable.Table != "ckpt" || o.ScanLimit != 100 {
					t.Errorf("checkpoint table %+v, scan limit %d", o.Plan.CheckpointTable, o.ScanLimit)
				}
			},
		},
		{name: "scan limit negative", args: "--input-table src --output-table dst --scan-limit -1", wantErr: "--scan-limit is -1; allowed: 0"},
		{name: "lease duration too long", args: "--input-table src --output-table dst --lease-duration 1h", wantErr: "--lease-duration 1h0m0s is out of range"},
		{name: "segments without a total", args: "--input-table src --output-table dst --backfill-segments 1", wantErr: "without backfill.total_segments"},
		{name: "segment out of range", args: "--input-table src --output-table dst --backfill-total-segments 2 --backfill-segments 2", wantErr: "out of range"},
		{name: "no table", args: "", wantErr: "--input-table"},
		{name: "negative budget", args: "--input-table src --output-table dst --max-wcu -1", wantErr: "max_wcu"},
		{name: "arguments", args: "--input-table src --output-table dst extra", wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdtest.Expect(t, backfillcmd.NewCmdBackfill, tt.args, tt.wantErr, tt.check)
		})
	}
}

// cli runs a ddbsync command line against DynamoDB Local.
type cli struct {
	t        *testing.T
	stateDir string
	status   func(ctx context.Context, reg *stats.Registry)
}

func (c *cli) run(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	f := cmdtest.NewFactory(c.t, "")
	f.StartStatus = func(ctx context.Context, _ status.Env, reg *stats.Registry, kind string) func() {
		if kind != "backfill" {
			c.t.Errorf("status kind %q", kind)
		}
		if c.status != nil {
			go c.status(ctx, reg)
		}
		return func() {}
	}
	all := append([]string{"backfill", "--endpoint-url", ddbtest.Endpoint(c.t), "--state-dir", c.stateDir}, args...)
	r := cmdtest.RunContext(ctx, c.t, f, all...)
	return r.Code, r.Stdout, r.Stderr
}

func newCLI(t *testing.T) *cli { return &cli{t: t, stateDir: t.TempDir()} }

func item(i int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("k%06d", i)},
		"v":  &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
		"s":  &types.AttributeValueMemberS{Value: strings.Repeat("z", 200)},
	}
}

func TestBackfillCopiesAndSummarises(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "cli-in"), ddbtest.Name(t, "cli-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	if err := benchutil.Load(context.Background(), c, in, 1200, 8, item); err != nil {
		t.Fatal(err)
	}
	x := newCLI(t)
	code, stdout, stderr := x.run(context.Background(), "--input-table", in, "--output-table", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	ddbtest.AssertSameItems(t, c, in, out, "pk", "")
	prefix := fmt.Sprintf("[%s] ⇨ [%s]: ", in, out)
	for _, want := range []string{
		prefix + "Backfill started: segments 0-3 of 4",
		prefix + "Backfill complete. 1200 items written over ",
		prefix + "Summary: backfill complete: 1200 items read, 1200 written, 0 skipped, 0 failed",
		"consumed_wcu",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	// The same command again: already complete, nothing copied.
	code, stdout, _ = x.run(context.Background(), "--input-table", in, "--output-table", out)
	if code != 0 || !strings.Contains(stdout, "already complete") {
		t.Fatalf("second run: exit %d\n%s", code, stdout)
	}
	// Resuming with another total is refused, exit 2.
	code, _, stderr = x.run(context.Background(), "--input-table", in, "--output-table", out, "--backfill-total-segments", "6")
	if code != 2 || !strings.Contains(stderr, "made with 4 total segments") || !strings.Contains(stderr, "state directory") {
		t.Fatalf("another total: exit %d, stderr %s", code, stderr)
	}
}

func TestUsageErrorsExitTwoAndWriteNothing(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in := ddbtest.Name(t, "ue-in")
	good := ddbtest.Name(t, "ue-good")
	numKey := ddbtest.Name(t, "ue-num")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, good, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, numKey, ddbtest.KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeN})
	ddbtest.PutItems(t, c, in, []map[string]types.AttributeValue{item(1), item(2), item(3)})
	missing := ddbtest.Name(t, "ue-missing")

	// A plan whose second entry has a key mismatch: the first must not
	// be copied either.
	planFile := filepath.Join(t.TempDir(), "plan.yml")
	if err := os.WriteFile(planFile, []byte(fmt.Sprintf(`plan:
  - input: {table: %s}
    output: {table: %s}
  - input: {table: %s}
    output: {table: %s}
`, in, good, in, numKey)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"key mismatch", []string{"--input-table", in, "--output-table", numKey}, []string{"key schemas differ", numKey, "nothing was written"}},
		{"missing input", []string{"--input-table", missing, "--output-table", good}, []string{"table " + missing + " does not exist"}},
		{"missing output", []string{"--input-table", in, "--output-table", missing}, []string{"table " + missing + " does not exist", "--create-output-table"}},
		{"plan with one bad entry", []string{"--config-file", planFile}, []string{"key schemas differ"}},
		{"bad segments", []string{"--input-table", in, "--output-table", good, "--backfill-segments", "x", "--backfill-total-segments", "4"}, []string{"segment \"x\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newCLI(t)
			code, stdout, stderr := x.run(context.Background(), tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, stderr)
				}
			}
			for _, tbl := range []string{good, numKey} {
				if n := len(ddbtest.ScanAll(t, c, tbl)); n != 0 {
					t.Fatalf("%s holds %d items; nothing should be written", tbl, n)
				}
			}
			entries, _ := os.ReadDir(x.stateDir)
			if len(entries) != 0 {
				t.Errorf("state written: %v", entries)
			}
		})
	}
	if _, err := c.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(missing)}); err == nil {
		t.Fatalf("%s was created without --create-output-table", missing)
	}
}

func TestCreateOutputTableAndSkipExpiredFlags(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "cf-in"), ddbtest.Name(t, "cf-out")
	ddbtest.CreateTable(t, c, in, ddbtest.KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeS, Range: "sk", RangeType: types.ScalarAttributeTypeN})
	t.Cleanup(func() { dropTable(c, out) })
	ttlOn(t, c, in, "ttl")
	past := fmt.Sprint(time.Now().Add(-48 * time.Hour).Unix())
	future := fmt.Sprint(time.Now().Add(48 * time.Hour).Unix())
	var items []map[string]types.AttributeValue
	for i := range 30 {
		it := map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: fmt.Sprint("p", i%4)},
			"sk": &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
		}
		switch i % 3 {
		case 0:
			it["ttl"] = &types.AttributeValueMemberN{Value: past}
		case 1:
			it["ttl"] = &types.AttributeValueMemberN{Value: future}
		}
		items = append(items, it)
	}
	ddbtest.PutItems(t, c, in, items)
	x := newCLI(t)
	code, stdout, stderr := x.run(context.Background(), "--input-table", in, "--output-table", out, "--create-output-table", "--skip-expired")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if got := len(ddbtest.ScanAll(t, c, out)); got != 20 {
		t.Fatalf("output holds %d items, want the 20 unexpired", got)
	}
	if !strings.Contains(stdout, "creating it") {
		t.Errorf("stdout lacks %q:\n%s", "creating it", stdout)
	}
	// DynamoDB Local deletes expired items itself, in the background: the
	// scan may meet fewer than the 10 expired ones, never fewer written.
	m := regexp.MustCompile(`(\d+) items read, 20 written, (\d+) skipped, 0 failed`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("stdout lacks the summary of 20 written and 0 failed:\n%s", stdout)
	}
	read, _ := strconv.Atoi(m[1])
	skipped, _ := strconv.Atoi(m[2])
	if read != 20+skipped || skipped > 10 {
		t.Errorf("summary %q: want read = 20 written + skipped, at most 10 skipped", m[0])
	}
}

func TestInterruptExits130AndResumes(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "int-in"), ddbtest.Name(t, "int-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	const n = 8000
	if err := benchutil.Load(context.Background(), c, in, n, 8, item); err != nil {
		t.Fatal(err)
	}
	x := newCLI(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x.status = func(sctx context.Context, reg *stats.Registry) {
		for sctx.Err() == nil {
			for _, e := range reg.Entries() {
				if e.ItemsWritten.Load() >= n/3 {
					cancel() // as SIGINT does
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}
	code, stdout, stderr := x.run(ctx, "--input-table", in, "--output-table", out, "--max-rcu", "100")
	if code != 130 {
		t.Fatalf("exit %d, want 130\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "Interrupted: progress is checkpointed") || !strings.Contains(stdout, "interrupted (checkpointed") {
		t.Errorf("no checkpoint note:\nstdout: %s\nstderr: %s", stdout, stderr)
	}
	x.status = nil
	code, stdout, stderr = x.run(context.Background(), "--input-table", in, "--output-table", out)
	if code != 0 {
		t.Fatalf("resume: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "resuming from checkpoints") {
		t.Errorf("resume not logged:\n%s", stdout)
	}
	var resumed int
	if _, err := fmt.Sscanf(stdout[strings.Index(stdout, "Summary: backfill complete: "):], "Summary: backfill complete: %d items read", &resumed); err != nil || resumed >= n {
		t.Errorf("resumed run read %d items (%v); want fewer than %d", resumed, err, n)
	}
	ddbtest.AssertSameItems(t, c, in, out, "pk", "")
}
