// Package metrics serves the counters of a run in the Prometheus format
// (--metrics-addr HOST:PORT, path /metrics). A Collector reads the
// stats.Registry at scrape time, so the figures are the very counters the
// status display, the log and --output json show.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ddbsync/ddbsync/internal/status"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

var labels = []string{"input", "output"}

type metric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(e *stats.Entry) float64
}

func counter(name, help string, v func(e *stats.Entry) float64) metric {
	return metric{prometheus.NewDesc("ddbsync_"+name, help, labels, nil), prometheus.CounterValue, v}
}

func gauge(name, help string, v func(e *stats.Entry) float64) metric {
	return metric{prometheus.NewDesc("ddbsync_"+name, help, labels, nil), prometheus.GaugeValue, v}
}

func i64(f func(e *stats.Entry) int64) func(e *stats.Entry) float64 {
	return func(e *stats.Entry) float64 { return float64(f(e)) }
}

// metricList is every per-entry metric.
var metricList = []metric{
	counter("backfill_items_read_total", "Items returned by Scan of the input table.", i64(func(e *stats.Entry) int64 { return e.ItemsRead.Load() })),
	counter("backfill_items_written_total", "Items acknowledged by BatchWriteItem on the output table.", i64(func(e *stats.Entry) int64 { return e.ItemsWritten.Load() })),
	counter("backfill_items_failed_total", "Items that could not be written, or that the filter or transform failed on.", i64(func(e *stats.Entry) int64 { return e.ItemsFailed.Load() })),
	counter("backfill_items_skipped_total", "Items left out on purpose (--skip-expired, --filter).", i64(func(e *stats.Entry) int64 { return e.ItemsSkipped.Load() })),
	counter("backfill_items_filtered_total", "Items the filter left out (part of the skipped items).", i64(func(e *stats.Entry) int64 { return e.ItemsFiltered.Load() })),
	counter("stream_records_read_total", "Stream records received.", i64(func(e *stats.Entry) int64 { return e.RecordsRead.Load() })),
	counter("stream_records_applied_total", "Stream records applied to the output table.", i64(func(e *stats.Entry) int64 { return e.RecordsApplied.Load() })),
	counter("stream_records_failed_total", "Stream records whose item the filter or transform failed on.", i64(func(e *stats.Entry) int64 { return e.RecordsFailed.Load() })),
	counter("stream_records_skipped_total", "Stream records left out on purpose (TTL deletes, records before the backfill).", i64(func(e *stats.Entry) int64 { return e.RecordsSkipped.Load() })),
	counter("diff_scanned_total", "Items of the master table compared.", i64(func(e *stats.Entry) int64 { return e.Scanned.Load() })),
	counter("diff_matching_total", "Items equal on master and slave.", i64(func(e *stats.Entry) int64 { return e.Matching.Load() })),
	counter("diff_missing_total", "Items of the master missing on the slave.", i64(func(e *stats.Entry) int64 { return e.Missing.Load() })),
	counter("diff_differing_total", "Items that differ between master and slave.", i64(func(e *stats.Entry) int64 { return e.Differing.Load() })),
	counter("diff_extra_total", "Items on the slave that the master does not have.", i64(func(e *stats.Entry) int64 { return e.Extra.Load() })),
	counter("diff_repaired_total", "Items written to the slave by diff.", i64(func(e *stats.Entry) int64 { return e.Repaired.Load() })),
	counter("diff_deleted_total", "Extra items deleted from the slave by diff.", i64(func(e *stats.Entry) int64 { return e.Deleted.Load() })),
	counter("diff_conflicts_total", "Differences skipped because the item changed during the diff.", i64(func(e *stats.Entry) int64 { return e.Conflicts.Load() })),
	counter("diff_errors_total", "Items diff could not compare or repair.", i64(func(e *stats.Entry) int64 { return e.Errors.Load() })),
	counter("consumed_rcu_total", "Read capacity units consumed.", func(e *stats.Entry) float64 { return e.ConsumedRCU.Load() }),
	counter("consumed_wcu_total", "Write capacity units consumed.", func(e *stats.Entry) float64 { return e.ConsumedWCU.Load() }),
	counter("retries_total", "Requests or unprocessed items retried.", i64(func(e *stats.Entry) int64 { return e.Retries.Load() })),
	counter("throttles_total", "Throttling errors seen.", i64(func(e *stats.Entry) int64 { return e.Throttles.Load() })),
	gauge("stream_latency_seconds", "Age of the last applied stream record when it was applied.", func(e *stats.Entry) float64 { return float64(e.LatencyMillis.Load()) / 1000 }),
	gauge("stream_last_applied_timestamp_seconds", "Creation time of the last applied stream record (Unix seconds; 0: none yet).", func(e *stats.Entry) float64 { return float64(e.LastApplied.Load()) / 1000 }),
	gauge("stream_open_shards", "Stream shards being read.", i64(func(e *stats.Entry) int64 { return e.OpenShards.Load() })),
	gauge("buffer_length", "Items in the reader → writer queue.", i64(func(e *stats.Entry) int64 { return e.BufferLen.Load() })),
	gauge("buffer_capacity", "Capacity of the reader → writer queue.", i64(func(e *stats.Entry) int64 { return e.BufferCap.Load() })),
	gauge("table_approx_items", "Approximate item count of the input table (DescribeTable, updated about every 6 hours).", i64(func(e *stats.Entry) int64 { return e.ApproxItems.Load() })),
	gauge("table_approx_bytes", "Approximate size of the input table in bytes (DescribeTable).", i64(func(e *stats.Entry) int64 { return e.ApproxBytes.Load() })),
	gauge("start_time_seconds", "When the entry started (Unix seconds).", func(e *stats.Entry) float64 { return float64(e.Started.Load()) / 1e9 }),
}

var phaseDesc = prometheus.NewDesc("ddbsync_phase", "1 for the current state of each phase of an entry, 0 for the others.",
	[]string{"input", "output", "phase", "state"}, nil)

var phaseStates = []stats.Phase{stats.Pending, stats.Running, stats.Complete, stats.Skipped, stats.Failed, stats.Stopped}

// Collector exposes the entries of registries as metrics.
type Collector struct {
	mu   sync.Mutex
	regs []*stats.Registry
}

// NewCollector returns a collector of the given registries.
func NewCollector(regs ...*stats.Registry) *Collector { return &Collector{regs: regs} }

// Add adds a registry (a run that started).
func (c *Collector) Add(r *stats.Registry) {
	c.mu.Lock()
	c.regs = append(c.regs, r)
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metricList {
		ch <- m.desc
	}
	ch <- phaseDesc
}

// Collect implements prometheus.Collector. Two entries with the same
// input and output (a diff listing one slave twice) are told apart by a
// "#2" suffix on the output label, since duplicate series fail a scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	regs := append([]*stats.Registry(nil), c.regs...)
	c.mu.Unlock()
	seen := map[[2]string]int{}
	for _, r := range regs {
		for _, e := range r.Entries() {
			key := [2]string{e.Input, e.Output}
			seen[key]++
			out := e.Output
			if n := seen[key]; n > 1 {
				out = fmt.Sprintf("%s#%d", out, n)
			}
			for _, m := range metricList {
				ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(e), e.Input, out)
			}
			for _, ph := range []struct {
				name  string
				field func() stats.Phase
			}{
				{"backfill", func() stats.Phase { return stats.GetPhase(&e.BackfillPhase) }},
				{"stream", func() stats.Phase { return stats.GetPhase(&e.StreamPhase) }},
				{"diff", func() stats.Phase { return stats.GetPhase(&e.DiffPhase) }},
			} {
				cur := ph.field()
				for _, s := range phaseStates {
					v := 0.0
					if s == cur {
						v = 1
					}
					ch <- prometheus.MustNewConstMetric(phaseDesc, prometheus.GaugeValue, v, e.Input, out, ph.name, s.String())
				}
			}
		}
	}
}

// Server serves /metrics on one listener.
type Server struct {
	Collector *Collector
	ln        net.Listener
	srv       *http.Server
	done      chan struct{}
}

// Listen opens addr (HOST:PORT; port 0 picks a free one) and serves the
// metrics of the registries added later with Observe. The error names
// the address and what is allowed.
func Listen(addr string) (*Server, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("--metrics-addr %q is not HOST:PORT (for example 127.0.0.1:9090 or :9090)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: cannot listen: %w", addr, err)
	}
	return Serve(ln), nil
}

// Serve serves the metrics on ln.
func Serve(ln net.Listener) *Server {
	c := NewCollector()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "ddbsync: metrics are at /metrics")
	})
	s := &Server{Collector: c, ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Observe is a status.Func: it adds the run's registry to the
// metrics. The figures stay served after the run, until Close.
func (s *Server) Observe(_ context.Context, _ status.Env, reg *stats.Registry, _ string) (stop func()) {
	s.Collector.Add(reg)
	return func() {}
}

// Close stops the server, giving scrapes in flight a second to finish.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	if errors.Is(err, context.DeadlineExceeded) {
		return s.srv.Close()
	}
	return err
}
