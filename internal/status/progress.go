package status

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/internal/logging"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

// Progress writes the progress block of the log: a title line, then one
// line per entry with its phases, exact counts, rates over the interval
// and elapsed time. In the text format the lines read like the original
// ddb-sync's; in the JSON format every count is a field.
type Progress struct {
	Logger   *zap.Logger
	JSON     bool
	Now      func() time.Time
	Kind     string
	Registry *stats.Registry

	d     *Display
	start time.Time
}

func (p *Progress) init() {
	if p.d != nil {
		return
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = zap.NewNop()
	}
	p.d = New(Options{Out: io.Discard, Now: p.Now, Kind: p.Kind, Registry: p.Registry})
	p.start = p.Now()
}

// Prime takes the first sample, from which the first block's rates are
// computed.
func (p *Progress) Prime() {
	p.init()
	p.d.Prime()
}

// Log writes one progress block.
func (p *Progress) Log() {
	p.init()
	p.d.mu.Lock()
	rows := p.d.snapshot(false)
	p.d.mu.Unlock()
	now := p.Now()
	entries := p.Registry.Entries()
	if p.JSON {
		p.Logger.Info("progress update", zap.String("kind", p.Kind), zap.Duration("elapsed", now.Sub(p.start).Round(time.Second)))
	} else {
		p.Logger.Info(fmt.Sprintf("Progress update · %s · %s elapsed", p.Kind, elapsed(now.Sub(p.start))))
	}
	for i, s := range rows {
		el := now.Sub(time.Unix(0, entries[i].Started.Load()))
		l := logging.ForEntry(p.Logger, s.Input, s.Output)
		if !p.JSON {
			l.Info(plainBody(p.Kind, s) + "; " + elapsed(el) + " elapsed")
			continue
		}
		fields := []zap.Field{zap.String("kind", p.Kind), zap.Duration("elapsed", el.Round(time.Second))}
		if p.Kind == "diff" {
			fields = append(fields,
				zap.String("diff", s.Diff.String()),
				zap.Int64("scanned", s.Scanned), zap.Int64("missing", s.Missing),
				zap.Int64("differing", s.Differing), zap.Int64("extra", s.Extra),
				zap.Int64("repaired", s.Repaired), zap.Int64("deleted", s.Deleted),
				zap.Int64("conflicts", s.Conflicts), zap.Int64("errors", s.Errors),
				zap.Float64("items_per_second", round2(s.ItemsRate)), zap.Float64("rcu_per_second", round2(s.RCURate)))
		} else {
			fields = append(fields,
				zap.String("backfill", s.Backfill.String()), zap.String("stream", s.Stream.String()),
				zap.Int64("items_written", s.ItemsWritten), zap.Int64("items_failed", s.ItemsFailed),
				zap.Int64("items_skipped", s.ItemsSkipped), zap.Int64("records_applied", s.RecordsApplied),
				zap.Int64("latency_ms", s.LatencyMillis),
				zap.Float64("items_per_second", round2(s.ItemsRate)), zap.Float64("wcu_per_second", round2(s.WCURate)))
			if s.ItemsFiltered > 0 {
				fields = append(fields, zap.Int64("items_filtered", s.ItemsFiltered))
			}
			if s.RecordsFailed > 0 {
				fields = append(fields, zap.Int64("records_failed", s.RecordsFailed))
			}
		}
		if s.ApproxItems > 0 {
			fields = append(fields, zap.Int64("approx_items", s.ApproxItems))
			if p.Kind != "diff" && s.Backfill == stats.Running {
				// The time left is absent until there is a rate.
				fields = append(fields, zap.Int64("percent", s.percent()))
				if left, ok := s.left(); ok {
					fields = append(fields, zap.Float64("left_seconds", math.Round(left.Seconds())))
				}
			}
		}
		l.Info("progress", fields...)
	}
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// ProgressLog is a Func that logs a progress block every
// env.ProgressInterval (0: never). It runs with --no-status too.
func ProgressLog(ctx context.Context, env Env, reg *stats.Registry, kind string) (stop func()) {
	every := env.ProgressInterval
	if every <= 0 || env.Logger == nil {
		return func() {}
	}
	l, err := env.Logger()
	if err != nil {
		return func() {}
	}
	p := &Progress{Logger: l, JSON: env.LogJSON, Now: env.Now, Kind: kind, Registry: reg}
	p.Prime()
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				p.Log()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-finished
		})
	}
}
