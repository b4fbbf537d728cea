package stream_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	streamcmd "github.com/ddbsync/ddbsync/internal/cmd/stream"
	"github.com/ddbsync/ddbsync/internal/cmdtest"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

func TestFlagsToOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		wantErr string
		check   func(t *testing.T, o *streamcmd.Options)
	}{
		{
			name: "table flags",
			args: "--input-table src --output-table dst --skip-ttl-deletes --until-caught-up --max-wcu 100",
			check: func(t *testing.T, o *streamcmd.Options) {
				if !o.SkipTTLDeletes || !o.UntilCaughtUp {
					t.Errorf("flags not set: %+v", o)
				}
				e := o.Plan.Entries[0]
				if e.Input.Table != "src" || e.Output.Table != "dst" || e.Backfill.MaxWCU != 100 || !e.Backfill.Disabled || e.Stream.Disabled {
					t.Errorf("entry %+v", e)
				}
			},
		},
		{
			name: "defaults",
			args: "--input-table src --output-table dst",
			check: func(t *testing.T, o *streamcmd.Options) {
				if o.SkipTTLDeletes || o.UntilCaughtUp {
					t.Errorf("flags set by default: %+v", o)
				}
			},
		},
		{
			name: "checkpoint table and lease duration",
			args: "--input-table src --output-table dst --checkpoint-table ckpt --lease-duration 5s",
			check: func(t *testing.T, o *streamcmd.Options) {
				if o.Plan.CheckpointTable == nil || o.Plan.CheckpointTable.Table != "ckpt" {
					t.Errorf("checkpoint table %+v", o.Plan.CheckpointTable)
				}
				if d := o.LeaseFlags.LeaseOptions(nil).Duration; d != 5*time.Second {
					t.Errorf("lease duration %s", d)
				}
			},
		},
		{name: "lease duration too short", args: "--input-table src --output-table dst --checkpoint-table ckpt --lease-duration 10ms", wantErr: "--lease-duration 10ms is out of range; allowed: 1s to 10m0s"},
		{name: "no table", args: "", wantErr: "--input-table"},
		{name: "same table", args: "--input-table src", wantErr: "same table"},
		{name: "arguments", args: "--input-table src --output-table dst extra", wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdtest.Expect(t, streamcmd.NewCmdStream, tt.args, tt.wantErr, tt.check)
		})
	}
}

func run(t *testing.T, ctx context.Context, stateDir string, args ...string) (int, string, string) {
	t.Helper()
	all := append([]string{"stream", "--endpoint-url", ddbtest.Endpoint(t), "--state-dir", stateDir}, args...)
	r := cmdtest.RunContext(ctx, t, cmdtest.NewFactory(t, ""), all...)
	return r.Code, r.Stdout, r.Stderr
}

func item(pk string, v int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"v":  &types.AttributeValueMemberN{Value: fmt.Sprint(v)},
	}
}

func tables(t *testing.T, view types.StreamViewType) (*dynamodb.Client, string, string) {
	c, _ := ddbtest.Clients(t)
	src, dst := ddbtest.Name(t, "src"), ddbtest.Name(t, "dst")
	k := ddbtest.StringKey
	k.Stream = view
	ddbtest.CreateTable(t, c, src, k)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	return c, src, dst
}

func TestUntilCaughtUpExits(t *testing.T) {
	c, src, dst := tables(t, types.StreamViewTypeKeysOnly)
	var items []map[string]types.AttributeValue
	for i := range 200 {
		items = append(items, item(fmt.Sprintf("k%03d", i), i))
	}
	ddbtest.PutItems(t, c, src, items)
	_, _ = c.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(src), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "k007"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	code, out, errOut := run(t, ctx, t.TempDir(), "--input-table", src, "--output-table", dst, "--until-caught-up")
	if code != 0 || ctx.Err() != nil {
		t.Fatalf("exit %d (ctx %v)\nstdout:\n%s\nstderr:\n%s", code, ctx.Err(), out, errOut)
	}
	if !strings.Contains(out, "Summary: stream stopped (checkpointed): 201 records read, 201 applied, 0 skipped") {
		t.Fatalf("no summary in stdout:\n%s", out)
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
}

func TestStreamDisabledExitsTwo(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	src, dst := ddbtest.Name(t, "nostream"), ddbtest.Name(t, "dst")
	ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	code, out, errOut := run(t, context.Background(), t.TempDir(), "--input-table", src, "--output-table", dst, "--until-caught-up")
	if code != 2 {
		t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "has no DynamoDB Stream enabled") || !strings.Contains(errOut, "aws dynamodb update-table --table-name "+src) {
		t.Fatalf("stderr does not explain how to enable a stream:\n%s", errOut)
	}
}

func TestInterruptExitsZero(t *testing.T) {
	_, src, dst := tables(t, types.StreamViewTypeNewImage)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2*time.Second, cancel)
	code, out, errOut := run(t, ctx, t.TempDir(), "--input-table", src, "--output-table", dst)
	if code != 0 {
		t.Fatalf("exit %d, want 0 after an interrupt\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestKill9AndRestart kills the built binary with SIGKILL while it applies
// a stream that is being written to, then restarts it: nothing is lost.
func TestKill9AndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	c, src, dst := tables(t, types.StreamViewTypeNewAndOldImages)
	bin := filepath.Join(t.TempDir(), "ddbsync")
	build := exec.Command("go", "build", "-o", bin, "github.com/ddbsync/ddbsync/cmd/ddbsync")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stateDir := t.TempDir()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "stream", "--endpoint-url", ddbtest.Endpoint(t), "--state-dir", stateDir, "--no-status",
		"--input-table", src, "--output-table", dst)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the source keeps changing until after the restart began
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pk := fmt.Sprintf("k%03d", i%150)
			var err error
			if i%7 == 3 {
				_, err = c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(src), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}})
			} else {
				_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(src), Item: item(pk, i)})
			}
			if err != nil {
				t.Errorf("write: %v", err)
				return
			}
		}
	}()
	// Kill once the consumer has applied and checkpointed part of the
	// changes, so that the restart resumes from a checkpoint.
	deadline := time.Now().Add(60 * time.Second)
	checkpointed := func() bool {
		cps, _ := filepath.Glob(filepath.Join(stateDir, "*", "stream", "shards", "*.json"))
		return len(cps) > 0
	}
	for !checkpointed() || len(ddbtest.ScanAll(t, c, dst)) < 30 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			close(stop)
			wg.Wait()
			t.Fatalf("the stream applied nothing within 60 s; its output:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	code, out, errOut := run(t, rctx, stateDir, "--input-table", src, "--output-table", dst, "--until-caught-up")
	if code != 0 {
		t.Fatalf("restart: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	_ = os.Remove(bin)
}
