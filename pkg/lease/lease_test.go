package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// Lease timings of the tests: short, so takeovers happen quickly, with the
// waits for them generous (deadline) so a slow machine does not fail.
const (
	duration   = 2 * time.Second
	renewEvery = 200 * time.Millisecond
	deadline   = 30 * time.Second
)

const scope = "orders-orders-0123456789ab/backfill"

type checkpoint struct {
	Page int `json:"page"`
}

func newStore(t *testing.T) *state.DynamoStore {
	t.Helper()
	c, _ := ddbtest.Clients(t)
	name := ddbtest.Name(t, "lease")
	st := state.NewDynamoStore(c, name, state.DynamoOptions{})
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	if err := st.EnsureTable(context.Background()); err != nil {
		t.Fatalf("EnsureTable: %v", err)
	}
	return st
}

// worker is a manager with its heartbeat running until stop (or the end
// of the test).
type worker struct {
	*lease.Manager
	stop func()
}

func newWorker(t *testing.T, st *state.DynamoStore, name string, opts lease.Options) *worker {
	t.Helper()
	if opts.Duration == 0 {
		opts.Duration = duration
	}
	if opts.RenewEvery == 0 {
		opts.RenewEvery = renewEvery
	}
	opts.Logger = zaptest.NewLogger(t).Named(name)
	m := lease.NewManager(st, name, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &worker{Manager: m, stop: stop}
}

func segments(n int) []lease.Unit {
	var us []lease.Unit
	for i := 0; i < n; i++ {
		us = append(us, lease.Unit{ID: fmt.Sprintf("segment-%d", i)})
	}
	return us
}

// eventually polls cond until it holds, failing the test at the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("after %s: %s", deadline, what)
		}
		time.Sleep(duration / 5)
	}
}

func acquire(t *testing.T, w *worker) []*lease.Lease {
	t.Helper()
	ls, err := w.Acquire(context.Background(), scope)
	if err != nil {
		t.Fatalf("%s: Acquire: %v", w.Worker(), err)
	}
	return ls
}

func units(ls []*lease.Lease) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Unit())
	}
	sort.Strings(out)
	return out
}

// owners reads the table's view: unit → owner.
func owners(t *testing.T, m *lease.Manager) map[string]string {
	t.Helper()
	infos, err := m.List(context.Background(), scope)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, in := range infos {
		out[in.Unit] = in.Owner
	}
	return out
}

// inconsistencies compares what each worker holds with what the table
// says it owns, and finds units held twice. Right after a steal the victim
// still holds the lease until its next renew or Acquire notices; callers
// poll until the views agree.
func inconsistencies(t *testing.T, ws ...*worker) []string {
	t.Helper()
	table := owners(t, ws[0].Manager)
	holder := map[string]string{}
	var out []string
	for _, w := range ws {
		for _, l := range w.Held() {
			if prev, ok := holder[l.Unit()]; ok {
				out = append(out, fmt.Sprintf("%s is held by both %s and %s", l.Unit(), prev, w.Worker()))
			}
			holder[l.Unit()] = w.Worker()
			if table[l.Unit()] != w.Worker() {
				out = append(out, fmt.Sprintf("%s holds %s but the table says its owner is %q", w.Worker(), l.Unit(), table[l.Unit()]))
			}
		}
	}
	return out
}

// checkConsistent waits until the workers' views agree with the table.
func checkConsistent(t *testing.T, ws ...*worker) {
	t.Helper()
	var last []string
	end := time.Now().Add(deadline)
	for {
		if last = inconsistencies(t, ws...); len(last) == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("after %s the workers still disagree with the table: %s", deadline, strings.Join(last, "; "))
		}
		time.Sleep(renewEvery)
	}
}

// handOver does what Process does for the workers' leases another worker
// asked for: release them (the work in flight would be finished and
// checkpointed first).
func handOver(t *testing.T, ws ...*worker) {
	t.Helper()
	for _, w := range ws {
		for _, l := range w.Held() {
			select {
			case <-l.HandoffRequested():
				if err := l.Release(context.Background()); err != nil && !errors.Is(err, lease.ErrLost) {
					t.Fatalf("%s: release of %s asked for by %s: %v", w.Worker(), l.Unit(), l.HandoffTo(), err)
				}
			default:
			}
		}
	}
}

// balanced reports whether every worker holds want leases and the views
// agree with the table.
func balanced(t *testing.T, want int, ws ...*worker) bool {
	for _, w := range ws {
		if len(w.Held()) != want {
			return false
		}
	}
	return len(inconsistencies(t, ws...)) == 0
}

func TestFairSplit(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d workers", n), func(t *testing.T) {
			st := newStore(t)
			ctx := context.Background()
			const total = 12
			var ws []*worker
			for i := 0; i < n; i++ {
				w := newWorker(t, st, fmt.Sprintf("w%d", i), lease.Options{})
				if err := w.Register(ctx, scope, "total_segments=12", segments(total)); err != nil {
					t.Fatalf("Register: %v", err)
				}
				ws = append(ws, w)
			}
			// The first worker starts alone and takes everything; the
			// others join and take their share by stealing.
			if got := acquire(t, ws[0]); len(got) != total {
				t.Fatalf("a lone worker took %d of %d leases", len(got), total)
			}
			want := total / n
			eventually(t, "the leases are not split evenly", func() bool {
				for _, w := range ws {
					handOver(t, w)
					acquire(t, w)
				}
				return balanced(t, want, ws...)
			})
			checkConsistent(t, ws...)
			// Balanced: another round changes nothing.
			for _, w := range ws {
				if got := acquire(t, w); len(got) != 0 {
					t.Errorf("%s took %v from a balanced table", w.Worker(), units(got))
				}
			}
			for _, w := range ws {
				if len(w.Held()) != want {
					t.Errorf("%s holds %d leases, want %d", w.Worker(), len(w.Held()), want)
				}
			}
		})
	}
}

// Workers that start at the same moment race for the same free leases;
// the conditional writes let exactly one win each, and the rounds that
// follow even the load out.
func TestConcurrentStart(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	var ws []*worker
	for i := 0; i < 3; i++ {
		w := newWorker(t, st, fmt.Sprintf("w%d", i), lease.Options{})
		if err := w.Register(ctx, scope, "total_segments=9", segments(9)); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	eventually(t, "concurrent workers did not split 9 leases 3/3/3", func() bool {
		var wg sync.WaitGroup
		errs := make(chan error, len(ws))
		for _, w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := w.Acquire(ctx, scope); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Acquire: %v", err)
		}
		handOver(t, ws...)
		return balanced(t, 3, ws...)
	})
	checkConsistent(t, ws...)
}

func TestTakeOverDeadWorker(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	a := newWorker(t, st, "a", lease.Options{})
	b := newWorker(t, st, "b", lease.Options{MaxSteal: -1})
	for _, w := range []*worker{a, b} {
		if err := w.Register(ctx, scope, "total_segments=4", segments(4)); err != nil {
			t.Fatal(err)
		}
	}
	held := acquire(t, a)
	if len(held) != 4 {
		t.Fatalf("a took %d of 4", len(held))
	}
	for i, l := range held {
		if ok, _ := l.Resume(&checkpoint{}); ok {
			t.Errorf("%s has a checkpoint before any was written", l.Unit())
		}
		if err := l.Checkpoint(ctx, checkpoint{Page: 10 + i}); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
	}
	wantPage := map[string]int{}
	for i, l := range held {
		wantPage[l.Unit()] = 10 + i
	}

	// While a heartbeats, b sees live leases and takes none, for more than
	// a lease duration.
	end := time.Now().Add(2 * duration)
	for time.Now().Before(end) {
		if got := acquire(t, b); len(got) != 0 {
			t.Fatalf("b took %v from a live worker", units(got))
		}
		time.Sleep(duration / 5)
	}

	// a dies: no more heartbeats, no release.
	a.stop()
	eventually(t, "b did not take over the dead worker's leases", func() bool {
		acquire(t, b)
		return len(b.Held()) == 4
	})
	for _, l := range b.Held() {
		var cp checkpoint
		ok, err := l.Resume(&cp)
		if err != nil || !ok || cp.Page != wantPage[l.Unit()] {
			t.Errorf("%s resumed from %+v (%v, %v); want page %d", l.Unit(), cp, ok, err, wantPage[l.Unit()])
		}
		if l.PreviousOwner() != "a" {
			t.Errorf("%s previous owner %q, want a", l.Unit(), l.PreviousOwner())
		}
	}
	// The dead worker's leases are lost for it: a late checkpoint fails
	// and never overwrites b's progress.
	for _, l := range held {
		err := l.Checkpoint(ctx, checkpoint{Page: 999})
		if !errors.Is(err, lease.ErrLost) {
			t.Errorf("late checkpoint of %s by the dead worker = %v; want ErrLost", l.Unit(), err)
		}
		select {
		case <-l.Lost():
		default:
			t.Errorf("Lost() of %s not closed", l.Unit())
		}
		if !errors.Is(context.Cause(l.Context()), lease.ErrLost) {
			t.Errorf("lease context cause = %v", context.Cause(l.Context()))
		}
	}
	infos, err := b.List(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if string(in.Checkpoint) != fmt.Sprintf(`{"page":%d}`, wantPage[in.Unit]) || in.Owner != "b" {
			t.Errorf("%s: owner %q checkpoint %s", in.Unit, in.Owner, in.Checkpoint)
		}
	}
	checkConsistent(t, b)
}

// TestStealIsAHandoffRequest: a worker that joins while another holds
// every lease asks for its share instead of taking it. The owner sees the
// request at its next renew, keeps the lease until it has checkpointed and
// released it, and the requester takes it only then, from that
// checkpoint; another lease of the owner is unaffected. A requester whose
// owner stops renewing takes the lease once it expires.
func TestStealIsAHandoffRequest(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	a := newWorker(t, st, "a", lease.Options{})
	b := newWorker(t, st, "b", lease.Options{})
	for _, w := range []*worker{a, b} {
		if err := w.Register(ctx, scope, "total_segments=2", segments(2)); err != nil {
			t.Fatal(err)
		}
	}
	aHeld := acquire(t, a)
	if len(aHeld) != 2 {
		t.Fatalf("a took %d of 2", len(aHeld))
	}
	for _, l := range aHeld {
		if err := l.Checkpoint(ctx, checkpoint{Page: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// b joins while a is alive: it asks for one lease (its fair share)
	// and takes nothing yet.
	if got := acquire(t, b); len(got) != 0 {
		t.Fatalf("b took %v from a live worker without waiting for a release", units(got))
	}
	var victim, kept *lease.Lease
	eventually(t, "a never saw the handoff request", func() bool {
		for _, l := range aHeld {
			select {
			case <-l.HandoffRequested():
				victim = l
			default:
				kept = l
			}
		}
		return victim != nil
	})
	if victim.HandoffTo() != "b" || kept == victim {
		t.Fatalf("handoff to %q; kept %v victim %v", victim.HandoffTo(), kept.Unit(), victim.Unit())
	}
	// Until a releases, b takes nothing, and a may still write.
	if got := acquire(t, b); len(got) != 0 {
		t.Fatalf("b took %v before a released", units(got))
	}
	if err := victim.Checkpoint(ctx, checkpoint{Page: 2}); err != nil {
		t.Fatalf("the owner's last checkpoint before the handoff: %v", err)
	}
	if err := victim.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// Kept for b: a does not take it back.
	if got := acquire(t, a); len(got) != 0 {
		t.Fatalf("a took back %v, released for b", units(got))
	}
	got := acquire(t, b)
	if len(got) != 1 || got[0].Unit() != victim.Unit() {
		t.Fatalf("b took %v after the release; want %s", units(got), victim.Unit())
	}
	var cp checkpoint
	if ok, err := got[0].Resume(&cp); !ok || err != nil || cp.Page != 2 {
		t.Errorf("b resumed from %+v (%v, %v); want page 2", cp, ok, err)
	}
	if err := kept.Checkpoint(ctx, checkpoint{Page: 3}); err != nil {
		t.Errorf("a's other lease: %v", err)
	}
	table := owners(t, a.Manager)
	if table[victim.Unit()] != "b" || table[kept.Unit()] != "a" {
		t.Errorf("owners = %v", table)
	}
	checkConsistent(t, a, b)

	// A third worker asks for a's remaining lease; a stops renewing
	// (dead, or paused) before it answers: c takes it once it expires.
	c := newWorker(t, st, "c", lease.Options{})
	if err := c.Register(ctx, scope, "total_segments=2", segments(2)); err != nil {
		t.Fatal(err)
	}
	a.stop()
	eventually(t, "c did not take the lease of a worker that stopped renewing", func() bool {
		acquire(t, c)
		return len(c.Held()) == 1
	})
	if c.Held()[0].Unit() != kept.Unit() {
		t.Errorf("c took %s, want %s", c.Held()[0].Unit(), kept.Unit())
	}
	// The paused owner finds out before writing anything.
	if err := kept.CheckHeld(); !errors.Is(err, lease.ErrLost) {
		t.Errorf("CheckHeld of the overdue lease = %v; want ErrLost", err)
	}
	checkConsistent(t, b, c)
}

func TestCleanReleaseHandsOverAtOnce(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	// A long lease: a takeover by expiry could not happen within this test.
	long := lease.Options{Duration: time.Hour, RenewEvery: time.Minute}
	a := newWorker(t, st, "a", long)
	b := newWorker(t, st, "b", long)
	for _, w := range []*worker{a, b} {
		if err := w.Register(ctx, scope, "total_segments=3", segments(3)); err != nil {
			t.Fatal(err)
		}
	}
	held := acquire(t, a)
	for _, l := range held {
		if err := l.Checkpoint(ctx, checkpoint{Page: 7}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	for _, l := range held {
		if !errors.Is(l.Err(), lease.ErrEnded) {
			t.Errorf("released lease Err = %v", l.Err())
		}
		select {
		case <-l.Lost():
			t.Errorf("a released lease reports Lost")
		default:
		}
		if err := l.Checkpoint(ctx, checkpoint{Page: 8}); !errors.Is(err, lease.ErrEnded) {
			t.Errorf("checkpoint after release = %v; want ErrEnded", err)
		}
	}
	got := acquire(t, b)
	if len(got) != 3 {
		t.Fatalf("b took %d of 3 released leases at once", len(got))
	}
	for _, l := range got {
		var cp checkpoint
		if ok, err := l.Resume(&cp); !ok || err != nil || cp.Page != 7 {
			t.Errorf("%s resumed from %+v, %v, %v; want page 7", l.Unit(), cp, ok, err)
		}
	}
	checkConsistent(t, a, b)
}

func TestLineage(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	const streamScope = "orders-orders-0123456789ab/stream"
	a := newWorker(t, st, "a", lease.Options{})
	units := []lease.Unit{
		{ID: "shard-1"},
		{ID: "shard-2", Parents: []string{"shard-1"}},
		{ID: "shard-3", Parents: []string{"shard-1", "shard-2"}},
		{ID: "shard-4", Parents: []string{"shard-0"}}, // parent trimmed long ago: no lease
	}
	if err := a.Register(ctx, streamScope, "arn:aws:dynamodb:us-east-1:1:table/orders/stream/1", units); err != nil {
		t.Fatal(err)
	}
	take := func() []string {
		ls, err := a.Acquire(ctx, streamScope)
		if err != nil {
			t.Fatal(err)
		}
		return unitsOf(ls)
	}
	if got := take(); strings.Join(got, ",") != "shard-1,shard-4" {
		t.Fatalf("first round took %v; want shard-1 and shard-4 (shard-2 and shard-3 wait for their parents)", got)
	}
	if got := take(); len(got) != 0 {
		t.Fatalf("took %v while the parents are unfinished", got)
	}
	held := map[string]*lease.Lease{}
	for _, l := range a.Held() {
		held[l.Unit()] = l
	}
	if err := held["shard-1"].Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if got := take(); strings.Join(got, ",") != "shard-2" {
		t.Fatalf("after shard-1 finished took %v; want shard-2 (shard-3 also needs shard-2)", got)
	}
	for _, l := range a.Held() {
		if l.Unit() == "shard-2" {
			if err := l.Finish(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := take(); strings.Join(got, ",") != "shard-3" {
		t.Fatalf("after shard-2 finished took %v; want shard-3", got)
	}
	if done, err := a.Done(ctx, streamScope); err != nil || done {
		t.Errorf("Done = %v, %v with shards open", done, err)
	}
	for _, l := range a.Held() {
		if err := l.Finish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if done, err := a.Done(ctx, streamScope); err != nil || !done {
		t.Errorf("Done = %v, %v after all shards finished", done, err)
	}
	if got := take(); len(got) != 0 {
		t.Errorf("took finished leases %v", got)
	}
	// A newly discovered child joins the same scope.
	if err := a.Register(ctx, streamScope, "arn:aws:dynamodb:us-east-1:1:table/orders/stream/1", []lease.Unit{{ID: "shard-5", Parents: []string{"shard-3"}}}); err != nil {
		t.Fatal(err)
	}
	if got := take(); strings.Join(got, ",") != "shard-5" {
		t.Errorf("took %v; want the new shard-5", got)
	}
}

func unitsOf(ls []*lease.Lease) []string { return units(ls) }

func TestPlanFingerprintMismatch(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	a := newWorker(t, st, "a", lease.Options{})
	b := newWorker(t, st, "b", lease.Options{})
	if err := a.Register(ctx, scope, "total_segments=8", segments(8)); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(ctx, scope, "total_segments=8", segments(8)); err != nil {
		t.Fatalf("same plan refused: %v", err)
	}
	err := b.Register(ctx, scope, "total_segments=16", segments(16))
	var pe *plan.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Register with another plan = %v; want a *plan.Error (exit 2)", err)
	}
	for _, want := range []string{"total_segments=8", "total_segments=16", st.Table(), "orders-orders-0123456789ab"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	infos, err := b.List(ctx, scope)
	if err != nil || len(infos) != 8 {
		t.Errorf("after the refusal the scope has %d leases (%v); want the original 8", len(infos), err)
	}
	// CheckFingerprint says the same without writing anything.
	if err := b.CheckFingerprint(ctx, scope, "total_segments=16"); !errors.As(err, &pe) || !strings.Contains(err.Error(), "total_segments=8") {
		t.Errorf("CheckFingerprint with another plan = %v; want a *plan.Error naming the registered one", err)
	}
	if err := b.CheckFingerprint(ctx, scope, "total_segments=8"); err != nil {
		t.Errorf("CheckFingerprint with the same plan = %v", err)
	}
	if err := b.CheckFingerprint(ctx, "never-registered/backfill", "x"); err != nil {
		t.Errorf("CheckFingerprint of a new scope = %v", err)
	}
	if _, ok, _ := b.Fingerprint(ctx, "never-registered/backfill"); ok {
		t.Errorf("CheckFingerprint registered a fingerprint")
	}
	if fp, ok, err := b.Fingerprint(ctx, scope); err != nil || !ok || fp != "total_segments=8" {
		t.Errorf("Fingerprint = %q, %v, %v; want the registered one", fp, ok, err)
	}
	if _, ok, err := b.Fingerprint(ctx, "other-entry/backfill"); err != nil || ok {
		t.Errorf("Fingerprint of an unregistered scope = %v, %v", ok, err)
	}
	// Another kind of the same entry has its own fingerprint.
	if err := b.Register(ctx, "orders-orders-0123456789ab/stream", "arn:x", []lease.Unit{{ID: "shard-1"}}); err != nil {
		t.Errorf("stream scope: %v", err)
	}
	// Forget starts over.
	if err := b.Forget(ctx, scope); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(ctx, scope, "total_segments=16", segments(16)); err != nil {
		t.Fatalf("after Forget: %v", err)
	}
	if infos, _ := b.List(ctx, scope); len(infos) != 16 {
		t.Errorf("after Forget and Register: %d leases", len(infos))
	}
}

func TestLeaseContextAndBadScope(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	a := newWorker(t, st, "a", lease.Options{})
	for _, bad := range []string{"no-kind", "E/", "/backfill", "E/backfill/x", "~x/backfill"} {
		if err := a.Register(ctx, bad, "x", segments(1)); err == nil {
			t.Errorf("Register accepted the scope %q", bad)
		}
	}
	if err := a.Register(ctx, scope, "x", []lease.Unit{{ID: ""}}); err == nil {
		t.Error("Register accepted an empty unit ID")
	}
	if err := a.Register(ctx, scope, "x", segments(1)); err != nil {
		t.Fatal(err)
	}
	ls := acquire(t, a)
	if len(ls) != 1 {
		t.Fatalf("took %d", len(ls))
	}
	wctx, cancel := ls[0].WithContext(ctx)
	defer cancel()
	if err := ls[0].Finish(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wctx.Done():
	case <-time.After(deadline):
		t.Fatal("the work context outlived the finished lease")
	}
	if !errors.Is(context.Cause(wctx), lease.ErrEnded) {
		t.Errorf("cause = %v", context.Cause(wctx))
	}
	if done, err := a.Done(ctx, scope); !done || err != nil {
		t.Errorf("Done = %v, %v", done, err)
	}
}

func TestWorkerIDs(t *testing.T) {
	a, b := lease.NewWorkerID(), lease.NewWorkerID()
	if a == b || strings.Count(a, "-") < 2 {
		t.Errorf("worker IDs %q and %q", a, b)
	}
}

func TestFingerprintHelpers(t *testing.T) {
	e := plan.Entry{Input: plan.Table{Table: "orders", Region: "us-east-1"}, Output: plan.Table{Table: "orders", Region: "eu-west-1", EndpointURL: "http://localhost:8000"}}
	if got, want := lease.BackfillFingerprint(e, 16), "input=us-east-1:orders output=eu-west-1:orders@http://localhost:8000 total_segments=16"; got != want {
		t.Errorf("BackfillFingerprint = %q, want %q", got, want)
	}
	if lease.BackfillFingerprint(e, 16) == lease.BackfillFingerprint(e, 8) {
		t.Error("the backfill fingerprint ignores total segments")
	}
	if got := lease.StreamFingerprint(e, "arn:1"); got == lease.StreamFingerprint(e, "arn:2") || !strings.Contains(got, "stream=arn:1") {
		t.Errorf("StreamFingerprint = %q", got)
	}
	us := lease.Segments(3)
	if len(us) != 3 || us[2].ID != "segment-00002" || lease.Scope("E", lease.KindBackfill) != "E/backfill" {
		t.Errorf("Segments(3) = %v", us)
	}
}

func TestMaxLeases(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	a := newWorker(t, st, "a", lease.Options{MaxLeases: 3})
	if err := a.Register(ctx, scope, "x", segments(12)); err != nil {
		t.Fatal(err)
	}
	if got := acquire(t, a); len(got) != 3 {
		t.Errorf("a worker capped at 3 took %d", len(got))
	}
	if got := acquire(t, a); len(got) != 0 {
		t.Errorf("a second round took %d more", len(got))
	}
}

// replayUpdates, when on, sends every UpdateItem twice and returns the
// second answer, as an SDK retry does after a response was lost.
type replayUpdates struct {
	state.DynamoAPI
	on *atomic.Bool
}

func (r replayUpdates) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if r.on.Load() {
		if _, err := r.DynamoAPI.UpdateItem(ctx, in, optFns...); err != nil {
			return nil, err
		}
	}
	return r.DynamoAPI.UpdateItem(ctx, in, optFns...)
}

// Writes whose first attempt went through must not be taken for a lost
// lease when the retry fails its condition.
func TestRetriedWrites(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	var replay atomic.Bool
	m := lease.NewManagerFor(replayUpdates{st.Client(), &replay}, st.Table(), "a", lease.Options{Duration: time.Hour, Logger: zaptest.NewLogger(t)})
	if err := m.Register(ctx, scope, "x", segments(3)); err != nil {
		t.Fatal(err)
	}
	// A take whose retry fails: the lease is ours in the table but not
	// held; the next round takes it back at once.
	replay.Store(true)
	if ls, err := m.Acquire(ctx, scope); err != nil || len(ls) != 0 {
		t.Fatalf("replayed Acquire = %d leases, %v; want 0 (each take's retry fails)", len(ls), err)
	}
	if o := owners(t, m); o["segment-0"] != "a" {
		t.Fatalf("owners after the replayed takes: %v", o)
	}
	replay.Store(false)
	ls, err := m.Acquire(ctx, scope)
	if err != nil || len(ls) != 3 {
		t.Fatalf("Acquire after replayed takes = %d, %v; want all 3 back", len(ls), err)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Unit() < ls[j].Unit() })
	replay.Store(true)
	if err := ls[0].Checkpoint(ctx, checkpoint{Page: 4}); err != nil {
		t.Fatalf("replayed checkpoint: %v", err)
	}
	if err := ls[0].Finish(ctx); err != nil {
		t.Errorf("retried Finish = %v; want success", err)
	}
	if err := ls[1].Release(ctx); err != nil {
		t.Errorf("retried Release = %v; want success", err)
	}
	for _, l := range ls[:2] {
		select {
		case <-l.Lost():
			t.Errorf("%s reported lost after a retried write", l.Unit())
		default:
		}
	}
	infos, _ := m.List(ctx, scope)
	if len(infos) != 3 || !infos[0].Finished || infos[0].Owner != "" || string(infos[0].Checkpoint) != `{"page":4}` || infos[1].Finished || infos[1].Owner != "" || infos[2].Owner != "a" {
		t.Errorf("leases after the retried writes: %+v", infos)
	}
}
