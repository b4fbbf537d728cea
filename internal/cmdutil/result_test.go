package cmdutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ddbsync/ddbsync/internal/iostreams"
)

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
	for _, k := range []string{"input", "output", "phase", "items_read", "items_written", "items_skipped", "items_failed", "records_read",
		"records_applied", "consumed_rcu", "consumed_wcu", "retries", "throttles", "error", "duration_seconds"} {
		if _, ok := first[k]; !ok {
			t.Errorf("entry lacks %q: %v", k, first)
		}
	}
	if first["items_written"] != 7.0 || first["consumed_wcu"] != 7.5 || entries[1].(map[string]any)["error"] != "boom" {
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
