package sync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	synccmd "github.com/ddbsync/ddbsync/internal/cmd/sync"
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
		check   func(t *testing.T, o *synccmd.Options)
	}{
		{
			name: "all flags",
			args: "--input-table src --output-table dst --create-output-table --skip-expired --skip-ttl-deletes --until-caught-up --max-wcu 10",
			check: func(t *testing.T, o *synccmd.Options) {
				if !o.CreateOutputTable || !o.SkipExpired || !o.SkipTTLDeletes || !o.UntilCaughtUp {
					t.Errorf("flags not set: %+v", o)
				}
				e := o.Plan.Entries[0]
				if e.Backfill.Disabled || e.Stream.Disabled || e.Backfill.MaxWCU != 10 {
					t.Errorf("entry %+v", e)
				}
			},
		},
		{
			name: "stream only",
			args: "--input-table src --output-table dst --backfill=false",
			check: func(t *testing.T, o *synccmd.Options) {
				if e := o.Plan.Entries[0]; !e.Backfill.Disabled || e.Stream.Disabled {
					t.Errorf("entry %+v", e)
				}
			},
		},
		{
			name: "backfill only",
			args: "--input-table src --output-table dst --stream=false",
			check: func(t *testing.T, o *synccmd.Options) {
				if e := o.Plan.Entries[0]; e.Backfill.Disabled || !e.Stream.Disabled {
					t.Errorf("entry %+v", e)
				}
			},
		},
		{name: "nothing to do", args: "--input-table src --output-table dst --stream=false --backfill=false", wantErr: "nothing to do"},
		{name: "segments with stream", args: "--input-table src --output-table dst --backfill-total-segments 4 --backfill-segments 1", wantErr: "cannot be combined with streaming"},
		{name: "no table", args: "", wantErr: "--input-table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdtest.Expect(t, synccmd.NewCmdSync, tt.args, tt.wantErr, tt.check)
		})
	}
}

func run(t *testing.T, ctx context.Context, stateDir string, onStatus func(*stats.Registry), args ...string) (int, string, string) {
	t.Helper()
	f := cmdtest.NewFactory(t, "")
	f.StartStatus = func(_ context.Context, _ status.Env, reg *stats.Registry, kind string) func() {
		if kind != "sync" {
			t.Errorf("status kind %q, want sync", kind)
		}
		if onStatus != nil {
			go onStatus(reg)
		}
		return func() {}
	}
	all := append([]string{"sync", "--endpoint-url", ddbtest.Endpoint(t), "--state-dir", stateDir}, args...)
	r := cmdtest.RunContext(ctx, t, f, all...)
	return r.Code, r.Stdout, r.Stderr
}

func item(i int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("k%05d", i)},
		"v":  &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
		"m":  &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
	}
}

func source(t *testing.T, n int) (*dynamodb.Client, string) {
	c, _ := ddbtest.Clients(t)
	src := ddbtest.Name(t, "src")
	k := ddbtest.StringKey
	k.Stream = types.StreamViewTypeNewAndOldImages
	ddbtest.CreateTable(t, c, src, k)
	var items []map[string]types.AttributeValue
	for i := range n {
		items = append(items, item(i))
	}
	ddbtest.PutItems(t, c, src, items)
	return c, src
}

func TestSyncCreatesCopiesAndCatchesUp(t *testing.T) {
	c, src := source(t, 300)
	dst := ddbtest.Name(t, "dst")
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(dst)})
	})
	// A change after the copy began must arrive through the stream.
	status := func(reg *stats.Registry) {
		_, _ = c.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(src), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "k00001"}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	code, out, errOut := run(t, ctx, t.TempDir(), status, "--input-table", src, "--output-table", dst, "--create-output-table", "--until-caught-up")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"Backfill complete", "Summary: stream stopped (checkpointed)"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
}

func TestStreamDisabledExitsTwoAndWritesNothing(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	src, dst := ddbtest.Name(t, "nostream"), ddbtest.Name(t, "dst")
	ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
	ddbtest.PutItems(t, c, src, []map[string]types.AttributeValue{item(1)})
	code, out, errOut := run(t, context.Background(), t.TempDir(), nil, "--input-table", src, "--output-table", dst, "--create-output-table")
	if code != 2 {
		t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "StreamEnabled=true") {
		t.Fatalf("stderr does not say how to enable a stream:\n%s", errOut)
	}
	if _, err := c.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(dst)}); err == nil {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(dst)})
		t.Fatal("the output table was created although the run was refused")
	}
}

func TestInterruptDuringBackfillExits130AndResumes(t *testing.T) {
	c, src := source(t, 3000)
	dst := ddbtest.Name(t, "dst")
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	stateDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	status := func(reg *stats.Registry) {
		for ctx.Err() == nil {
			if es := reg.Entries(); len(es) > 0 && es[0].ItemsWritten.Load() > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	code, out, errOut := run(t, ctx, stateDir, status, "--input-table", src, "--output-table", dst, "--backfill-total-segments", "4")
	if code != 130 {
		t.Fatalf("exit %d, want 130\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "run the same command again to resume") {
		t.Fatalf("no resume note on stderr:\n%s", errOut)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer rcancel()
	code, out, errOut = run(t, rctx, stateDir, nil, "--input-table", src, "--output-table", dst, "--backfill-total-segments", "4", "--until-caught-up")
	if code != 0 {
		t.Fatalf("resume: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "resuming sync") {
		t.Errorf("the resumed run did not reuse the handover:\n%s", out)
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
}

func TestInterruptWhileStreamingExitsZero(t *testing.T) {
	c, src := source(t, 50)
	dst := ddbtest.Name(t, "dst")
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	status := func(reg *stats.Registry) {
		deadline := time.Now().Add(90 * time.Second)
		for ctx.Err() == nil && time.Now().Before(deadline) {
			if es := reg.Entries(); len(es) > 0 && es[0].RecordsApplied.Load() >= 50 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}
	code, out, errOut := run(t, ctx, t.TempDir(), status, "--input-table", src, "--output-table", dst)
	if code != 0 {
		t.Fatalf("exit %d, want 0 for a stop while streaming\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Summary: stream stopped (checkpointed): 50 records read, 50 applied") {
		t.Fatalf("stdout lacks the stream summary:\n%s", out)
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
}
