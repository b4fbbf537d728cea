package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/faultproxy"
	"github.com/ddbsync/ddbsync/pkg/diff"
)

// Generous deadlines: the machine may be busy. None of them is a timing
// assertion; each only stops a hung run.
const (
	runTimeout      = 4 * time.Minute // a run that exits by itself
	triggerTimeout  = 3 * time.Minute // until the log line an interruption waits for
	exitTimeout     = time.Minute     // after SIGTERM or SIGKILL
	convergeTimeout = 4 * time.Minute // leased workers catching up at the end
)

var triggers = map[Trigger]*regexp.Regexp{
	// A later phase counts too: a resumed run may skip the scan.
	AtScan:     regexp.MustCompile(`Backfill started|[Bb]ackfill already complete|\]: streaming `),
	AtHandover: regexp.MustCompile(`Backfill complete|[Bb]ackfill already complete|\]: streaming `),
	AtStream:   regexp.MustCompile(`\]: streaming `),
}

// runner carries out one schedule.
type runner struct {
	t        *testing.T
	s        *Schedule
	bin      string
	c        *dynamodb.Client
	src, dst string
	ckpt     string
	endpoint string // what the processes talk to: DynamoDB Local or the fault proxy
	proxy    *faultproxy.Proxy
	logDir   string
	stateDir string
	start    time.Time
	w        *writer
	procs    []*proc
	workers  []*proc // leased: by worker number
	contBy   time.Time
	events   []string
	step     string
}

func (r *runner) event(format string, args ...any) {
	r.events = append(r.events, fmt.Sprintf("%7.1fs  %s", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...)))
}

// fail stops the seed with everything needed to understand and replay it.
func (r *runner) fail(format string, args ...any) {
	r.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d FAILED at %s: %s\n\n", r.s.Seed, r.step, fmt.Sprintf(format, args...))
	b.WriteString("schedule:\n")
	b.WriteString(r.s.String())
	b.WriteString("\nwhat happened:\n")
	for _, e := range r.events {
		b.WriteString("  " + e + "\n")
	}
	if r.w != nil {
		fmt.Fprintf(&b, "writer: %s\n", r.w.summary())
	}
	if r.proxy != nil {
		fmt.Fprintf(&b, "fault proxy: %s\n", r.proxy.Summary())
	}
	fmt.Fprintf(&b, "logs of every run: %s\nreplay: make chaos SEED=%d", r.logDir, r.s.Seed)
	r.t.Fatal(b.String())
}

// runSchedule runs one seed's schedule against DynamoDB Local.
func runSchedule(t *testing.T, bin string, s *Schedule) {
	c, _ := ddbtest.Clients(t)
	logDir, err := os.MkdirTemp("", fmt.Sprintf("ddbsync-chaos-seed-%d-", s.Seed))
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{t: t, s: s, bin: bin, c: c, endpoint: ddbtest.Endpoint(t), logDir: logDir,
		stateDir: t.TempDir(), start: time.Now(), step: "setup"}
	r.src, r.dst, r.ckpt = ddbtest.Name(t, "chaos-in"), ddbtest.Name(t, "chaos-out"), ddbtest.Name(t, "chaos-ckpt")
	t.Cleanup(func() {
		for _, p := range r.procs {
			p.stop()
		}
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(r.ckpt)})
		if !t.Failed() && os.Getenv("DDBSYNC_CHAOS_KEEP_LOGS") == "" {
			_ = os.RemoveAll(logDir)
		}
	})
	r.setup()
	r.w = startWriter(c, r.src, s.Items*6/5, s.Seed, r.start)
	r.event("writer started")
	t.Cleanup(func() { _ = r.w.stop() })
	for i, st := range s.Steps {
		r.step = fmt.Sprintf("step %d (%s)", i+1, st)
		r.event("step %d: %s", i+1, st)
		r.do(st)
		if err := r.writerErr(); err != nil {
			r.fail("the writer failed: %v", err)
		}
	}
	r.step = fmt.Sprintf("step %d (final)", len(s.Steps)+1)
	if s.Leased {
		r.finalLeased()
	} else {
		r.finalLocal()
	}
	r.t.Logf("seed %d passed in %s: writer %s; %d processes", s.Seed, time.Since(r.start).Round(time.Second), r.w.summary(), len(r.procs))
}

func (r *runner) writerErr() error {
	select {
	case <-r.w.done:
		return r.w.stop()
	default:
		return nil
	}
}

// setup creates the tables, loads the initial items and enables the
// stream (at creation or afterwards), and starts the fault proxy.
func (r *runner) setup() {
	k := ddbtest.StringKey
	if !r.s.StreamLater {
		k.Stream = r.s.View
	}
	ddbtest.CreateTable(r.t, r.c, r.src, k)
	ddbtest.CreateTable(r.t, r.c, r.dst, ddbtest.StringKey)
	rnd := rand.New(rand.NewPCG(r.s.Seed, 0x6c6f6164))
	items := make([]map[string]av, 0, r.s.Items)
	for i := range r.s.Items {
		items = append(items, randomItem(rnd, key(i)))
	}
	ddbtest.PutItems(r.t, r.c, r.src, items)
	if r.s.StreamLater {
		ctx := context.Background()
		_, err := r.c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(r.src),
			StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: r.s.View}})
		if err != nil {
			r.fail("enable the stream: %v", err)
		}
		r.poll(time.Minute, "the stream to be enabled", func() bool {
			out, err := r.c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(r.src)})
			return err == nil && out.Table.TableStatus == types.TableStatusActive && out.Table.LatestStreamArn != nil
		})
	}
	if r.s.Faults > 0 {
		p, err := faultproxy.New(faultproxy.Options{Upstream: r.endpoint, Seed: r.s.Seed,
			Rules: []faultproxy.Rule{{Kind: faultproxy.Any, Rate: r.s.Faults}}})
		if err != nil {
			r.fail("fault proxy: %v", err)
		}
		r.t.Cleanup(p.Close)
		r.proxy, r.endpoint = p, p.URL
	}
	r.event("tables ready: input %s (%d items), output %s", r.src, r.s.Items, r.dst)
}

// args builds a command line for cmd (the command and its own flags).
func (r *runner) args(cmd []string) []string {
	a := append([]string{}, cmd...)
	a = append(a, "--endpoint-url", r.endpoint, "--no-status", "--log-level", "debug",
		"--input-table", r.src, "--output-table", r.dst, "--retry-delay-base", "10ms")
	if cmd[0] != "stream" && r.s.Segments > 0 {
		a = append(a, "--backfill-total-segments", strconv.Itoa(r.s.Segments))
	}
	if cmd[0] == "backfill" {
		a = append(a, "--scan-limit", strconv.Itoa(r.s.ScanLimit))
	}
	if r.s.MaxWCU > 0 {
		a = append(a, "--max-wcu", strconv.Itoa(r.s.MaxWCU))
	}
	if r.s.Leased {
		a = append(a, "--checkpoint-table", r.ckpt, "--lease-duration", leaseDuration.String(), "--state-dir", r.t.TempDir())
	} else {
		a = append(a, "--state-dir", r.stateDir)
	}
	return a
}

func (r *runner) launch(name string, cmd []string) *proc {
	p, err := startProc(r.bin, r.logDir, fmt.Sprintf("%02d-%s", len(r.procs)+1, name), r.args(cmd))
	if err != nil {
		r.fail("%v", err)
	}
	r.procs = append(r.procs, p)
	r.event("%s started (pid %d, log %s.log): ddbsync %s", name, p.cmd.Process.Pid, p.name, strings.Join(cmd, " "))
	return p
}

// sleep waits d (a random wait of the schedule, not a synchronisation).
func sleep(d time.Duration) { time.Sleep(d) }

func (r *runner) poll(timeout time.Duration, what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			r.fail("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *runner) do(st Step) {
	sleep(st.After)
	switch st.Act {
	case ActRun:
		r.runLocal(st)
	case ActPause, ActWait:
		sleep(st.D)
	case ActStart:
		p := r.launch(fmt.Sprintf("w%d-%s", st.Worker, st.Cmd[0]), st.Cmd)
		r.workers = append(r.workers, p)
	case ActKill:
		p := r.workers[st.Worker]
		if p.exited() {
			r.event("w%d had already exited (%d)", st.Worker, p.code)
			break
		}
		p.signal(syscall.SIGKILL)
		if _, ok := p.wait(exitTimeout); !ok {
			r.fail("w%d still running %s after SIGKILL", st.Worker, exitTimeout)
		}
		r.event("w%d killed", st.Worker)
	case ActTerm:
		p := r.workers[st.Worker]
		if p.exited() {
			r.event("w%d had already exited (%d)", st.Worker, p.code)
			break
		}
		p.signal(syscall.SIGTERM)
		code, ok := p.wait(exitTimeout + max(0, time.Until(r.contBy)))
		if !ok {
			r.fail("w%d still running %s after SIGTERM:\n%s", st.Worker, exitTimeout, p.tail(30))
		}
		r.event("w%d exited %d after SIGTERM", st.Worker, code)
		if code != 0 && code != 130 {
			r.fail("w%d exited %d after SIGTERM, want 0 or 130:\n%s", st.Worker, code, p.tail(30))
		}
	case ActSuspend:
		p := r.workers[st.Worker]
		if p.exited() {
			r.event("w%d had already exited (%d)", st.Worker, p.code)
			break
		}
		p.signal(syscall.SIGSTOP)
		time.AfterFunc(st.D, func() { p.signal(syscall.SIGCONT) })
		if c := time.Now().Add(st.D); c.After(r.contBy) {
			r.contBy = c
		}
	case ActAwaitStream:
		r.poll(runTimeout, "a sync worker to reach its stream phase", func() bool {
			r.checkWorkers()
			for _, p := range r.workers {
				if p.args[0] == "sync" && triggers[AtStream].MatchString(p.out.String()) {
					return true
				}
			}
			return false
		})
		r.event("a sync worker is streaming")
	}
	if r.s.Leased {
		r.checkWorkers()
	}
}

// checkWorkers fails the seed when a worker exited by itself with
// anything but a backfill worker's 0.
func (r *runner) checkWorkers() {
	for i, p := range r.workers {
		if !p.exited() {
			continue
		}
		p.mu.Lock()
		sig := p.signalled
		p.mu.Unlock()
		if sig != "" {
			continue
		}
		if p.code == 0 && p.args[0] == "backfill" {
			continue
		}
		r.fail("w%d (ddbsync %s) exited %d by itself:\n%s", i, p.args[0], p.code, p.tail(30))
	}
}

// runLocal runs one process: until it exits, or until the trigger and the
// delay, then signalled.
func (r *runner) runLocal(st Step) {
	p := r.launch(st.Cmd[0], st.Cmd)
	if st.Signal == "" {
		code, ok := p.wait(runTimeout)
		if !ok {
			r.fail("%s did not exit within %s:\n%s", p.name, runTimeout, p.tail(30))
		}
		r.event("%s exited %d", p.name, code)
		r.checkOwnExit(p)
		return
	}
	if re := triggers[st.At]; re != nil {
		seen, err := p.await(re, triggerTimeout)
		if err != nil {
			r.fail("%v:\n%s", err, p.tail(30))
		}
		if !seen {
			r.event("%s exited %d before %s", p.name, p.code, describe(st.At))
			r.checkOwnExit(p)
			return
		}
	}
	select {
	case <-p.done:
	case <-time.After(st.D):
	}
	if p.exited() {
		r.event("%s exited %d before the signal", p.name, p.code)
		r.checkOwnExit(p)
		return
	}
	sig := syscall.SIGKILL
	if st.Signal == "TERM" {
		sig = syscall.SIGTERM
	}
	p.signal(sig)
	code, ok := p.wait(exitTimeout)
	if !ok {
		r.fail("%s still running %s after SIG%s:\n%s", p.name, exitTimeout, st.Signal, p.tail(30))
	}
	r.event("%s exited %d after SIG%s", p.name, code, st.Signal)
	if sig == syscall.SIGTERM && code != 0 && code != 130 {
		r.fail("%s exited %d after SIGTERM, want 0 or 130:\n%s", p.name, code, p.tail(30))
	}
}

// refusedCopy is the usage error of a stream run after a copy that is not
// finished: the stream would let the copy overwrite newer changes.
var refusedCopy = regexp.MustCompile(`has not finished its copy|copy of this entry in the state is not finished`)

// checkOwnExit fails the seed unless a process that exited by itself
// exited 0, or is a stream run refused (exit 2) because an earlier copy
// is not finished — what an operator is told to fix by finishing it.
func (r *runner) checkOwnExit(p *proc) {
	r.t.Helper()
	switch {
	case p.code == 0:
	case p.code == 2 && p.args[0] == "stream" && refusedCopy.MatchString(p.out.String()):
		r.event("%s refused to stream: the copy in the state is not finished", p.name)
	default:
		r.fail("%s exited %d by itself:\n%s", p.name, p.code, p.tail(30))
	}
}

// finalLocal: the writer stops, one sync --until-caught-up catches up on
// the same state directory, and the tables must be equal.
func (r *runner) finalLocal() {
	if err := r.w.stop(); err != nil {
		r.fail("the writer failed: %v", err)
	}
	r.event("writer stopped: %s", r.w.summary())
	r.runLocal(Step{Act: ActRun, Cmd: []string{"sync", "--until-caught-up"}})
	if d := r.compare(); len(d) > 0 {
		r.fail("the output differs from the input after the final sync --until-caught-up:\n%s", strings.Join(d, "\n"))
	}
}

// finalLeased: one more sync worker joins, the writer stops, the workers
// must make the output equal to the input; then every worker is stopped
// with SIGTERM and the tables compared once more.
func (r *runner) finalLeased() {
	sleep(time.Until(r.contBy)) // every suspended worker has been continued
	p := r.launch(fmt.Sprintf("w%d-sync", len(r.workers)), []string{"sync"})
	r.workers = append(r.workers, p)
	if err := r.w.stop(); err != nil {
		r.fail("the writer failed: %v", err)
	}
	r.event("writer stopped: %s", r.w.summary())
	r.converge("after the writer stopped")
	// A worker killed shortly before may still lose its lease and have its
	// shard taken over, replaying from its checkpoint: let that happen,
	// then the output must be (again) equal to the input.
	sleep(2*leaseDuration + time.Second)
	r.converge("after waiting two lease durations more")
	r.event("the output equals the input")
	for i, p := range r.workers {
		if p.exited() {
			continue
		}
		p.signal(syscall.SIGTERM)
		code, ok := p.wait(exitTimeout)
		if !ok {
			r.fail("w%d still running %s after SIGTERM:\n%s", i, exitTimeout, p.tail(30))
		}
		r.event("w%d exited %d after SIGTERM", i, code)
		if code != 0 && code != 130 {
			r.fail("w%d exited %d after SIGTERM, want 0 or 130:\n%s", i, code, p.tail(30))
		}
	}
	if d := r.compare(); len(d) > 0 {
		r.fail("the output differs from the input after the workers stopped (it was equal before):\n%s", strings.Join(d, "\n"))
	}
}

// converge polls until the output equals the input.
func (r *runner) converge(when string) {
	r.t.Helper()
	deadline := time.Now().Add(convergeTimeout)
	for {
		r.checkWorkers()
		d := r.compare()
		if len(d) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.fail("the output still differs from the input %s %s:\n%s", convergeTimeout, when, strings.Join(d, "\n"))
		}
		time.Sleep(time.Second)
	}
}

// compare scans both tables with consistent reads and describes every
// difference (at most 12 of them, and a count), semantically: numbers by
// value, sets as sets (pkg/diff.Compare).
func (r *runner) compare() []string {
	in, out := r.index(r.src), r.index(r.dst)
	var problems []string
	keys := make([]string, 0, len(in)+len(out))
	for k := range in {
		keys = append(keys, k)
	}
	for k := range out {
		if _, ok := in[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		a, inOK := in[k]
		b, outOK := out[k]
		switch {
		case !outOK:
			problems = append(problems, fmt.Sprintf("  %s missing from the output; input %s", k, show(a)))
		case !inOK:
			problems = append(problems, fmt.Sprintf("  %s in the output but deleted from the input; output %s", k, show(b)))
		default:
			if attrs := diff.Compare(a, b, nil); attrs != nil {
				problems = append(problems, fmt.Sprintf("  %s differs in %v:\n      input  %s\n      output %s", k, attrs, show(a), show(b)))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	n := len(problems)
	if n > 12 {
		problems = append(problems[:12], "  …")
	}
	for i, p := range problems {
		if k := strings.Fields(p)[0]; i < 12 {
			problems[i] = p + "\n      last writes: " + r.w.history(k)
		}
	}
	return append([]string{fmt.Sprintf("  %d keys differ (input %d items, output %d items)", n, len(in), len(out))}, problems...)
}

func (r *runner) index(table string) map[string]map[string]av {
	m := map[string]map[string]av{}
	for _, it := range ddbtest.ScanAll(r.t, r.c, table) {
		m[it["pk"].(*types.AttributeValueMemberS).Value] = it
	}
	return m
}

// show formats an item compactly, attributes sorted.
func show(it map[string]av) string {
	names := make([]string, 0, len(it))
	for n := range it {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, n+"="+showValue(it[n]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func showValue(v av) string {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		if len(x.Value) > 12 {
			return strconv.Quote(x.Value[:12] + "…")
		}
		return strconv.Quote(x.Value)
	case *types.AttributeValueMemberN:
		return x.Value
	case *types.AttributeValueMemberB:
		return fmt.Sprintf("b%x", x.Value)
	case *types.AttributeValueMemberBOOL:
		return strconv.FormatBool(x.Value)
	case *types.AttributeValueMemberNULL:
		return "null"
	case *types.AttributeValueMemberSS:
		return "SS" + fmt.Sprint(x.Value)
	case *types.AttributeValueMemberNS:
		return "NS" + fmt.Sprint(x.Value)
	case *types.AttributeValueMemberBS:
		return fmt.Sprintf("BS%x", x.Value)
	case *types.AttributeValueMemberL:
		parts := make([]string, len(x.Value))
		for i, e := range x.Value {
			parts[i] = showValue(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *types.AttributeValueMemberM:
		return show(x.Value)
	}
	return fmt.Sprintf("%T", v)
}
