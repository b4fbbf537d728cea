package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

func TestScrapeOverHTTP(t *testing.T) {
	srv, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	reg := stats.NewRegistry()
	e := reg.Add(stats.NewEntry("us-east-1:orders", "eu-west-1:orders"))
	e.ItemsRead.Store(1_234_567)
	e.ItemsWritten.Store(1_234_560)
	e.ItemsFailed.Store(7)
	e.RecordsApplied.Store(42)
	e.LatencyMillis.Store(2500)
	e.ConsumedRCU.Store(617.5)
	e.ConsumedWCU.Store(1_300_000.25)
	e.Retries.Store(9)
	e.Throttles.Store(4)
	stats.SetPhase(&e.BackfillPhase, stats.Complete)
	stats.SetPhase(&e.StreamPhase, stats.Running)
	d := reg.Add(stats.NewEntry("us-east-1:orders", "eu-west-1:orders")) // same pair twice
	d.Missing.Store(3)

	ios, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Globals: cmdutil.DefaultGlobals(), RunObservers: []cmdutil.StatusFunc{srv.Observe}}
	f.Globals.NoStatus = true // the metrics stay on without the display
	stop := f.Status(context.Background(), reg, "sync")

	body := scrape(t, "http://"+srv.Addr()+"/metrics")
	l := `{input="us-east-1:orders",output="eu-west-1:orders"}`
	for _, want := range []string{
		"# TYPE ddbsync_backfill_items_read_total counter",
		"ddbsync_backfill_items_read_total" + l + " 1.234567e+06",
		"ddbsync_backfill_items_written_total" + l + " 1.23456e+06",
		"ddbsync_backfill_items_failed_total" + l + " 7",
		"ddbsync_stream_records_applied_total" + l + " 42",
		"# TYPE ddbsync_stream_latency_seconds gauge",
		"ddbsync_stream_latency_seconds" + l + " 2.5",
		"ddbsync_consumed_rcu_total" + l + " 617.5",
		"ddbsync_consumed_wcu_total" + l + " 1.30000025e+06",
		"ddbsync_retries_total" + l + " 9",
		"ddbsync_throttles_total" + l + " 4",
		`ddbsync_phase{input="us-east-1:orders",output="eu-west-1:orders",phase="backfill",state="complete"} 1`,
		`ddbsync_phase{input="us-east-1:orders",output="eu-west-1:orders",phase="stream",state="running"} 1`,
		`ddbsync_phase{input="us-east-1:orders",output="eu-west-1:orders",phase="stream",state="pending"} 0`,
		`ddbsync_diff_missing_total{input="us-east-1:orders",output="eu-west-1:orders#2"} 3`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want+" ") {
			t.Errorf("scrape lacks %q", want)
		}
	}

	// Scrapes read the live counters.
	e.ItemsWritten.Add(40)
	if body := scrape(t, "http://"+srv.Addr()+"/metrics"); !strings.Contains(body, "ddbsync_backfill_items_written_total"+l+" 1.2346e+06\n") {
		t.Errorf("second scrape does not show the new count:\n%s", grep(body, "items_written"))
	}
	stop()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + srv.Addr() + "/metrics"); err == nil {
		t.Error("server still answers after Close")
	}
}

func TestListenErrors(t *testing.T) {
	for _, addr := range []string{"9090", "localhost", "http://x:1"} {
		if _, err := Listen(addr); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
			t.Errorf("Listen(%q) = %v; want an error naming HOST:PORT", addr, err)
		}
	}
	srv, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := Listen(srv.Addr()); err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Errorf("second Listen on %s = %v; want cannot listen", srv.Addr(), err)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
