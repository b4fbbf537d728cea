package retry

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	for attempt, ceil := range map[int]time.Duration{0: 10 * time.Millisecond, 1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 4: 80 * time.Millisecond, 5: 100 * time.Millisecond, 80: 100 * time.Millisecond} {
		for i := 0; i < 200; i++ {
			if d := b.Delay(attempt); d < 0 || d > ceil {
				t.Fatalf("Delay(%d) = %s, want within [0, %s]", attempt, d, ceil)
			}
		}
	}
	if d := (Backoff{}).Delay(3); d != 0 {
		t.Fatalf("zero backoff gave %s", d)
	}
	if got := (Backoff{}).OrDefault(); got != (Backoff{DefaultBase, DefaultMax}) {
		t.Fatalf("OrDefault = %+v", got)
	}
}

var (
	throttle = &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}
	denied   = &smithy.GenericAPIError{Code: "AccessDeniedException"}
	// unavailable is a 503 as the SDK reports it.
	unavailable = &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}}, Err: errors.New("service unavailable")}
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err                 error
		throttle, retryable bool
	}{
		{throttle, true, true},
		{&smithy.GenericAPIError{Code: "LimitExceededException"}, true, true},
		{unavailable, false, true},
		{denied, false, false},
		{context.Canceled, false, false},
		{nil, false, false},
	} {
		if got := IsThrottle(tc.err); got != tc.throttle {
			t.Errorf("IsThrottle(%v) = %v", tc.err, got)
		}
		if got := IsRetryable(tc.err); got != tc.retryable {
			t.Errorf("IsRetryable(%v) = %v", tc.err, got)
		}
	}
}

// script returns a function that returns errs one after the other, then
// nil, and counts its calls.
func script(calls *int, errs ...error) func() error {
	return func() error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

func fast() *Pacer { return &Pacer{Backoff: Backoff{Base: time.Microsecond, Max: time.Microsecond}} }

func TestCall(t *testing.T) {
	t.Run("throttling is waited out however long it lasts", func(t *testing.T) {
		p := fast()
		p.Retries, p.Throttles = new(atomic.Int64), new(atomic.Int64)
		errs := make([]error, 50)
		for i := range errs {
			errs[i] = throttle
		}
		calls := 0
		if err := p.Call(context.Background(), script(&calls, errs...)); err != nil || calls != 51 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
		if p.Retries.Load() != 50 || p.Throttles.Load() != 50 {
			t.Fatalf("retries %d, throttles %d", p.Retries.Load(), p.Throttles.Load())
		}
	})
	t.Run("other retryable errors a bounded number of times", func(t *testing.T) {
		p := fast()
		p.MaxErrors = 3
		p.Retries, p.Throttles = new(atomic.Int64), new(atomic.Int64)
		calls := 0
		err := p.Call(context.Background(), script(&calls, unavailable, throttle, unavailable, unavailable, unavailable, unavailable))
		if err != unavailable || calls != 5 {
			t.Fatalf("err %v after %d calls, want the 503 after 5", err, calls)
		}
		if p.Retries.Load() != 4 || p.Throttles.Load() != 1 {
			t.Fatalf("retries %d, throttles %d", p.Retries.Load(), p.Throttles.Load())
		}
	})
	t.Run("bounded throttling", func(t *testing.T) {
		p := fast()
		p.MaxErrors, p.BoundThrottling = 2, true
		calls := 0
		if err := p.Call(context.Background(), script(&calls, throttle, throttle, throttle)); err != throttle || calls != 3 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})
	t.Run("an error not worth retrying fails at once", func(t *testing.T) {
		p := fast()
		var told []error
		p.OnRetry = func(err error) { told = append(told, err) }
		calls := 0
		if err := p.Call(context.Background(), script(&calls, throttle, denied)); err != denied || calls != 2 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
		if len(told) != 1 || told[0] != throttle {
			t.Fatalf("OnRetry told %v", told)
		}
	})
	t.Run("Again calls again, counted as a retry", func(t *testing.T) {
		p := fast()
		p.Retries = new(atomic.Int64)
		calls := 0
		if err := p.Call(context.Background(), script(&calls, Again(false), Again(true), Again(false))); err != nil || calls != 4 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
		if p.Retries.Load() != 3 {
			t.Fatalf("retries %d", p.Retries.Load())
		}
	})
	t.Run("a cancelled context ends the call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p := &Pacer{Backoff: Backoff{Base: time.Hour, Max: time.Hour}}
		calls := 0
		err := p.Call(ctx, func() error {
			calls++
			cancel()
			return throttle
		})
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})
}
