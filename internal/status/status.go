// Package status draws the live status of a run on standard error, in the
// shape of the original ddb-sync's "Current Status" panel, and logs a
// progress block every --progress-interval.
//
// On a terminal the block is redrawn in place every second, and log lines
// written to the same terminal are printed above it. Elsewhere (a file, a
// pipe) there are no escape codes: one plain status line per entry every
// 30 seconds. Either way the final state is printed when the run stops.
// Everything is read from the run's stats.Registry, the same counters the
// log summary, --output json and the metrics endpoint read.
package status

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/ddbsync/ddbsync/pkg/stats"
)

// Intervals of the display.
const (
	TTYInterval   = time.Second
	PlainInterval = 30 * time.Second
	// rateSamples is how many redraw intervals a terminal rate spans.
	rateSamples = 5
	// etaSamples is how many redraw intervals the rate of a terminal's
	// time left spans: long enough to be steady, recent enough to follow
	// a change of pace (elsewhere the rate over the last interval).
	etaSamples = 30
)

// Options configure a Display.
type Options struct {
	Out      io.Writer // standard error
	TTY      bool      // Out is a terminal: redraw in place
	Width    func() int
	Now      func() time.Time
	Kind     string // backfill, stream, sync or diff
	Registry *stats.Registry
	// Renderer decides colours; nil: lipgloss.NewRenderer(Out).
	Renderer *lipgloss.Renderer
}

type sample struct {
	at       time.Time
	count    int64
	copied   int64 // backfill items written, skipped or failed
	rcu, wcu float64
}

// Display is the live status of one run.
type Display struct {
	o     Options
	st    styles
	start time.Time
	keep  int // samples of a rate
	eta   int // samples of the rate of the time left (≥ keep)

	mu    sync.Mutex
	hist  map[*stats.Entry][]sample // the last samples, oldest first
	first map[*stats.Entry]sample   // the first sample, for final averages
	drawn int                       // lines of the block on the terminal
	block string                    // the block on the terminal
	done  bool

	width   int  // of the last frame
	compact bool // the last frame abbreviated numbers
}

// New returns a display; nothing is drawn until Tick or Final.
func New(o Options) *Display {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Width == nil {
		o.Width = func() int { return 80 }
	}
	if o.Renderer == nil {
		o.Renderer = lipgloss.NewRenderer(o.Out)
	}
	keep, eta := 1, 1
	if o.TTY {
		keep, eta = rateSamples, etaSamples
	}
	return &Display{o: o, st: newStyles(o.Renderer), start: o.Now(), keep: keep, eta: eta, hist: map[*stats.Entry][]sample{}, first: map[*stats.Entry]sample{}}
}

// snapshot reads every entry and computes its rates: over the last
// intervals while running, over the whole run for the final state; and
// for a running backfill the time left, from the rate over a moving
// window (the last etaSamples intervals on a terminal, else the last
// interval).
func (d *Display) snapshot(final bool) []snap {
	now := d.o.Now()
	entries := d.o.Registry.Entries()
	rows := make([]snap, 0, len(entries))
	for _, e := range entries {
		s := takeSnap(e)
		cur := sample{at: now, count: s.progressCount(d.o.Kind), copied: s.copied(), rcu: s.ConsumedRCU, wcu: s.ConsumedWCU}
		first, seen := d.first[e]
		if !seen {
			// Counters already there when an entry is first seen (a
			// resumed run counts from its checkpoint) are no part of any
			// rate.
			first = cur
			d.first[e] = first
		}
		from := first
		h := d.hist[e]
		if !final && len(h) > 0 {
			from = h[max(0, len(h)-d.keep)]
		}
		if dt := cur.at.Sub(from.at).Seconds(); dt > 0 {
			s.ItemsRate = float64(cur.count-from.count) / dt
			s.RCURate = (cur.rcu - from.rcu) / dt
			s.WCURate = (cur.wcu - from.wcu) / dt
		}
		if !final && len(h) > 0 {
			if dt := cur.at.Sub(h[0].at).Seconds(); dt > 0 {
				s.CopyRate = float64(cur.copied-h[0].copied) / dt
			}
		}
		if !final {
			h = append(h, cur)
			if len(h) > d.eta {
				h = h[len(h)-d.eta:]
			}
			d.hist[e] = h
		}
		rows = append(rows, s)
	}
	return rows
}

func (d *Display) render(final bool) string {
	rows := d.snapshot(final)
	w := d.o.Width() - 1 // never write the last column: some terminals wrap there
	if w < 10 {
		w = 10
	}
	if w != d.width {
		d.width, d.compact = w, false // resized: try exact numbers again
	}
	block, compact := renderBlock(d.st, headerTitle(final, d.o.Kind, d.o.Now().Sub(d.start)), d.o.Kind, rows, w, d.compact)
	// Once numbers had to be abbreviated, keep them so, so the columns do
	// not jump between frames.
	d.compact = compact
	return block
}

// plainBlock is the status as plain sentences, one line per entry.
func (d *Display) plainBlock(final bool) string {
	rows := d.snapshot(final)
	var b strings.Builder
	ts := d.o.Now().Format("2006/01/02 15:04:05")
	if final {
		fmt.Fprintf(&b, "%s %s:\n", ts, headerTitle(true, d.o.Kind, d.o.Now().Sub(d.start)))
	}
	for _, s := range rows {
		fmt.Fprintf(&b, "%s %s\n", ts, plainLine(d.o.Kind, s))
	}
	return b.String()
}

const (
	eraseFmt = "\r\x1b[%dA\x1b[J" // up n lines, erase to the end of the screen
)

func (d *Display) eraseLocked() {
	if d.drawn > 0 {
		fmt.Fprintf(d.o.Out, eraseFmt, d.drawn)
		d.drawn = 0
	}
}

func (d *Display) drawLocked(block string) {
	d.eraseLocked()
	io.WriteString(d.o.Out, block)
	d.block = block
	d.drawn = strings.Count(block, "\n")
}

// Prime takes the first sample without drawing, so that the first plain
// status line shows the rate over its interval.
func (d *Display) Prime() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.snapshot(false)
}

// Tick draws one frame: the block in place on a terminal, plain status
// lines elsewhere.
func (d *Display) Tick() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return
	}
	if d.o.TTY {
		d.drawLocked(d.render(false))
		return
	}
	io.WriteString(d.o.Out, d.plainBlock(false))
}

// Report prints the plain status lines now (SIGUSR1), above the block on a
// terminal.
func (d *Display) Report() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return
	}
	block := d.block
	d.eraseLocked()
	io.WriteString(d.o.Out, d.plainBlock(false))
	if d.o.TTY && block != "" {
		d.drawLocked(block)
	}
}

// Final draws the final state, which stays on the screen, and stops the
// display.
func (d *Display) Final() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return
	}
	d.done = true
	if d.o.TTY {
		d.drawLocked(d.render(true))
		d.drawn = 0 // leave it
		return
	}
	io.WriteString(d.o.Out, d.plainBlock(true))
}

// LogHook prints a log line above the block (for Env.SetLogHook).
func (d *Display) LogHook(out io.Writer, p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || d.drawn == 0 {
		return out.Write(p)
	}
	block := d.block
	d.eraseLocked()
	n, err := out.Write(p)
	d.drawLocked(block)
	return n, err
}

// Start is the Func of a real run: it draws the display on the standard
// error of env.IO until stop, which draws the final state and returns
// when the display is gone.
func Start(ctx context.Context, env Env, reg *stats.Registry, kind string) (stop func()) {
	ios := env.IO
	d := New(Options{
		Out:      ios.ErrOut,
		TTY:      ios.IsStderrTTY(),
		Width:    ios.TerminalWidth,
		Now:      env.Now,
		Kind:     kind,
		Registry: reg,
	})
	interval := PlainInterval
	restore := func() {}
	if d.o.TTY {
		interval = TTYInterval
		// When logs reach the same terminal (standard output is one too,
		// or the logs were moved to standard error, as diff --output json
		// does), log lines go above the block instead of tearing it.
		if env.SetLogHook != nil {
			restore = env.SetLogHook(func(out io.Writer, p []byte) (int, error) {
				if ios.IsStdoutTTY() || sameWriter(out, ios.ErrOut) {
					return d.LogHook(out, p)
				}
				return out.Write(p)
			})
		}
		d.Tick()
	} else {
		d.Prime()
	}
	return run(d, interval, restore)
}

func run(d *Display, interval time.Duration, restore func()) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	usr1 := make(chan os.Signal, 1)
	unnotify := notifyReport(usr1)
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				d.Tick()
			case <-usr1:
				d.Report()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			unnotify()
			close(quit)
			<-finished
			d.Final() // log lines now pass straight through
			restore()
		})
	}
}

// sameWriter reports whether a and b are the same writer; writers that
// cannot be compared are not.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
