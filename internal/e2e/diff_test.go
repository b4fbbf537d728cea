package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

// A merge diff (--parallel 4, a memory limit small enough that it spills)
// is SIGKILLed half-way through its scans and run again with the same
// arguments and state directory. The second run reports exactly the
// differences of an uninterrupted run (the JSON counts and the --report
// lines), and reads, counted at the wire, only what the killed run had
// not read, give or take a page per segment of each table: the pages the
// killed run read after its last checkpoint.
//
// The kill is placed by the items scanned, not by time: a proxy in front
// of DynamoDB Local counts the items of every Scan answer and, once half
// of both tables has been read, holds every further Scan; the test kills
// the process while it waits on them.
//
// It builds its own binary so that it runs alone too:
// go test -run TestDiffKilled ./internal/e2e
func TestDiffKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level tests are skipped under -short")
	}
	ddbtest.Endpoint(t) // skip early without DynamoDB Local
	bin := buildBinary(t, t.TempDir())
	n := envInt(t, "DDBSYNC_E2E_DIFF_ITEMS", 3000)
	const (
		segments  = 4
		scanLimit = 25 // also the smallest page the merge cuts to under --memory-limit 1MiB
	)
	c, _ := ddbtest.Clients(t)
	master, slave := ddbtest.Name(t, "e2e-dm"), ddbtest.Name(t, "e2e-ds")
	ddbtest.CreateTable(t, c, master, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, slave, ddbtest.StringKey)
	var ms, ss []map[string]types.AttributeValue
	for i := range n {
		it := item(fmt.Sprintf("k%07d", i), i)
		ms = append(ms, it)
		switch i % 50 {
		case 0: // missing from the slave
		case 1: // differing
			ss = append(ss, item(fmt.Sprintf("k%07d", i), -i))
		case 2: // and an extra item in the slave
			ss = append(ss, it, item(fmt.Sprintf("x%07d", i), i))
		default:
			ss = append(ss, it)
		}
	}
	ddbtest.PutItems(t, c, master, ms)
	ddbtest.PutItems(t, c, slave, ss)
	total := len(ms) + len(ss)

	args := func(endpoint, state, report string) []string {
		return []string{"diff", "--endpoint-url", endpoint, "--no-status", "--output", "json",
			"-m", "us-east-1:" + master, "-s", "us-east-1:" + slave,
			"--method", "merge", "--scan-for-extra", "--parallel", strconv.Itoa(segments), "--scan-limit", strconv.Itoa(scanLimit),
			"--memory-limit", "1MiB", "--state-dir", state, "--report", report}
	}
	dir := t.TempDir()

	// The uninterrupted run.
	ref := newScanGate(t, ddbtest.Endpoint(t), 0)
	p := start(t, bin, "diff-uninterrupted", args(ref.URL, filepath.Join(dir, "state-ref"), filepath.Join(dir, "ref.jsonl"))...)
	if code := p.wait(t, 3*time.Minute); code != 1 {
		t.Fatalf("uninterrupted diff exited %d, want 1 (differences found)", code)
	}
	want := summary(t, p.out.String())
	if ref.items.Load() != int64(total) {
		t.Fatalf("the uninterrupted run scanned %d items, want %d", ref.items.Load(), total)
	}

	// The run killed half-way.
	state, report := filepath.Join(dir, "state"), filepath.Join(dir, "resumed.jsonl")
	gate := newScanGate(t, ddbtest.Endpoint(t), int64(total/2))
	victim := start(t, bin, "diff-killed", args(gate.URL, state, report)...)
	poll(t, 2*time.Minute, "half of the items to be scanned and the next Scan held", func() bool { return gate.held.Load() > 0 || victim.exited() })
	if victim.exited() {
		t.Fatalf("the diff finished (exit %d) before it could be killed", victim.code)
	}
	victim.signal(t, syscall.SIGKILL)
	victim.wait(t, 30*time.Second)
	gate.release()
	readBefore := gate.items.Load()
	if cps, _ := filepath.Glob(filepath.Join(state, "diff-*", "checkpoint.json")); len(cps) != 1 {
		t.Fatalf("no diff checkpoint left by the killed run: %v", cps)
	}
	spills, _ := filepath.Glob(filepath.Join(state, "diff-*", "*.spill"))
	if len(spills) == 0 {
		t.Fatalf("the killed run left no spill files")
	}

	// The same command again.
	again := newScanGate(t, ddbtest.Endpoint(t), 0)
	p = start(t, bin, "diff-resumed", args(again.URL, state, report)...)
	if code := p.wait(t, 3*time.Minute); code != 1 {
		t.Fatalf("resumed diff exited %d, want 1 (differences found)", code)
	}
	got := summary(t, p.out.String())
	for k, v := range want {
		if got[k] != v {
			t.Errorf("resumed run: %s = %v, the uninterrupted run's %v", k, got[k], v)
		}
	}
	if !strings.Contains(p.errOut.String(), "resuming from") {
		t.Errorf("the second run did not resume:\n%s", tail(p.errOut.String()))
	}
	if !strings.Contains(victim.errOut.String()+p.errOut.String(), "spilling") {
		t.Errorf("no spill logged with --memory-limit 1MiB")
	}
	if a, b := reportLines(t, filepath.Join(dir, "ref.jsonl")), reportLines(t, report); a != b {
		t.Errorf("report of the resumed run differs:\nuninterrupted:\n%s\nresumed:\n%s", a, b)
	}
	readAfter := again.items.Load()
	slack := int64(2 * segments * scanLimit) // a page per segment of each table
	t.Logf("%d items in the two tables; the killed run read %d, the resumed run %d (left: %d, allowed: +%d)",
		total, readBefore, readAfter, int64(total)-readBefore, slack)
	if readBefore < int64(total/2) || readBefore >= int64(total) {
		t.Fatalf("the killed run read %d of %d items: not killed half-way", readBefore, total)
	}
	if readAfter > int64(total)-readBefore+slack {
		t.Fatalf("the resumed run read %d items; %d were left after the killed run's %d (a page per segment allowed: %d)",
			readAfter, int64(total)-readBefore, readBefore, slack)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "diff-*")); len(left) != 0 {
		t.Fatalf("state left after the finished run: %v", left)
	}
}

// summary reads the counts of the JSON summary's one slave, leaving out
// what depends on the run (consumed capacity).
func summary(t *testing.T, out string) map[string]any {
	t.Helper()
	var r struct{ Slaves []map[string]any }
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Slaves) != 1 {
		t.Fatalf("JSON summary: %v\n%s", err, out)
	}
	s := r.Slaves[0]
	delete(s, "consumed_rcu")
	delete(s, "consumed_wcu")
	if s["missing"] == 0.0 || s["differing"] == 0.0 || s["extra"] == 0.0 {
		t.Fatalf("the summary shows no differences: %v", s)
	}
	return s
}

// reportLines returns a --report file's lines, sorted.
func reportLines(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l := strings.Split(strings.TrimSpace(string(data)), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// scanGate is a reverse proxy in front of DynamoDB Local that counts the
// items of every Scan answer it forwards and, once limit items are
// counted (0: never), holds every further Scan until release.
type scanGate struct {
	URL   string
	items atomic.Int64
	held  atomic.Int64 // Scan requests waiting at the gate
	limit int64

	once sync.Once
	open chan struct{}
}

func newScanGate(t *testing.T, upstream string, limit int64) *scanGate {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	g := &scanGate{limit: limit, open: make(chan struct{})}
	client := &http.Client{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scan := strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".Scan")
		if scan && g.limit > 0 && g.items.Load() >= g.limit {
			g.held.Add(1)
			select {
			case <-g.open:
			case <-r.Context().Done():
			}
			http.Error(w, "held at the gate", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String()+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		respBody, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if scan && resp.StatusCode == http.StatusOK {
			var out struct{ Count int64 }
			if json.Unmarshal(respBody, &out) == nil {
				g.items.Add(out.Count)
			}
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(respBody)
	}))
	t.Cleanup(func() {
		g.release()
		srv.Close()
	})
	g.URL = srv.URL
	return g
}

func (g *scanGate) release() { g.once.Do(func() { close(g.open) }) }
