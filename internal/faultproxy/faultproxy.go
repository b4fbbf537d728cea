// Package faultproxy is a fault-injecting HTTP proxy for tests. It sits in
// front of DynamoDB Local (clients use its URL as their endpoint) and, at
// configurable rates per operation and per fault kind, answers with the
// failures real DynamoDB produces: throttling errors in the exact AWS JSON
// shape, 500 and 503 responses, dropped connections (before or after the
// request reached DynamoDB Local), slow responses, and partial
// BatchWriteItem/BatchGetItem results (UnprocessedItems/UnprocessedKeys).
//
// DynamoDB (X-Amz-Target DynamoDB_20120810.*) and DynamoDB Streams
// (DynamoDBStreams_20120810.*) requests are both forwarded. Decisions come
// from one seeded random source, so a sequential workload meets the same
// faults on every run; with concurrent clients the order in which requests
// draw depends on scheduling.
//
// Typical use from a test:
//
//	p, err := faultproxy.New(faultproxy.Options{
//		Upstream: ddbtest.Endpoint(t),
//		Seed:     1,
//		Rules:    []faultproxy.Rule{{Kind: faultproxy.Any, Rate: 0.1}},
//	})
//	if err != nil {
//		t.Fatal(err)
//	}
//	t.Cleanup(p.Close)
//	prov := creds.New(creds.Options{EndpointURL: p.URL})
//	// … run the workload, then assert p.Count("", faultproxy.Any) > 0
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is a kind of injected fault.
type Kind string

// The concrete fault kinds. Each is injected only into the operations it
// applies to (see Applies).
const (
	// ProvisionedThroughputExceeded is HTTP 400
	// ProvisionedThroughputExceededException (DynamoDB operations).
	ProvisionedThroughputExceeded Kind = "ProvisionedThroughputExceededException"
	// ThrottlingException is HTTP 400 ThrottlingException (DynamoDB).
	ThrottlingException Kind = "ThrottlingException"
	// RequestLimitExceeded is HTTP 400 RequestLimitExceeded (DynamoDB).
	RequestLimitExceeded Kind = "RequestLimitExceeded"
	// LimitExceeded is HTTP 400 LimitExceededException, the throttling
	// error of DynamoDB Streams (Streams operations only).
	LimitExceeded Kind = "LimitExceededException"
	// InternalServerError is HTTP 500 InternalServerError.
	InternalServerError Kind = "InternalServerError"
	// ServiceUnavailable is HTTP 503 ServiceUnavailable.
	ServiceUnavailable Kind = "ServiceUnavailable"
	// DropBefore closes the connection without forwarding the request or
	// answering: nothing was done, the client sees a connection error.
	DropBefore Kind = "DropBeforeForward"
	// DropAfter forwards the request, then closes the connection without
	// answering: the operation happened, the client sees a connection
	// error and must retry idempotently.
	DropAfter Kind = "DropAfterForward"
	// UnprocessedItems forwards a random strict subset of a
	// BatchWriteItem's requests and returns the rest as UnprocessedItems
	// (BatchWriteItem only; batches of one request pass unchanged).
	UnprocessedItems Kind = "UnprocessedItems"
	// UnprocessedKeys forwards a random strict subset of a BatchGetItem's
	// keys and returns the rest as UnprocessedKeys (BatchGetItem only;
	// batches of one key pass unchanged).
	UnprocessedKeys Kind = "UnprocessedKeys"
	// ResourceNotFound is HTTP 400 ResourceNotFoundException, what
	// DynamoDB answers once a table was deleted (DynamoDB operations). It
	// is not retryable, so Any never draws it: name it in a rule.
	ResourceNotFound Kind = "ResourceNotFoundException"
	// Slow delays the answer (whatever it is) by Options.SlowDelay. It is
	// drawn independently of the other kinds, so a slow request may also
	// fail.
	Slow Kind = "Slow"
)

// Meta kinds, usable in rules and in Count.
const (
	// Throttle is the throttling error of the operation's service: one of
	// the three DynamoDB throttling codes at random, or Streams'
	// LimitExceededException.
	Throttle Kind = "Throttle"
	// Any is any fault kind that applies to the operation, chosen
	// uniformly (Slow excluded).
	Any Kind = "Any"
)

// Failures lists the concrete kinds other than Slow, in the order rules
// are documented.
var Failures = []Kind{
	ProvisionedThroughputExceeded, ThrottlingException, RequestLimitExceeded, LimitExceeded,
	InternalServerError, ServiceUnavailable, DropBefore, DropAfter, UnprocessedItems, UnprocessedKeys,
}

var throttles = []Kind{ProvisionedThroughputExceeded, ThrottlingException, RequestLimitExceeded, LimitExceeded}

// Service names as they appear in X-Amz-Target.
const (
	ServiceDynamoDB = "DynamoDB_20120810"
	ServiceStreams  = "DynamoDBStreams_20120810"
)

// Applies reports whether a concrete kind can be injected into operation
// op of service (ServiceDynamoDB or ServiceStreams).
func Applies(k Kind, service, op string) bool {
	switch k {
	case ProvisionedThroughputExceeded, ThrottlingException, RequestLimitExceeded:
		return service == ServiceDynamoDB
	case LimitExceeded:
		return service == ServiceStreams
	case InternalServerError, ServiceUnavailable, DropBefore, DropAfter, Slow:
		return service == ServiceDynamoDB || service == ServiceStreams
	case ResourceNotFound:
		return service == ServiceDynamoDB
	case UnprocessedItems:
		return service == ServiceDynamoDB && op == "BatchWriteItem"
	case UnprocessedKeys:
		return service == ServiceDynamoDB && op == "BatchGetItem"
	}
	return false
}

// expand returns the concrete kinds a (possibly meta) kind stands for in
// one operation.
func expand(k Kind, service, op string) []Kind {
	var from []Kind
	switch k {
	case Throttle:
		from = throttles
	case Any:
		from = Failures
	default:
		from = []Kind{k}
	}
	var out []Kind
	for _, c := range from {
		if Applies(c, service, op) {
			out = append(out, c)
		}
	}
	return out
}

func known(k Kind) bool {
	switch k {
	case Throttle, Any, Slow, ResourceNotFound:
		return true
	}
	for _, f := range Failures {
		if f == k {
			return true
		}
	}
	return false
}

// Rule injects Kind into a fraction Rate (0 to 1) of the requests of
// operation Op ("" means every operation). For each request, the
// matching rules other than Slow are tried in order with one random draw:
// their rates add up, so the chance that a request fails is the sum of
// the rates of the rules that apply to it (capped at 1).
type Rule struct {
	Op   string
	Kind Kind
	Rate float64
}

func (r Rule) validate() error {
	if !known(r.Kind) {
		return fmt.Errorf("faultproxy: unknown fault kind %q (allowed: %s, %s, %s, %s, or one of %v)", r.Kind, Any, Throttle, Slow, ResourceNotFound, Failures)
	}
	if !(r.Rate >= 0 && r.Rate <= 1) {
		return fmt.Errorf("faultproxy: rate %v for %s on %q is out of range: it must be between 0 and 1", r.Rate, r.Kind, r.Op)
	}
	return nil
}

// Event describes one injected fault.
type Event struct {
	Seq  int64 // request number, from 1, in arrival order
	Op   string
	Kind Kind
	// Held is the number of write requests or keys held back by
	// UnprocessedItems/UnprocessedKeys.
	Held int
}

// Options configure a Proxy.
type Options struct {
	// Upstream is the DynamoDB Local endpoint, e.g. http://127.0.0.1:8000.
	Upstream string
	// Seed of the random source that makes every decision.
	Seed uint64
	// Rules are the initial fault rates; change them with SetRate/SetRules.
	Rules []Rule
	// SlowDelay is how long a Slow fault delays the answer; zero means
	// 200 ms.
	SlowDelay time.Duration
	// OnInject, when set, is called synchronously for every injected fault
	// (from the request's goroutine).
	OnInject func(Event)
}

// Key identifies a counter.
type Key struct {
	Op   string
	Kind Kind
}

// Proxy is a running fault-injecting proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	// URL is the proxy's endpoint, http://127.0.0.1:port.
	URL string

	upstream  *url.URL
	client    *http.Client
	server    *http.Server
	listener  net.Listener
	ctx       context.Context
	cancel    context.CancelFunc
	served    chan struct{}
	slow      time.Duration
	onInject  func(Event)
	seq       atomic.Int64
	closeOnce sync.Once

	mu       sync.Mutex
	rng      *rand.Rand
	rules    []Rule
	counts   map[Key]int64
	requests map[string]int64
}

// New validates the options and starts a proxy on a free loopback port.
func New(opts Options) (*Proxy, error) {
	u, err := url.Parse(opts.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: upstream %q is not an http(s) URL such as http://127.0.0.1:8000", opts.Upstream)
	}
	for _, r := range opts.Rules {
		if err := r.validate(); err != nil {
			return nil, err
		}
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = 200 * time.Millisecond
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		URL:      "http://" + ln.Addr().String(),
		upstream: u,
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:               nil,
				DisableCompression:  true, // pass bodies through byte for byte
				MaxIdleConns:        256,
				MaxIdleConnsPerHost: 256,
				IdleConnTimeout:     30 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		listener: ln,
		ctx:      ctx,
		cancel:   cancel,
		served:   make(chan struct{}),
		slow:     opts.SlowDelay,
		onInject: opts.OnInject,
		rng:      rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		rules:    append([]Rule(nil), opts.Rules...),
		counts:   map[Key]int64{},
		requests: map[string]int64{},
	}
	p.server = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          nil,
	}
	go func() {
		defer close(p.served)
		_ = p.server.Serve(ln)
	}()
	return p, nil
}

// Close stops the proxy: in-flight requests are cut off and later ones
// are refused. It is safe to call more than once.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		p.cancel()
		_ = p.server.Close()
		<-p.served
		p.client.CloseIdleConnections()
	})
}

// SetRate sets the rate of kind on operation op ("" for every operation),
// replacing the rule with the same op and kind or adding one at the end.
// A rate of 0 turns the fault off.
func (p *Proxy) SetRate(op string, kind Kind, rate float64) error {
	r := Rule{Op: op, Kind: kind, Rate: rate}
	if err := r.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.rules {
		if p.rules[i].Op == op && p.rules[i].Kind == kind {
			p.rules[i].Rate = rate
			return nil
		}
	}
	p.rules = append(p.rules, r)
	return nil
}

// SetRules replaces every rule; nil turns all faults off.
func (p *Proxy) SetRules(rules []Rule) error {
	for _, r := range rules {
		if err := r.validate(); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append([]Rule(nil), rules...)
	return nil
}

// Rules returns a copy of the current rules.
func (p *Proxy) Rules() []Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Rule(nil), p.rules...)
}

// Count returns how many faults of kind were injected into operation op.
// op "" counts every operation; kind Any counts every kind but Slow, and
// Throttle every throttling code.
func (p *Proxy) Count(op string, kind Kind) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for k, v := range p.counts {
		if op != "" && k.Op != op {
			continue
		}
		switch {
		case kind == Any && k.Kind != Slow, kind == k.Kind:
			n += v
		case kind == Throttle:
			for _, t := range throttles {
				if t == k.Kind {
					n += v
				}
			}
		}
	}
	return n
}

// Counts returns a copy of every non-zero fault counter.
func (p *Proxy) Counts() map[Key]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Key]int64, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// Requests returns how many requests for op ("" for all) the proxy
// received, faulted or not.
func (p *Proxy) Requests(op string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if op != "" {
		return p.requests[op]
	}
	var n int64
	for _, v := range p.requests {
		n += v
	}
	return n
}

// Summary is a one-line description of the counters, for test logs.
func (p *Proxy) Summary() string {
	counts := p.Counts()
	keys := make([]Key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Op != keys[j].Op {
			return keys[i].Op < keys[j].Op
		}
		return keys[i].Kind < keys[j].Kind
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests", p.Requests(""))
	for _, k := range keys {
		fmt.Fprintf(&b, ", %s %s=%d", k.Op, k.Kind, counts[k])
	}
	return b.String()
}

// decision is what happens to one request.
type decision struct {
	seq  int64
	kind Kind // "" for none
	slow bool
	rnd  *rand.Rand // private to the request, seeded from the proxy's source
}

func (p *Proxy) decide(service, op string) decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := decision{seq: p.seq.Add(1)}
	p.requests[op]++
	if service != ServiceDynamoDB && service != ServiceStreams {
		return d
	}
	// Fixed number of draws per request keeps the sequence reproducible
	// whatever the rules are.
	u, us, pick := p.rng.Float64(), p.rng.Float64(), p.rng.Uint64()
	d.rnd = rand.New(rand.NewPCG(p.rng.Uint64(), p.rng.Uint64()))
	cum, slow := 0.0, 0.0
	for _, r := range p.rules {
		if r.Op != "" && r.Op != op {
			continue
		}
		if r.Kind == Slow {
			slow += r.Rate
			continue
		}
		kinds := expand(r.Kind, service, op)
		if len(kinds) == 0 || r.Rate == 0 {
			continue
		}
		cum += r.Rate
		if d.kind == "" && u < cum {
			d.kind = kinds[pick%uint64(len(kinds))]
		}
	}
	d.slow = slow > 0 && us < slow
	return d
}

func (p *Proxy) record(d decision, op string, kind Kind, held int) {
	p.mu.Lock()
	p.counts[Key{Op: op, Kind: kind}]++
	p.mu.Unlock()
	if p.onInject != nil {
		p.onInject(Event{Seq: d.seq, Op: op, Kind: kind, Held: held})
	}
}

// parseTarget splits "DynamoDB_20120810.PutItem".
func parseTarget(target string) (service, op string) {
	service, op, ok := strings.Cut(target, ".")
	if !ok {
		return "", target
	}
	return service, op
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	service, op := parseTarget(r.Header.Get("X-Amz-Target"))
	d := p.decide(service, op)
	if d.slow {
		p.record(d, op, Slow, 0)
	}
	ctx := r.Context()
	if p.answerFault(ctx, w, d, op) {
		return
	}

	var part *partial
	switch d.kind {
	case UnprocessedItems:
		part, err = splitBatchWrite(body, d.rnd)
	case UnprocessedKeys:
		part, err = splitBatchGet(body, d.rnd)
	}
	if err != nil {
		// Not a request we understand: let DynamoDB Local judge it.
		part = nil
	}
	fwdBody := body
	if part != nil {
		fwdBody = part.forward
	}

	resp, err := p.forward(ctx, r, fwdBody, part != nil)
	if err != nil {
		if ctx.Err() == nil {
			writeError(w, d, http.StatusBadGateway, InternalServerError, "faultproxy: upstream unreachable: "+err.Error())
		}
		return
	}

	if d.kind == DropAfter {
		p.record(d, op, d.kind, 0)
		if p.delay(ctx, d) {
			drop(w)
		}
		return
	}
	if part != nil && resp.status == http.StatusOK {
		merged, err := part.merge(resp.body)
		if err != nil {
			// The held-back part must never be lost: fail the whole
			// request so that the client sends all of it again.
			writeError(w, d, http.StatusInternalServerError, InternalServerError, "faultproxy: cannot add the held-back part to the response: "+err.Error())
			return
		}
		resp.body = merged
		resp.header.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(merged)), 10))
		resp.header.Set("X-Faultproxy-Fault", string(d.kind))
		p.record(d, op, d.kind, part.held)
	}
	if !p.delay(ctx, d) {
		return
	}
	h := w.Header()
	for k, vs := range resp.header {
		if hopHeaders[http.CanonicalHeaderKey(k)] {
			continue
		}
		h[k] = vs
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// answerFault answers the faults that never reach DynamoDB Local (errors
// and a connection dropped before forwarding) and reports whether it did.
func (p *Proxy) answerFault(ctx context.Context, w http.ResponseWriter, d decision, op string) bool {
	var status int
	var msg string
	switch d.kind {
	case ProvisionedThroughputExceeded, ThrottlingException, RequestLimitExceeded, LimitExceeded:
		status, msg = http.StatusBadRequest, throttleMessage(d.kind)
	case ResourceNotFound:
		status, msg = http.StatusBadRequest, "Requested resource not found"
	case InternalServerError:
		status, msg = http.StatusInternalServerError, "Internal server error"
	case ServiceUnavailable:
		status, msg = http.StatusServiceUnavailable, "The service is currently unavailable or busy."
	case DropBefore:
	default:
		return false
	}
	p.record(d, op, d.kind, 0)
	if !p.delay(ctx, d) {
		return true
	}
	if d.kind == DropBefore {
		drop(w)
	} else {
		writeError(w, d, status, d.kind, msg)
	}
	return true
}

// delay sleeps for a Slow fault; false means the request or proxy ended.
func (p *Proxy) delay(ctx context.Context, d decision) bool {
	if !d.slow {
		return ctx.Err() == nil
	}
	t := time.NewTimer(p.slow)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

type upstreamResponse struct {
	status int
	header http.Header
	body   []byte
}

var hopHeaders = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Proxy-Connection":    true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Content-Length":      true,
}

func (p *Proxy) forward(ctx context.Context, r *http.Request, body []byte, rewritten bool) (*upstreamResponse, error) {
	u := *p.upstream
	u.Path = strings.TrimSuffix(u.Path, "/") + r.URL.Path
	u.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		if hopHeaders[http.CanonicalHeaderKey(k)] {
			continue
		}
		req.Header[k] = vs
	}
	if rewritten {
		// The response will be rewritten: make sure it is not compressed.
		req.Header.Set("Accept-Encoding", "identity")
	}
	req.ContentLength = int64(len(body))
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &upstreamResponse{status: resp.StatusCode, header: resp.Header.Clone(), body: b}, nil
}

// drop closes the client's connection without an answer (with a TCP
// reset, as a crashed or overloaded front end would).
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func throttleMessage(k Kind) string {
	switch k {
	case ProvisionedThroughputExceeded:
		return "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
	case ThrottlingException:
		return "Rate of requests exceeds the allowed throughput."
	case RequestLimitExceeded:
		return "Throughput exceeds the current throughput limit for your account. Please contact AWS Support at https://aws.amazon.com/support request a limit increase"
	default:
		return "Rate exceeded for shard"
	}
}

// errorNamespace prefixes __type, as in real DynamoDB and Streams
// responses; the SDK strips everything up to '#'.
const errorNamespace = "com.amazonaws.dynamodb.v20120810#"

// writeError answers with an AWS JSON 1.0 error, including the CRC32
// header real DynamoDB sends.
func writeError(w http.ResponseWriter, d decision, status int, kind Kind, msg string) {
	body, _ := marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{errorNamespace + string(kind), msg})
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-Requestid", requestID(d))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	h.Set("X-Faultproxy-Fault", string(kind))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func requestID(d decision) string {
	var a, b uint64
	if d.rnd != nil {
		a, b = d.rnd.Uint64(), d.rnd.Uint64()
	}
	return fmt.Sprintf("FAULTPROXY%06d%016X%04X", d.seq%1e6, a, b&0xffff)
}

// marshal is json.Marshal without HTML escaping and without the trailing
// newline of an Encoder.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
