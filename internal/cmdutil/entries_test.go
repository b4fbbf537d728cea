package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func testEntriesRun(ctx context.Context, f *Factory, names ...string) *EntriesRun {
	r := &EntriesRun{Ctx: ctx, Registry: stats.NewRegistry(), f: f}
	for _, n := range names {
		e := plan.Entry{Input: plan.Table{Table: n}, Output: plan.Table{Table: n + "-copy"}}
		r.Entries = append(r.Entries, &RunEntry{Entry: e, Stats: r.Registry.Add(stats.NewEntry(n, n+"-copy"))})
	}
	return r
}

func TestSetupEntriesSkipsAndLogs(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	f := &Factory{IOStreams: ios, Globals: DefaultGlobals()}
	f.Globals.StateDir = t.TempDir()
	f.Globals.EndpointURL = "http://127.0.0.1:1" // never contacted: clients are built lazily
	p := &plan.Plan{Entries: []plan.Entry{
		{Input: plan.Table{Table: "a", Region: "us-east-1"}, Output: plan.Table{Table: "a-copy", Region: "us-east-1"}},
		{Input: plan.Table{Table: "b", Region: "us-east-1"}, Output: plan.Table{Table: "b-copy", Region: "us-east-1"}},
	}}
	r, err := f.SetupEntries(context.Background(), p, &LeaseFlags{}, func(e plan.Entry) string {
		if e.Input.Table == "a" {
			return "skipped for the test"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ctx == nil || r.Store == nil || r.Leases != nil {
		t.Errorf("ctx %v, store %v, leases %v; want a context, the file store and no leases", r.Ctx, r.Store, r.Leases)
	}
	if len(r.Entries) != 1 || r.Entries[0].Entry.Input.Table != "b" {
		t.Fatalf("entries %+v, want only b", r.Entries)
	}
	e := r.Entries[0]
	if e.In == nil || e.Out == nil || e.In.DynamoDB == nil || e.Out.DynamoDB == nil || e.Log == nil || e.Stats == nil {
		t.Errorf("entry not set up: %+v", e)
	}
	if got := r.Registry.Entries(); len(got) != 1 || got[0] != e.Stats {
		t.Errorf("registry %v, want the one entry's stats", got)
	}
	if s := out.String(); !strings.Contains(s, "[a] ⇨ [a-copy]: skipped for the test") {
		t.Errorf("log %q lacks the skip reason", s)
	}
}

func TestEntriesRunErrors(t *testing.T) {
	f := &Factory{IOStreams: func() *iostreams.IOStreams { ios, _, _, _ := iostreams.Test(); return ios }()}
	boom := errors.New("boom")
	tests := []struct {
		name           string
		errs           map[string]error
		ignoreCanceled bool
		wantCode       int
		wantMsg        string
	}{
		{name: "none", errs: nil, wantCode: ExitOK},
		{name: "runtime", errs: map[string]error{"b": boom}, wantCode: ExitRuntime, wantMsg: "[b] ⇨ [b-copy]: boom"},
		{name: "runtime wins over usage", errs: map[string]error{"a": boom, "b": &plan.Error{Msg: "bad"}}, wantCode: ExitRuntime, wantMsg: "[a] ⇨ [a-copy]: boom\n[b] ⇨ [b-copy]: bad"},
		{name: "usage only", errs: map[string]error{"b": &plan.Error{Msg: "bad"}}, wantCode: ExitUsage, wantMsg: "[b] ⇨ [b-copy]: bad"},
		{name: "canceled counted", errs: map[string]error{"a": context.Canceled}, wantCode: ExitRuntime, wantMsg: "context canceled"},
		{name: "canceled ignored", errs: map[string]error{"a": fmt.Errorf("x: %w", context.Canceled)}, ignoreCanceled: true, wantCode: ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testEntriesRun(context.Background(), f, "a", "b")
			ran := make([]bool, len(r.Entries))
			r.Run("test", func(_ context.Context, i int) error {
				ran[i] = true
				return tt.errs[r.Entries[i].Entry.Input.Table]
			})
			for i, ok := range ran {
				if !ok {
					t.Errorf("entry %d did not run", i)
				}
			}
			err := r.Err(tt.ignoreCanceled)
			if got := ExitCode(err); got != tt.wantCode {
				t.Fatalf("exit code %d (%v), want %d", got, err, tt.wantCode)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q lacks %q", err, tt.wantMsg)
			}
		})
	}
}

func TestEntriesRunCheck(t *testing.T) {
	f := &Factory{}
	boom := errors.New("boom")
	r := testEntriesRun(context.Background(), f, "a", "b", "c")
	var checked []int
	err := r.Check(func(i int) error {
		checked = append(checked, i)
		if i == 1 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || fmt.Sprint(checked) != "[0 1]" {
		t.Errorf("err %v after checking %v; want boom after [0 1]", err, checked)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = testEntriesRun(ctx, f, "a")
	err = r.Check(func(int) error { return boom })
	if ExitCode(err) != ExitInterrupted || !errors.Is(err, context.Canceled) || !r.Interrupted() {
		t.Errorf("interrupted check: err %v (exit %d), want exit 130 wrapping context.Canceled", err, ExitCode(err))
	}
}

func TestEntriesRunFailFast(t *testing.T) {
	f := &Factory{}
	boom := errors.New("gap in shard 1")
	run := func(r *EntriesRun) {
		r.Run("stream", func(ctx context.Context, i int) error {
			if i == 0 {
				return boom
			}
			<-ctx.Done() // a stream runs until stopped, then returns nil
			return nil
		})
	}
	r := testEntriesRun(context.Background(), f, "a", "b", "c")
	r.FailFast = true
	done := make(chan struct{})
	go func() { run(r); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the other entries were not stopped after one failed")
	}
	if err := r.Err(false); ExitCode(err) != ExitRuntime || !errors.Is(err, boom) {
		t.Errorf("err %v (exit %d), want exit 3 wrapping the failure", err, ExitCode(err))
	}

	// Without FailFast the others run on until the run's own context ends.
	ctx, cancel := context.WithCancel(context.Background())
	r = testEntriesRun(ctx, f, "a", "b")
	done = make(chan struct{})
	go func() { run(r); close(done) }()
	select {
	case <-done:
		t.Fatal("without FailFast a failed entry stopped the others")
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	<-done
}
