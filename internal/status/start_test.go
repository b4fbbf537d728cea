package status_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/internal/status"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func factory(tty bool) (*cmdutil.Factory, *lockedBuffer, *lockedBuffer) {
	ios, _, _, _ := iostreams.Test()
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	ios.Out, ios.ErrOut = out, errOut
	ios.SetTTY(false, tty, tty)
	ios.SetWidth(100)
	// A fixed clock: a tick in the middle of a test draws the same block.
	fixed := time.Date(2026, 11, 22, 22, 31, 4, 0, time.UTC)
	f := &cmdutil.Factory{IOStreams: ios, Globals: cmdutil.DefaultGlobals(), Now: func() time.Time { return fixed }, StartStatus: status.Start}
	return f, out, errOut
}

func oneEntry() *stats.Registry {
	reg := stats.NewRegistry()
	e := reg.Add(stats.NewEntry("in-table", "out-table"))
	stats.SetPhase(&e.BackfillPhase, stats.Complete)
	e.ItemsWritten.Store(1234)
	return reg
}

// Not a terminal: no escape codes, and the final state is always printed.
func TestStartPlain(t *testing.T) {
	f, out, errOut := factory(false)
	stop := f.Status(context.Background(), oneEntry(), "backfill")
	stop()
	stop() // twice is harmless
	got := errOut.String()
	if strings.Contains(got, "\x1b") {
		t.Errorf("escape codes on a non-terminal: %q", got)
	}
	if !strings.Contains(got, "Final Status · backfill") || !strings.Contains(got, "[in-table] ⇨ [out-table]: backfill complete, 1,234 items written") {
		t.Errorf("final state missing:\n%s", got)
	}
	if out.String() != "" {
		t.Errorf("the display wrote to stdout: %q", out.String())
	}
}

// --no-status: no display, but the run observers still run.
func TestNoStatusKeepsObservers(t *testing.T) {
	f, _, errOut := factory(true)
	f.Globals.NoStatus = true
	started := false
	f.RunObservers = append(f.RunObservers, func(context.Context, status.Env, *stats.Registry, string) func() {
		started = true
		return func() {}
	})
	f.Status(context.Background(), oneEntry(), "backfill")()
	if errOut.String() != "" || !started {
		t.Errorf("stderr %q (want nothing), observer started: %v", errOut.String(), started)
	}
}

// On a terminal shared by logs and status, log lines are printed above
// the block: the block is erased, the line written, the block redrawn.
func TestStartTTYRoutesLogLines(t *testing.T) {
	f, out, errOut := factory(true)
	l, err := f.Logger()
	if err != nil {
		t.Fatal(err)
	}
	stop := f.Status(context.Background(), oneEntry(), "backfill")
	before := errOut.String()
	if !strings.Contains(before, "Current Status · backfill") {
		t.Fatalf("no block drawn at start: %q", before)
	}
	l.Info("a log line")
	after := errOut.String()
	if !strings.Contains(out.String(), "a log line") {
		t.Errorf("log line lost: %q", out.String())
	}
	redraw := strings.TrimPrefix(after, before)
	if !strings.HasPrefix(redraw, "\r\x1b[3A\x1b[J") || !strings.Contains(redraw, "Current Status") {
		t.Errorf("the block was not erased and redrawn around the log line: %q", redraw)
	}
	stop()
	final := errOut.String()
	if !strings.Contains(final, "Final Status · backfill") {
		t.Errorf("no final state: %q", final)
	}
	l.Info("after the run")
	if errOut.String() != final {
		t.Error("log lines still go through the display after stop")
	}
	if !strings.Contains(out.String(), "after the run") {
		t.Error("log line after stop lost")
	}
}

// Logs moved to standard error (diff --output json) while standard output
// is a pipe: they still go above the block; logs to a piped standard
// output pass straight through.
func TestStartTTYLogsOnStderr(t *testing.T) {
	f, out, errOut := factory(true)
	f.IOStreams.SetTTY(false, false, true)
	l, err := f.Logger()
	if err != nil {
		t.Fatal(err)
	}
	stop := f.Status(context.Background(), oneEntry(), "diff")
	l.Info("to stdout")
	if strings.Contains(errOut.String(), "\x1b[J") {
		t.Errorf("a log line to a piped stdout redrew the block: %q", errOut.String())
	}
	restore := f.LogWriter().SetOutput(f.IOStreams.ErrOut)
	before := errOut.String()
	l.Info("to stderr")
	redraw := strings.TrimPrefix(errOut.String(), before)
	if !strings.HasPrefix(redraw, "\r\x1b[3A\x1b[J") || !strings.Contains(redraw, "to stderr") || !strings.HasSuffix(redraw, before[strings.LastIndex(before, "Current Status"):]) {
		t.Errorf("log line on stderr not put above the block: %q", redraw)
	}
	restore()
	stop()
	if !strings.Contains(out.String(), "to stdout") {
		t.Error("stdout log line lost")
	}
}

// lockedBuffer is a buffer the display and the test may use at once.
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
