package lease_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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
