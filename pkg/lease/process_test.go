package lease_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"go.uber.org/zap/zaptest"

	"github.com/ddbsync/ddbsync/pkg/lease"
	"github.com/ddbsync/ddbsync/pkg/state"
)

func TestProcessTwoWorkers(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	const n = 10
	var mu sync.Mutex
	completed := map[string]int{}
	work := func(ctx context.Context, l *lease.Lease) error {
		var cp checkpoint
		if _, err := l.Resume(&cp); err != nil {
			return err
		}
		for cp.Page < 3 {
			cp.Page++
			if err := l.Checkpoint(ctx, cp); err != nil {
				return err
			}
		}
		mu.Lock()
		completed[l.Unit()]++
		mu.Unlock()
		return nil
	}
	errs := make(chan error, 2)
	for _, name := range []string{"a", "b"} {
		m := lease.NewManager(st, name, lease.Options{Duration: duration, RenewEvery: renewEvery, Logger: zaptest.NewLogger(t).Named(name)})
		if err := m.Register(ctx, scope, "total_segments=10", segments(n)); err != nil {
			t.Fatal(err)
		}
		go func() { errs <- m.Process(ctx, scope, lease.ProcessOptions{}, work) }()
	}
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
		case <-time.After(deadline):
			t.Fatal("Process did not return after all units were done")
		}
	}
	m := lease.NewManager(st, "observer", lease.Options{})
	infos, err := m.List(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != n {
		t.Fatalf("%d leases", len(infos))
	}
	for _, in := range infos {
		if !in.Finished || in.Owner != "" || string(in.Checkpoint) != `{"page":3}` {
			t.Errorf("%s: finished %v owner %q checkpoint %s", in.Unit, in.Finished, in.Owner, in.Checkpoint)
		}
		if completed[in.Unit] < 1 {
			t.Errorf("%s was never completed by a worker", in.Unit)
		}
	}
}

func TestProcessCleanStopHandsOver(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	a := lease.NewManager(st, "a", lease.Options{Duration: time.Hour, RenewEvery: time.Minute, Logger: zaptest.NewLogger(t).Named("a")})
	if err := a.Register(ctx, scope, "total_segments=4", segments(4)); err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 4)
	actx, stopA := context.WithCancel(ctx)
	aDone := make(chan error, 1)
	go func() {
		aDone <- a.Process(actx, scope, lease.ProcessOptions{}, func(ctx context.Context, l *lease.Lease) error {
			if err := l.Checkpoint(ctx, checkpoint{Page: 1}); err != nil {
				return err
			}
			started <- l.Unit()
			<-ctx.Done()
			// Interrupted: the last checkpoint, then stop.
			if err := l.Checkpoint(context.WithoutCancel(ctx), checkpoint{Page: 2}); err != nil {
				return err
			}
			return ctx.Err()
		})
	}()
	for i := 0; i < 4; i++ {
		select {
		case <-started:
		case <-time.After(deadline):
			t.Fatal("a did not start all four units")
		}
	}
	stopA()
	select {
	case err := <-aDone:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted Process = %v; want context.Canceled", err)
		}
	case <-time.After(deadline):
		t.Fatal("Process did not stop after cancel")
	}
	infos, err := a.List(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Owner != "" || in.Finished || string(in.Checkpoint) != `{"page":2}` {
			t.Errorf("after a clean stop %s: owner %q finished %v checkpoint %s; want released with page 2", in.Unit, in.Owner, in.Finished, in.Checkpoint)
		}
	}
	// With an hour-long lease, b can only get the units at once because a
	// released them.
	b := lease.NewManager(st, "b", lease.Options{Duration: time.Hour, RenewEvery: time.Minute, Logger: zaptest.NewLogger(t).Named("b")})
	var mu sync.Mutex
	var resumed []string
	done := make(chan error, 1)
	go func() {
		done <- b.Process(ctx, scope, lease.ProcessOptions{}, func(ctx context.Context, l *lease.Lease) error {
			var cp checkpoint
			if ok, err := l.Resume(&cp); !ok || err != nil {
				return fmt.Errorf("no checkpoint to resume from: %v", err)
			}
			mu.Lock()
			resumed = append(resumed, fmt.Sprintf("%s@%d", l.Unit(), cp.Page))
			mu.Unlock()
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("b: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("b did not finish the released units")
	}
	if len(resumed) != 4 || !strings.Contains(strings.Join(resumed, ","), "@2") || strings.Contains(strings.Join(resumed, ","), "@1") {
		t.Errorf("b resumed %v; want the four units at page 2", resumed)
	}
}

func TestProcessFailureStopsCleanly(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	a := lease.NewManager(st, "a", lease.Options{Duration: time.Hour, RenewEvery: time.Minute, Logger: zaptest.NewLogger(t)})
	if err := a.Register(ctx, scope, "total_segments=3", segments(3)); err != nil {
		t.Fatal(err)
	}
	err := a.Process(ctx, scope, lease.ProcessOptions{}, func(ctx context.Context, l *lease.Lease) error {
		if l.Unit() == "segment-1" {
			return errors.New("boom")
		}
		<-ctx.Done() // the others run until the failure stops them
		return ctx.Err()
	})
	if err == nil || !strings.Contains(err.Error(), "segment-1: boom") {
		t.Fatalf("Process = %v; want the unit's failure", err)
	}
	infos, _ := a.List(ctx, scope)
	for _, in := range infos {
		if in.Owner != "" || in.Finished {
			t.Errorf("after a failure %s: owner %q finished %v; want released, unfinished", in.Unit, in.Owner, in.Finished)
		}
	}
	if held := a.Held(); len(held) != 0 {
		t.Errorf("still holding %d leases", len(held))
	}
}

// flakyQueries fails the first n Query calls with err.
type flakyQueries struct {
	state.DynamoAPI
	mu  sync.Mutex
	n   int
	err error
}

func (f *flakyQueries) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	f.mu.Lock()
	fail := f.n > 0
	if fail {
		f.n--
	}
	f.mu.Unlock()
	if fail {
		return nil, f.err
	}
	return f.DynamoAPI.Query(ctx, in, optFns...)
}

func TestProcessRidesOutTransientErrors(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	flaky := &flakyQueries{DynamoAPI: st.Client(), n: 3, err: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}}
	m := lease.NewManagerFor(flaky, st.Table(), "a", lease.Options{Duration: 400 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err := lease.NewManager(st, "setup", lease.Options{}).Register(ctx, scope, "x", segments(2)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ran := 0
	err := m.Process(ctx, scope, lease.ProcessOptions{FailAfter: deadline}, func(ctx context.Context, l *lease.Lease) error {
		mu.Lock()
		ran++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatalf("Process after three throttled rounds = %v; want nil", err)
	}
	if ran != 2 || flaky.n != 0 {
		t.Errorf("ran %d units, %d failures left", ran, flaky.n)
	}
}

func TestProcessStopsOnPermanentError(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	flaky := &flakyQueries{DynamoAPI: st.Client(), n: 1000, err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not allowed"}}
	m := lease.NewManagerFor(flaky, st.Table(), "a", lease.Options{Logger: zaptest.NewLogger(t)})
	done := make(chan error, 1)
	go func() {
		done <- m.Process(ctx, scope, lease.ProcessOptions{}, func(ctx context.Context, l *lease.Lease) error { return nil })
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
			t.Errorf("Process = %v; want the access error", err)
		}
	case <-time.After(deadline):
		t.Fatal("Process kept retrying a permanent error")
	}
}
