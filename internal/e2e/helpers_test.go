package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

// buildBinary builds cmd/ddbsync into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "ddbsync")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ddbsync/ddbsync/cmd/ddbsync")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one ddbsync process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    *syncBuffer
	errOut *syncBuffer
	done   chan struct{}
	code   int
}

func start(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &syncBuffer{}, errOut: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.errOut
	p.cmd.Env = os.Environ() // ddbtest.Main set dummy credentials and the region
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		case err != nil:
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s stdout:\n%s\n--- %s stderr:\n%s", name, tail(p.out.String()), name, tail(p.errOut.String()))
		}
	})
	return p
}

func tail(s string) string {
	const max = 12000
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s", p.name, timeout)
		return -1
	}
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !p.exited() {
		t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// poll calls cond until it is true or the deadline passes.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// envInt reads an integer knob from the environment.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func countItems(t *testing.T, c *dynamodb.Client, table string) int {
	t.Helper()
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: &table, Select: types.SelectCount})
	n := 0
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		n += int(out.Count)
	}
	return n
}

// sameItems reports whether two tables hold the same items (a quick
// check for polling; ddbtest.AssertSameItems is the one that reports).
func sameItems(t *testing.T, c *dynamodb.Client, a, b string) bool {
	t.Helper()
	index := func(table string) map[string]map[string]types.AttributeValue {
		m := map[string]map[string]types.AttributeValue{}
		for _, it := range ddbtest.ScanAll(t, c, table) {
			m[it["pk"].(*types.AttributeValueMemberS).Value] = it
		}
		return m
	}
	x, y := index(a), index(b)
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if !reflect.DeepEqual(y[k], v) {
			return false
		}
	}
	return true
}

// writeCounter is a reverse proxy in front of DynamoDB Local that counts
// the items BatchWriteItem really wrote (requests minus UnprocessedItems),
// over every process that goes through it, killed ones included.
type writeCounter struct {
	URL     string
	written atomic.Int64
}

func newWriteCounter(t *testing.T, upstream string) *writeCounter {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	wc := &writeCounter{}
	client := &http.Client{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".BatchWriteItem") && resp.StatusCode == http.StatusOK {
			wc.written.Add(int64(batchCount(body, "RequestItems") - batchCount(respBody, "UnprocessedItems")))
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(respBody)
	}))
	t.Cleanup(srv.Close)
	wc.URL = srv.URL
	return wc
}

// batchCount counts the put requests of a BatchWriteItem body's field.
func batchCount(body []byte, field string) int {
	var doc map[string]map[string][]map[string]json.RawMessage
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return 0
	}
	n := 0
	if f, ok := raw[field]; ok {
		_ = json.Unmarshal([]byte(`{"x":`+string(f)+`}`), &doc)
		for _, reqs := range doc["x"] {
			for _, r := range reqs {
				if _, ok := r["PutRequest"]; ok {
					n++
				}
			}
		}
	}
	return n
}

// countLines counts the log lines matching re.
func countLines(s string, re *regexp.Regexp) int {
	return len(re.FindAllStringIndex(s, -1))
}
