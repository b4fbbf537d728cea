package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                         { return c.t }
func (c fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

func newTest(t *testing.T, format, level string) (*zap.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, err := New(&buf, Options{Format: format, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	return l.WithOptions(zap.WithClock(fixedClock{time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)})), &buf
}

func TestTextFormat(t *testing.T) {
	l, buf := newTest(t, "text", "debug")
	l.Info("starting")
	e := ForEntry(l, "src-table", "dst-table")
	e.Info("backfill complete")
	e.Info("copied", zap.Int("items", 5), zap.Duration("took", 3*time.Second), zap.String("segment", "0 of 4"), zap.String("empty", ""))
	e.With(zap.String("phase", "stream"), zap.Int("shard", 2)).Info("applied", zap.Int64("records", 10))
	e.Warn("throttled")
	e.Error("failed", zap.Error(errors.New(`write "x" failed`)))
	e.Debug("detail", zap.Strings("keys", []string{"a", "b"}))
	want := strings.Join([]string{
		"2006/01/02 15:04:05 starting",
		"2006/01/02 15:04:05 [src-table] ⇨ [dst-table]: backfill complete",
		`2006/01/02 15:04:05 [src-table] ⇨ [dst-table]: copied items=5 took=3s segment="0 of 4" empty=""`,
		"2006/01/02 15:04:05 [src-table] ⇨ [dst-table]: applied phase=stream shard=2 records=10",
		"2006/01/02 15:04:05 WARN [src-table] ⇨ [dst-table]: throttled",
		`2006/01/02 15:04:05 ERROR [src-table] ⇨ [dst-table]: failed error="write \"x\" failed"`,
		`2006/01/02 15:04:05 DEBUG [src-table] ⇨ [dst-table]: detail keys=["a","b"]`,
	}, "\n") + "\n"
	if buf.String() != want {
		t.Errorf("text log:\n%s\nwant:\n%s", buf, want)
	}
	if strings.Contains(buf.String(), "  ") {
		t.Errorf("double space in %q", buf)
	}
}

func TestLevelFilter(t *testing.T) {
	l, buf := newTest(t, "", "warn")
	l.Info("hidden")
	l.Debug("hidden")
	l.Warn("shown")
	if buf.String() != "2006/01/02 15:04:05 WARN shown\n" {
		t.Errorf("got %q", buf)
	}
}

func TestJSONFormat(t *testing.T) {
	l, buf := newTest(t, "json", "")
	ForEntry(l, "src-table", "dst-table").Info("copied", zap.Int("items", 5), zap.Duration("took", 1500*time.Millisecond))
	l.Warn("plain")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	want := `{"level":"info","time":"2006-01-02T15:04:05.000Z","entry":"[src-table] ⇨ [dst-table]","msg":"copied","items":5,"took":"1.5s"}`
	if lines[0] != want {
		t.Errorf("json line\n got %s\nwant %s", lines[0], want)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil || m["level"] != "warn" || m["msg"] != "plain" {
		t.Errorf("second line %s: %v %v", lines[1], m, err)
	}
	if _, ok := m["entry"]; ok {
		t.Errorf("entry set without ForEntry: %v", m)
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := New(nil, Options{Format: "xml"}); err == nil || err.Error() != `--log-format "xml" is not one of text, json` {
		t.Errorf("format: %v", err)
	}
	if _, err := New(nil, Options{Level: "loud"}); err == nil || err.Error() != `--log-level "loud" is not one of debug, info, warn, error` {
		t.Errorf("level: %v", err)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{"plain": "plain", "a b": `"a b"`, "k=v": `"k=v"`, "tab\t": `"tab\t"`, "⇨": "⇨"} {
		if got := quoteIfNeeded(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
	_ = zapcore.InfoLevel
}
