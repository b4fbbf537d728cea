package status

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/ddbsync/ddbsync/pkg/stats"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/<name>.golden, escape codes made
// visible.
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, "\x1b", `\x1b`)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/status -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (run with -update after checking):\n--- got ---\n%s\n--- want ---\n%s", name, path, got, want)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 22, 22, 31, 4, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncRegistry has one entry in each interesting state.
func syncRegistry(c *clock) (*stats.Registry, func()) {
	reg := stats.NewRegistry()
	a := reg.Add(stats.NewEntry("us-east-1:orders", "eu-west-1:orders"))
	a.Started.Store(c.Now().UnixNano())
	a.ApproxItems.Store(1_200_000)
	a.ApproxBytes.Store(340_000_000)
	stats.SetPhase(&a.BackfillPhase, stats.Running)
	a.ItemsWritten.Store(800_000)
	a.ItemsSkipped.Store(40_000) // all by the filter
	a.ItemsFiltered.Store(40_000)
	a.BufferCap.Store(64)
	a.BufferLen.Store(40)
	a.ConsumedWCU.Store(810_000)

	b := reg.Add(stats.NewEntry("customers", "customers-copy"))
	b.Started.Store(c.Now().UnixNano())
	b.ApproxItems.Store(52_000)
	b.ApproxBytes.Store(9_100_000)
	stats.SetPhase(&b.BackfillPhase, stats.Complete)
	stats.SetPhase(&b.StreamPhase, stats.Running)
	b.ItemsWritten.Store(52_113)
	b.RecordsApplied.Store(1_000)
	b.LatencyMillis.Store(2300)
	b.RecordsFailed.Store(4)
	b.BufferCap.Store(64)

	x := reg.Add(stats.NewEntry("events", "a-very-long-output-table-name-for-the-events-service"))
	x.Started.Store(c.Now().UnixNano())
	stats.SetPhase(&x.BackfillPhase, stats.Failed)
	stats.SetPhase(&x.StreamPhase, stats.Skipped)
	x.ItemsWritten.Store(1_500)
	x.ItemsFailed.Store(3)

	advance := func() {
		a.ItemsWritten.Add(12_060) // 2,412/s over 5 s
		a.ConsumedWCU.Add(12_650)
		b.RecordsApplied.Add(250)
		b.ConsumedWCU.Add(250)
		b.BufferLen.Store(17)
	}
	return reg, advance
}

func diffRegistry(c *clock) (*stats.Registry, func()) {
	reg := stats.NewRegistry()
	a := reg.Add(stats.NewEntry("us-east-1:orders", "eu-west-1:orders"))
	a.Started.Store(c.Now().UnixNano())
	a.ApproxItems.Store(1_200_000)
	a.ApproxBytes.Store(340_000_000)
	stats.SetPhase(&a.DiffPhase, stats.Running)
	a.Scanned.Store(600_000)
	a.Missing.Store(12)
	a.Differing.Store(3)
	a.Repaired.Store(15)
	b := reg.Add(stats.NewEntry("us-east-1:orders", "ap-southeast-2:orders"))
	b.Started.Store(c.Now().UnixNano())
	b.ApproxItems.Store(1_200_000)
	stats.SetPhase(&b.DiffPhase, stats.Complete)
	b.Scanned.Store(1_201_234)
	b.Extra.Store(2)
	b.Deleted.Store(2)
	advance := func() {
		a.Scanned.Add(50_000)
		a.ConsumedRCU.Add(3_125)
	}
	return reg, advance
}

// frames runs a display on a terminal of width w: a first frame, a second
// one 5 s later, and the final state 5 s after that.
func frames(t *testing.T, kind string, w int, tty bool, mk func(*clock) (*stats.Registry, func())) string {
	t.Helper()
	c := newClock()
	reg, advance := mk(c)
	var buf bytes.Buffer
	r := lipgloss.NewRenderer(&buf)
	d := New(Options{Out: &buf, TTY: tty, Width: func() int { return w }, Now: c.Now, Kind: kind, Registry: reg, Renderer: r})
	d.Prime()
	d.Tick()
	c.Add(5 * time.Second)
	advance()
	d.Tick()
	c.Add(5 * time.Second)
	d.Final()
	d.Tick() // after Final: nothing
	return buf.String()
}

func checkWidth(t *testing.T, out string, w int) {
	t.Helper()
	for _, l := range strings.Split(stripped(out), "\n") {
		l = strings.TrimPrefix(l, "\r")
		if width(l) > w-1 {
			t.Errorf("line wider than %d-1 cells (%d): %q", w, width(l), l)
		}
	}
}

func TestDisplayGolden(t *testing.T) {
	for _, tc := range []struct {
		kind string
		mk   func(*clock) (*stats.Registry, func())
	}{
		{"sync", syncRegistry},
		{"backfill", syncRegistry},
		{"stream", syncRegistry},
		{"diff", diffRegistry},
	} {
		for _, w := range []int{80, 120} {
			name := tc.kind + "_tty_" + map[int]string{80: "80", 120: "120"}[w]
			t.Run(name, func(t *testing.T) {
				out := frames(t, tc.kind, w, true, tc.mk)
				checkWidth(t, out, w)
				golden(t, name, out)
			})
		}
		t.Run(tc.kind+"_plain", func(t *testing.T) {
			out := frames(t, tc.kind, 80, false, tc.mk)
			if strings.Contains(out, "\x1b") {
				t.Errorf("escape codes in non-terminal output:\n%q", out)
			}
			golden(t, tc.kind+"_plain", out)
		})
	}
}

func TestDisplayNeverWraps(t *testing.T) {
	for _, kind := range []string{"sync", "diff"} {
		mk := syncRegistry
		if kind == "diff" {
			mk = diffRegistry
		}
		for w := 20; w <= 200; w += 7 {
			checkWidth(t, frames(t, kind, w, true, mk), w)
		}
	}
}

func TestRatesAreDeltasOverTheInterval(t *testing.T) {
	c := newClock()
	reg := stats.NewRegistry()
	e := reg.Add(stats.NewEntry("in", "out"))
	e.ItemsWritten.Store(1_000_000) // already there when the display starts
	d := New(Options{Out: &bytes.Buffer{}, TTY: false, Now: c.Now, Kind: "backfill", Registry: reg})
	d.Prime()
	for i := 0; i < 3; i++ {
		c.Add(30 * time.Second)
		e.ItemsWritten.Add(int64(3000 * (i + 1))) // 100/s, 200/s, 300/s
		e.ConsumedWCU.Add(float64(6000 * (i + 1)))
		d.mu.Lock()
		rows := d.snapshot(false)
		d.mu.Unlock()
		if want := float64(100 * (i + 1)); rows[0].ItemsRate != want || rows[0].WCURate != 2*want {
			t.Errorf("interval %d: items/s %v, WCU/s %v; want %v and %v", i, rows[0].ItemsRate, rows[0].WCURate, want, 2*want)
		}
	}
	d.mu.Lock()
	rows := d.snapshot(true)
	d.mu.Unlock()
	// Final: the average over the run, without the counts it started with.
	if rows[0].ItemsRate != 200 {
		t.Errorf("final items/s %v, want 200 (18,000 items in 90 s)", rows[0].ItemsRate)
	}
	if rows[0].ItemsWritten != 1_018_000 {
		t.Errorf("items written %d, want the exact counter 1,018,000", rows[0].ItemsWritten)
	}
}

func TestLogLinesGoAboveTheBlock(t *testing.T) {
	c := newClock()
	reg, _ := syncRegistry(c)
	var errOut, out bytes.Buffer
	d := New(Options{Out: &errOut, TTY: true, Width: func() int { return 120 }, Now: c.Now, Kind: "sync", Registry: reg})
	d.Tick()
	block := errOut.String()
	lines := strings.Count(block, "\n")
	errOut.Reset()
	// On a real terminal out and errOut are the same screen; here they are
	// two buffers, so check the order of operations on each.
	if _, err := d.LogHook(&out, []byte("2026/11/22 22:31:05 a log line\n")); err != nil {
		t.Fatal(err)
	}
	if out.String() != "2026/11/22 22:31:05 a log line\n" {
		t.Errorf("log line not written as is: %q", out.String())
	}
	want := "\r\x1b[" + strconv.Itoa(lines) + "A\x1b[J" + block
	if errOut.String() != want {
		t.Errorf("block not erased and redrawn below the log line:\n got %q\nwant %q", errOut.String(), want)
	}
	d.Final()
	errOut.Reset()
	out.Reset()
	d.LogHook(&out, []byte("after\n"))
	if errOut.Len() != 0 || out.String() != "after\n" {
		t.Errorf("after Final, log lines must pass straight through; stderr got %q", errOut.String())
	}
}

func TestInterruptedBackfillShowsStopped(t *testing.T) {
	c := countCell(stats.Stopped, 1234, 5000, 0, true)
	if !strings.Contains(c.text, "-STOPPED-") || !strings.Contains(c.text, "1,234") {
		t.Errorf("stopped backfill cell = %q, want -STOPPED- with the items written", c.text)
	}
	if got := phaseText(stats.Stopped, 1234, 5000, "items written"); got != "stopped, 1,234 items written" {
		t.Errorf("plain text = %q", got)
	}
}
