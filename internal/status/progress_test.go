package status

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/internal/logging"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func TestProgressBlockText(t *testing.T) {
	c := newClock()
	reg, advance := syncRegistry(c)
	var buf bytes.Buffer
	l, err := logging.New(&buf, logging.Options{Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	p := &Progress{Logger: l, Now: c.Now, Kind: "sync", Registry: reg}
	p.Prime()
	c.Add(20 * time.Minute)
	advance()
	p.Log()
	// zap stamps lines with the real clock: drop the timestamps.
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		got = append(got, line[len("2006/01/02 15:04:05 "):])
	}
	want := []string{
		"Progress update · sync · 20m0s elapsed",
		"[us-east-1:orders] ⇨ [eu-west-1:orders]: backfill running, 812,060 items written of ~1,200,000 (71%), 40,000 skipped (40,000 by the filter), ~9h37m left; stream pending; 10 items/s, buffer 40/64, 11 WCU/s; 20m0s elapsed",
		"[customers] ⇨ [customers-copy]: backfill complete, 52,113 items written; stream running, 1,250 records applied (~2s behind), 4 failed; 0 items/s, buffer 17/64, 0 WCU/s; 20m0s elapsed",
		"[events] ⇨ [a-very-long-output-table-name-for-the-events-service]: backfill failed, 1,500 items written, 3 failed; stream skipped; 0 items/s, buffer 0/0, 0 WCU/s; 20m0s elapsed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress block:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestProgressBlockJSON(t *testing.T) {
	c := newClock()
	reg, advance := syncRegistry(c)
	var buf bytes.Buffer
	l, _ := logging.New(&buf, logging.Options{Format: "json"})
	p := &Progress{Logger: l, JSON: true, Now: c.Now, Kind: "sync", Registry: reg}
	p.Prime()
	c.Add(10 * time.Second)
	advance()
	p.Log()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a title and 3 entry lines, got %d:\n%s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Fatal(err)
	}
	// The exact counters, the same the display shows.
	if m["items_written"] != float64(812_060) || m["backfill"] != "running" || m["stream"] != "pending" ||
		m["entry"] != "[us-east-1:orders] ⇨ [eu-west-1:orders]" || m["items_per_second"] != 1206.0 || m["elapsed"] != "10s" {
		t.Errorf("unexpected progress fields: %v", m)
	}
	// 347,940 items left (written, filtered) at 1,206/s.
	if m["percent"] != 71.0 || m["left_seconds"] != 289.0 || m["approx_items"] != 1_200_000.0 {
		t.Errorf("percent %v, left_seconds %v, approx_items %v; want 71, 289, 1200000", m["percent"], m["left_seconds"], m["approx_items"])
	}
	// The filtered items and failed records, present when not zero.
	if m["items_filtered"] != 40_000.0 || m["records_failed"] != nil {
		t.Errorf("items_filtered %v, records_failed %v; want 40000 and none", m["items_filtered"], m["records_failed"])
	}
	var m2 map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &m2); err != nil {
		t.Fatal(err)
	}
	if m2["records_failed"] != 4.0 || m2["items_filtered"] != nil {
		t.Errorf("second entry: records_failed %v, items_filtered %v; want 4 and none", m2["records_failed"], m2["items_filtered"])
	}
}

// ProgressLog: every interval a block, none after stop.
func TestProgressLogTicks(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	out := &lockedBuffer{}
	ios.Out = out
	env := Env{IO: ios, Now: time.Now, ProgressInterval: 10 * time.Millisecond,
		Logger: func() (*zap.Logger, error) { return logging.New(out, logging.Options{Format: "text"}) }}
	reg := stats.NewRegistry()
	e := reg.Add(stats.NewEntry("in-table", "out-table"))
	stats.SetPhase(&e.BackfillPhase, stats.Running)
	e.ItemsWritten.Store(42)
	stop := ProgressLog(context.Background(), env, reg, "backfill")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "42 items written") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress block within 30s; log:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	n := len(out.String())
	time.Sleep(50 * time.Millisecond)
	if len(out.String()) != n {
		t.Error("progress blocks logged after stop")
	}

	env.ProgressInterval = 0
	ProgressLog(context.Background(), env, reg, "backfill")() // never: returns a no-op
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The time left comes from the rate over the last interval, not since the
// start; it is "—" without a rate or past the approximate count, never
// negative, and capped; the percent is capped at 100.
func TestTimeLeft(t *testing.T) {
	c := newClock()
	reg := stats.NewRegistry()
	e := reg.Add(stats.NewEntry("in", "out"))
	e.ApproxItems.Store(1000)
	stats.SetPhase(&e.BackfillPhase, stats.Running)
	d := New(Options{Out: io.Discard, Now: c.Now, Kind: "backfill", Registry: reg})
	d.Prime()
	line := func() string {
		d.mu.Lock()
		defer d.mu.Unlock()
		return plainBody("backfill", d.snapshot(false)[0])
	}
	steps := []struct {
		add, skipped int64 // items written and skipped in the next 10 s
		approx       int64 // the approximate count from now on (0: unchanged)
		want         string
	}{
		{0, 0, 0, "0 items written of ~1,000 (0%), — left"},                              // no rate yet
		{100, 0, 0, "100 items written of ~1,000 (10%), ~1m30s left"},                    // 900 at 10/s
		{500, 0, 0, "600 items written of ~1,000 (60%), ~8s left"},                       // 400 at 50/s: the last interval only
		{0, 100, 0, "600 items written of ~1,000 (70%), 100 skipped, ~30s left"},         // skipped items count as copied
		{0, 0, 0, "600 items written of ~1,000 (70%), 100 skipped, — left"},              // stalled: no rate
		{1, 0, 1e9, "601 items written of ~1,000,000,000 (0%), 100 skipped, >100h left"}, // at 0.1/s: capped
		{900, 0, 1000, "1,501 items written of ~1,000 (100%), 100 skipped, — left"},      // past the approximate count
	}
	for i, st := range steps {
		c.Add(10 * time.Second)
		e.ItemsWritten.Add(st.add)
		e.ItemsSkipped.Add(st.skipped)
		if st.approx > 0 {
			e.ApproxItems.Store(st.approx)
		}
		if got := line(); !strings.Contains(got, "backfill running, "+st.want+";") {
			t.Errorf("step %d: %q, want it to contain %q", i, got, st.want)
		}
	}
}
