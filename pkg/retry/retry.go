// Package retry is the one retry mechanism of the engines: which errors
// are worth another try (IsThrottle, IsRetryable), how long to wait
// (Backoff, exponential with full jitter) and the loop that ties them
// together (Pacer.Call), counting every retry.
//
// The rule is the same everywhere: throttling is waited out for as long
// as it lasts (it slows a run down, it never fails it); other transient
// errors (5xx, broken connections) are tried again a bounded number of
// times in a row, beyond the SDK's own retries; anything else fails at
// once. A request answered but not entirely done (unprocessed items or
// keys) asks for another round with Again.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// Default backoff and bound of a Pacer's zero fields.
const (
	DefaultBase      = 50 * time.Millisecond
	DefaultMax       = 10 * time.Second
	DefaultMaxErrors = 5
)

var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"LimitExceededException":                 true,
	"Throttling":                             true,
	"TooManyRequestsException":               true,
}

// IsThrottle reports whether err is DynamoDB (or Streams) throttling.
func IsThrottle(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && throttleCodes[ae.ErrorCode()] {
		return true
	}
	return awsretry.IsErrorThrottles(awsretry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

// IsRetryable reports whether err is worth trying again later: throttling,
// a 5xx or a broken connection, but not a cancelled context.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if IsThrottle(err) {
		return true
	}
	return awsretry.IsErrorRetryables(awsretry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

// Backoff is exponential backoff with full jitter: attempt n (from 1)
// waits a random time up to Base·2ⁿ⁻¹, capped at Max.
type Backoff struct {
	Base, Max time.Duration
}

// BackoffDelay implements the SDK's retry.BackoffDelayer.
func (b Backoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	return b.Delay(attempt), nil
}

// Delay returns the delay before retry number attempt (from 1).
func (b Backoff) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	ceil := b.Max
	if attempt < 40 {
		if d := b.Base << (attempt - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// OrDefault fills zero fields with DefaultBase and DefaultMax.
func (b Backoff) OrDefault() Backoff {
	if b.Base <= 0 {
		b.Base = DefaultBase
	}
	if b.Max <= 0 {
		b.Max = DefaultMax
	}
	return b
}

// Sleep waits for d or until ctx ends (then it returns ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// again is the error Again returns.
type again struct{ progress bool }

func (again) Error() string { return "request partly done; calling again" }

// Again is what a function given to Pacer.Call returns when its request
// was answered but not entirely done (UnprocessedItems, UnprocessedKeys):
// Call backs off and calls it again, for as long as it takes. progress
// says whether part of it was done this time, which restarts the backoff
// from its base.
func Again(progress bool) error { return again{progress} }

// A Pacer calls functions that send requests, backing off and retrying
// them by the package's rule. Its fields are read only; one Pacer may
// serve any number of concurrent calls.
type Pacer struct {
	// Backoff between tries (zero fields: DefaultBase, DefaultMax).
	Backoff Backoff
	// MaxErrors is how many retryable errors other than throttling in a
	// row are tried again before Call gives up (0: DefaultMaxErrors).
	MaxErrors int
	// BoundThrottling counts throttling among the MaxErrors instead of
	// waiting it out: for a probe whose caller copes with failure.
	BoundThrottling bool
	// Retries and Throttles, when set, count every retry (including each
	// round asked for with Again) and every throttling error.
	Retries, Throttles *atomic.Int64
	// OnRetry, when set, is told about every error about to be retried
	// (not about Again).
	OnRetry func(err error)
}

// Call calls fn until it returns nil, returning nil; or until it returns
// an error not worth retrying, or one retryable error too many, returning
// that error as it is (the caller adds what it concerns); or until ctx
// ends, returning ctx.Err().
func (p *Pacer) Call(ctx context.Context, fn func() error) error {
	b := p.Backoff.OrDefault()
	maxErrors := p.MaxErrors
	if maxErrors <= 0 {
		maxErrors = DefaultMaxErrors
	}
	attempt, failed := 0, 0 // tries since the last progress; failed tries
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if a, ok := err.(again); ok {
			if a.progress {
				attempt = 0
			}
		} else {
			throttled := IsThrottle(err)
			if !throttled || p.BoundThrottling {
				if !IsRetryable(err) || failed >= maxErrors {
					return err
				}
				failed++
			}
			if throttled && p.Throttles != nil {
				p.Throttles.Add(1)
			}
			if p.OnRetry != nil {
				p.OnRetry(err)
			}
		}
		if p.Retries != nil {
			p.Retries.Add(1)
		}
		attempt++
		if err := Sleep(ctx, b.Delay(attempt)); err != nil {
			return err
		}
	}
}
