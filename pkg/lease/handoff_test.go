package lease_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/pkg/lease"
)

// TestProcessHandoffWaitsForRelease: a worker that joins while another
// holds every unit gets its share only after the owner stopped working on
// each unit it gives up (finished its batch, checkpointed, released): the
// two never work on one unit at the same time, and the newcomer resumes
// from the owner's last checkpoint.
func TestProcessHandoffWaitsForRelease(t *testing.T) {
	st := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 4
	var mu sync.Mutex
	var overlaps []string
	active := map[string]string{} // unit → worker working on it now
	started := map[string][]string{}
	resumed := map[string]int{} // unit → page the newcomer resumed from
	work := func(name string) lease.Func {
		return func(ctx context.Context, l *lease.Lease) error {
			var cp checkpoint
			if _, err := l.Resume(&cp); err != nil {
				return err
			}
			mu.Lock()
			if w, ok := active[l.Unit()]; ok {
				overlaps = append(overlaps, l.Unit()+": "+name+" started while "+w+" still works on it")
			}
			active[l.Unit()] = name
			started[l.Unit()] = append(started[l.Unit()], name)
			if name == "b" {
				resumed[l.Unit()] = cp.Page
			}
			mu.Unlock()
			defer func() {
				mu.Lock()
				if active[l.Unit()] == name {
					delete(active, l.Unit())
				}
				mu.Unlock()
			}()
			// Work until stopped, checkpointing as we go.
			for ctx.Err() == nil {
				cp.Page++
				if err := l.Checkpoint(context.WithoutCancel(ctx), cp); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
			// The last batch of a stopped unit is finished and
			// checkpointed before the unit is given up.
			cp.Page += 1000
			if err := l.Checkpoint(context.WithoutCancel(ctx), cp); err != nil {
				return err
			}
			return ctx.Err()
		}
	}
	errs := make(chan error, 2)
	run := func(name string) *lease.Manager {
		m := lease.NewManager(st, name, lease.Options{Duration: duration, RenewEvery: renewEvery, Logger: zaptest.NewLogger(t).Named(name)})
		if err := m.Register(ctx, scope, "total_segments=4", segments(n)); err != nil {
			t.Fatal(err)
		}
		go func() { errs <- m.Process(ctx, scope, lease.ProcessOptions{Poll: 50 * time.Millisecond}, work(name)) }()
		return m
	}
	a := run("a")
	eventually(t, "a did not take every unit", func() bool { return len(a.Held()) == n })
	b := run("b")
	eventually(t, "b did not get its share", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(b.Held()) == n/2 && len(a.Held()) == n/2 && len(resumed) == n/2
	})
	cancel()
	for range 2 {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Process: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, o := range overlaps {
		t.Error(o)
	}
	for u, page := range resumed {
		if page < 1000 {
			t.Errorf("b resumed %s from page %d, before a's last checkpoint (a page above 1000)", u, page)
		}
	}
}

// countingWrites counts the BatchWriteItem calls that reach the output.
type countingWrites struct{ calls atomic.Int64 }

func (c *countingWrites) BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	c.calls.Add(1)
	return &dynamodb.BatchWriteItemOutput{}, nil
}

// TestPausedWorkerSendsNoWrite: a worker whose heartbeat did not run for
// the lease duration (paused by SIGSTOP, a frozen VM) finds its lease
// overdue when it resumes: GuardWrites refuses the write before sending
// it and the lease is lost. Writes outside a lease pass through.
func TestPausedWorkerSendsNoWrite(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	// No heartbeat (Run) at all: as if paused right after taking the lease.
	m := lease.NewManager(st, "paused", lease.Options{Duration: duration, RenewEvery: renewEvery, Logger: zaptest.NewLogger(t)})
	if err := m.Register(ctx, scope, "total_segments=1", segments(1)); err != nil {
		t.Fatal(err)
	}
	ls, err := m.Acquire(ctx, scope)
	if err != nil || len(ls) != 1 {
		t.Fatalf("Acquire: %v, %d leases", err, len(ls))
	}
	l := ls[0]
	out := &countingWrites{}
	w := lease.GuardWrites(out)
	wctx, cancel := l.WithContext(ctx)
	defer cancel()
	if _, err := w.BatchWriteItem(wctx, &dynamodb.BatchWriteItemInput{}); err != nil {
		t.Fatalf("write under a fresh lease: %v", err)
	}
	eventually(t, "the lease never became overdue", func() bool { return l.CheckHeld() != nil })
	if _, err := w.BatchWriteItem(wctx, &dynamodb.BatchWriteItemInput{}); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("write under an overdue lease = %v; want ErrLost", err)
	}
	if got := out.calls.Load(); got != 1 {
		t.Fatalf("%d writes reached the output; want only the one made while the lease was fresh", got)
	}
	select {
	case <-l.Lost():
	default:
		t.Fatal("the overdue lease is not marked lost")
	}
	if _, err := w.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{}); err != nil || out.calls.Load() != 2 {
		t.Fatalf("a write outside any lease: %v, %d calls", err, out.calls.Load())
	}
}
