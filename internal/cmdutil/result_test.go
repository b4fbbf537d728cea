package cmdutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

func TestCopyUnits(t *testing.T) {
	tests := []struct {
		name                 string
		items, bytes         int64
		fraction, maxR, maxW float64
		toCopy               int64
		rcu, wcu             float64
		duration             float64 // -1: unbounded
	}{
		// 1,000 items of 1,500 bytes: 2 WCU each; 1,500,000 bytes are
		// 367 started 4 KB pages, half a unit each.
		{"budget on writes", 1000, 1_500_000, 1, 0, 100, 1000, 183.5, 2000, 20},
		{"reads slower than writes", 1000, 1_500_000, 1, 1, 100, 1000, 183.5, 2000, 183.5},
		{"unbounded", 1000, 1_500_000, 1, 0, 0, 1000, 183.5, 2000, -1},
		{"half the segments left", 1000, 1_500_000, 0.5, 0, 0, 500, 92, 1000, -1},
		{"tiny items cost one unit", 10, 100, 1, 0, 0, 10, 0.5, 10, -1},
		{"empty table", 0, 0, 1, 0, 10, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, rcu, wcu, d := CopyUnits(tt.items, tt.bytes, tt.fraction, tt.maxR, tt.maxW)
			if n != tt.toCopy || rcu != tt.rcu || wcu != tt.wcu {
				t.Errorf("got %d items, %v RCU, %v WCU; want %d, %v, %v", n, rcu, wcu, tt.toCopy, tt.rcu, tt.wcu)
			}
			switch {
			case tt.duration < 0 && d != nil:
				t.Errorf("duration %v, want unbounded (nil)", *d)
			case tt.duration >= 0 && (d == nil || *d != tt.duration):
				t.Errorf("duration %v, want %v", d, tt.duration)
			}
		})
	}
}

// The result object: phases from the entries' errors and the
// interruption, counters from the stats, every field present.
func TestResultPhases(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ios, _, out, _ := iostreams.Test()
	f := &Factory{IOStreams: ios}
	r := testEntriesRun(ctx, f, "done", "broken", "stopped")
	r.Start = time.Now()
	r.Entries[0].Stats.ItemsWritten.Store(7)
	r.Entries[0].Stats.ConsumedWCU.Store(7.5)
	r.Entries[0].Stats.ItemsFiltered.Store(3)
	r.Entries[1].Stats.RecordsFailed.Store(2)
	r.Entries[1].Err = errors.New("boom")
	r.Entries[2].Err = fmt.Errorf("scan: %w", context.Canceled)
	o := &OutputFlags{Output: OutputJSON}
	if err := o.Finish(f, r, "backfill", r.Entries[1].Err); err == nil || err.Error() != "boom" {
		t.Fatalf("Finish returned %v, want the run's error unchanged", err)
	}
	var got map[string]any
	dec := json.NewDecoder(strings.NewReader(out.String()))
	if err := dec.Decode(&got); err != nil || dec.More() {
		t.Fatalf("stdout is not one object (%v): %s", err, out.String())
	}
	entries := got["entries"].([]any)
	var phases []string
	for _, e := range entries {
		phases = append(phases, e.(map[string]any)["phase"].(string))
	}
	if strings.Join(phases, ",") != "complete,failed,stopped" {
		t.Errorf("phases %v", phases)
	}
	first := entries[0].(map[string]any)
	for _, k := range []string{"input", "output", "phase", "items_read", "items_written", "items_skipped", "items_failed", "items_filtered", "records_read",
		"records_applied", "records_failed", "consumed_rcu", "consumed_wcu", "retries", "throttles", "error", "duration_seconds"} {
		if _, ok := first[k]; !ok {
			t.Errorf("entry lacks %q: %v", k, first)
		}
	}
	second := entries[1].(map[string]any)
	if first["items_written"] != 7.0 || first["consumed_wcu"] != 7.5 || first["items_filtered"] != 3.0 || first["records_failed"] != 0.0 ||
		second["records_failed"] != 2.0 || second["error"] != "boom" {
		t.Errorf("entries %v", entries)
	}
	if got["command"] != "backfill" {
		t.Errorf("command %v", got["command"])
	}

	// Interrupted: an entry that returned nil is stopped, not complete.
	cancel()
	r.Entries[1].Err = nil
	res := r.Result("stream")
	if res.Entries[0].Phase != PhaseStopped || res.Entries[1].Phase != PhaseStopped {
		t.Errorf("after the interruption: %+v", res.Entries)
	}
}

// A dry run's store refuses writes, and the state directory is never
// created.
func TestReadOnlyStateStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ios, _, _, _ := iostreams.Test()
	f := &Factory{IOStreams: ios, Globals: DefaultGlobals(), ReadOnly: true}
	f.Globals.StateDir = dir
	s, err := f.StateStore()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), "a/b", map[string]int{"x": 1}); !errors.Is(err, ErrDryRunWrite) {
		t.Errorf("Put: %v, want ErrDryRunWrite", err)
	}
	if err := s.Delete(context.Background(), "a/b"); !errors.Is(err, ErrDryRunWrite) {
		t.Errorf("Delete: %v, want ErrDryRunWrite", err)
	}
	var v map[string]int
	if ok, err := s.Get(context.Background(), "a/b", &v); ok || err != nil {
		t.Errorf("Get: %v %v", ok, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state directory %s exists (%v)", dir, err)
	}
}

// A dry run shows each entry's filter and transform, and with a filter
// calls the copy's item and write-unit figures upper bounds (the whole
// table is counted); without one it does not.
func TestDryRunShowsProgram(t *testing.T) {
	tr, err := transform.ParseTransform([]byte("set:\n  id2: '\"T#\" + item.pk'\ndrop: [\"tmp*\"]\nrename:\n  qty: quantity\n"))
	if err != nil {
		t.Fatal(err)
	}
	estimate := func(int) (*Estimate, error) {
		return &Estimate{Items: 1000, Bytes: 100_000, OutputExists: true, Backfill: &BackfillEstimate{
			TotalSegments: 4, Segments: 4, Parallel: 4, Writers: 16, ItemsToCopy: 1000, ReadUnits: 12.5, WriteUnits: 1000,
		}}, nil
	}
	run := func(t *testing.T, output string, e plan.Entry) string {
		ios, _, out, _ := iostreams.Test()
		f := &Factory{IOStreams: ios}
		r := testEntriesRun(context.Background(), f, "orders")
		r.Entries[0].Entry.Filter, r.Entries[0].Entry.Transform = e.Filter, e.Transform
		if err := r.DryRun(&OutputFlags{Output: output, DryRun: true}, "backfill", func(int) error { return nil }, estimate); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}

	t.Run("text", func(t *testing.T) {
		out := run(t, OutputText, plan.Entry{Filter: `item.tenant == "acme"`, Transform: tr})
		for _, want := range []string{
			`  filter:   item.tenant == "acme" (applied in the client: the scan reads the whole table)`,
			`  transform: drop tmp*; rename qty → quantity; set id2 = "T#" + item.pk`,
			"at most ~1,000 items to copy",
			"at most ~1,000 write units",
			"upper bounds: the whole table is counted; the filter is applied in the client",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("dry run lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("text without a filter", func(t *testing.T) {
		out := run(t, OutputText, plan.Entry{Transform: tr})
		if strings.Contains(out, "filter:") || strings.Contains(out, "at most") || strings.Contains(out, "upper bound") {
			t.Errorf("a transform alone is no upper bound:\n%s", out)
		}
		if !strings.Contains(out, "transform: drop tmp*") || !strings.Contains(out, "~1,000 items to copy") {
			t.Errorf("dry run:\n%s", out)
		}
	})
	t.Run("json", func(t *testing.T) {
		out := run(t, OutputJSON, plan.Entry{Filter: `item.tenant == "acme"`, Transform: tr})
		var got struct {
			Entries []struct {
				Estimate map[string]any `json:"estimate"`
			} `json:"entries"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.Entries) != 1 {
			t.Fatalf("%v: %s", err, out)
		}
		est := got.Entries[0].Estimate
		want := map[string]any{"set": map[string]any{"id2": `"T#" + item.pk`}, "drop": []any{"tmp*"}, "rename": map[string]any{"qty": "quantity"}}
		if est["filter"] != `item.tenant == "acme"` || est["upper_bound"] != true || fmt.Sprint(est["transform"]) != fmt.Sprint(want) {
			t.Errorf("estimate %v", est)
		}
	})
}

// With FailFast, an entry that returned nil because another entry's
// failure stopped it is stopped, not complete; one that finished before
// the failure is complete.
func TestResultStoppedByAnotherEntry(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := &Factory{IOStreams: ios}
	r := testEntriesRun(context.Background(), f, "finished", "broken", "streaming")
	r.FailFast = true
	finished := make(chan struct{})
	r.Run("stream", func(ctx context.Context, i int) error {
		switch i {
		case 0:
			close(finished)
			return nil
		case 1:
			<-finished
			return errors.New("boom")
		default:
			<-ctx.Done() // a stream returns nil when stopped
			return nil
		}
	})
	res := r.Result("stream")
	var phases []string
	for _, e := range res.Entries {
		phases = append(phases, e.Phase)
	}
	if strings.Join(phases, ",") != "complete,failed,stopped" {
		t.Errorf("phases %v, want complete,failed,stopped", phases)
	}
}
