package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/retry"
)

// ProcessOptions configure Process.
type ProcessOptions struct {
	// Poll is the time between two Acquire rounds; default Duration/2, so
	// a dead worker's units are picked up about 1.5 lease durations after
	// its last heartbeat.
	Poll time.Duration
	// BeforeAcquire runs before every round, e.g. to Register the shards
	// a stream has grown since; nil: nothing.
	BeforeAcquire func(ctx context.Context) error
	// FailAfter is how long rounds may keep failing with retryable errors
	// (throttling, 5xx, network) before Process gives up; default 10
	// lease durations. Other errors stop Process at once.
	FailAfter time.Duration
}

// Func works on one unit. It runs under a context that is cancelled when
// the run stops (ctx of Process), the lease is lost, or another worker
// asks for the lease (cause ErrHandoff: stop as on a clean stop, and
// Process releases the lease to that worker once Func returned). It resumes from
// l.Resume, calls l.Checkpoint as it progresses, and returns nil when the
// unit is complete (Process then finishes the lease). On cancellation it
// writes its last checkpoint (with context.WithoutCancel: the lease is
// still held until Process releases it) and returns the context's error.
type Func func(ctx context.Context, l *Lease) error

// Process works on the units of scope together with the other workers
// until every unit is finished (nil), ctx is cancelled (ctx.Err(), after
// every Func has returned and this worker's leases of scope are released,
// checkpoints kept), or a Func fails (that error, after the same clean
// stop). A unit whose lease is lost is abandoned silently: its new owner
// continues from the last checkpoint. Process keeps the leases renewed:
// if Run is not running it starts a heartbeat of its own.
func (m *Manager) Process(ctx context.Context, scope string, opts ProcessOptions, fn Func) error {
	if opts.Poll <= 0 {
		opts.Poll = m.opts.Duration / 2
	}
	if opts.FailAfter <= 0 {
		opts.FailAfter = 10 * m.opts.Duration
	}
	if m.running.Load() == 0 {
		hbCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { _ = m.Run(hbCtx); close(done) }()
		defer func() { stop(); <-done }()
	}

	workCtx, cancelWork := context.WithCancelCause(ctx)
	defer cancelWork(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		fatal    error
		finished = make(chan struct{}, 1) // a unit ended: look for more work at once
	)
	setFatal := func(err error) {
		mu.Lock()
		if fatal == nil {
			fatal = err
			cancelWork(err)
		}
		mu.Unlock()
	}
	runUnit := func(l *Lease) {
		defer wg.Done()
		defer func() {
			select {
			case finished <- struct{}{}:
			default:
			}
		}()
		// The unit stops when the run stops, the lease ends, or another
		// worker asks for the lease (a graceful handoff: like a stop).
		uctx, cancel := l.WithContext(workCtx)
		hctx, hcancel := context.WithCancelCause(uctx)
		stopHandoff := context.AfterFunc(l.handoffCtx, func() { hcancel(ErrHandoff) })
		err := fn(hctx, l)
		stopHandoff()
		hcancel(context.Canceled)
		cancel()
		switch {
		case l.Err() != nil && errors.Is(l.Err(), ErrLost):
			// Taken over (or not renewed in time): the new owner continues.
		case err == nil:
			if ferr := l.Finish(context.WithoutCancel(ctx)); ferr != nil && !errors.Is(ferr, ErrLost) {
				setFatal(ferr)
			}
		case workCtx.Err() != nil:
			// Stopping: the lease is released below.
		case l.handoffCtx.Err() != nil:
			// Asked for by another worker: the unit stopped with its last
			// checkpoint written; give the lease up, kept for that worker.
			if rerr := l.Release(context.WithoutCancel(ctx)); rerr != nil && !errors.Is(rerr, ErrLost) && !errors.Is(rerr, ErrEnded) {
				setFatal(rerr)
			} else if rerr == nil {
				m.log.Info(fmt.Sprintf("handed %s %s over to %s at its request", scope, l.Unit(), l.HandoffTo()), zap.String("unit", l.Unit()))
			}
		default:
			setFatal(fmt.Errorf("%s %s: %w", scope, l.Unit(), err))
		}
	}

	err := m.processLoop(workCtx, scope, opts, finished, func(l *Lease) {
		wg.Add(1)
		go runUnit(l)
	})
	if err != nil {
		setFatal(err)
	}
	wg.Wait()
	// Give up whatever is still held in this scope, checkpoints kept.
	var relErr error
	for _, l := range m.Held() {
		if l.Scope() == scope {
			if rerr := l.Release(context.WithoutCancel(ctx)); rerr != nil && !errors.Is(rerr, ErrLost) && !errors.Is(rerr, ErrEnded) {
				relErr = errors.Join(relErr, rerr)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case fatal != nil:
		return errors.Join(fatal, relErr)
	case ctx.Err() != nil:
		return errors.Join(ctx.Err(), relErr)
	}
	return relErr
}

// processLoop acquires leases and hands them to start until the scope is
// done or ctx is cancelled.
func (m *Manager) processLoop(ctx context.Context, scope string, opts ProcessOptions, finished <-chan struct{}, start func(*Lease)) error {
	var failingSince time.Time
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-finished:
		}
		// A failing round is retried at the next poll while the failures
		// are transient (throttling, 5xx, network) and younger than
		// FailAfter; anything else (access denied, table gone) stops.
		done, err := m.round(ctx, scope, opts, start)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			failingSince = time.Time{}
			if done {
				return nil
			}
		case !retry.IsRetryable(err):
			return err
		case failingSince.IsZero():
			failingSince = time.Now()
			fallthrough
		default:
			if time.Since(failingSince) > opts.FailAfter {
				return fmt.Errorf("the lease table kept failing for %s: %w", opts.FailAfter, err)
			}
			m.log.Warn(fmt.Sprintf("taking leases of %s failed (will retry): %v", scope, err))
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(opts.Poll)
	}
}

// round is one BeforeAcquire + Acquire; it reports whether the scope is
// done (every lease finished, none held here).
func (m *Manager) round(ctx context.Context, scope string, opts ProcessOptions, start func(*Lease)) (bool, error) {
	if opts.BeforeAcquire != nil {
		if err := opts.BeforeAcquire(ctx); err != nil {
			return false, err
		}
	}
	taken, err := m.Acquire(ctx, scope)
	for _, l := range taken { // even on error: these are held now
		start(l)
	}
	if err != nil || len(taken) > 0 || m.holds(scope) {
		return false, err
	}
	return m.Done(ctx, scope)
}

func (m *Manager) holds(scope string) bool {
	for _, l := range m.Held() {
		if l.Scope() == scope {
			return true
		}
	}
	return false
}
