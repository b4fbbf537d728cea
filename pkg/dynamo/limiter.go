package dynamo

import (
	"context"
	"math"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Limiter keeps a caller under a capacity budget (read or write units per
// second). Callers Wait for an estimate of a request's cost before sending
// it, then report what DynamoDB said the request consumed
// (ReturnConsumedCapacity); the difference is charged so that the budget
// is kept on average. A nil *Limiter allows everything.
type Limiter struct {
	lim   *rate.Limiter
	burst int
	// estimate of units per item, in milli-units, learned from responses
	perItem atomic.Int64
}

// NewLimiter returns a limiter for unitsPerSecond, or nil when it is 0 or
// less (no limit).
func NewLimiter(unitsPerSecond float64) *Limiter {
	if unitsPerSecond <= 0 {
		return nil
	}
	burst := int(math.Ceil(unitsPerSecond))
	l := &Limiter{lim: rate.NewLimiter(rate.Limit(unitsPerSecond), burst), burst: burst}
	l.perItem.Store(1000)
	return l
}

// Rate is the budget in units per second (0 for a nil limiter).
func (l *Limiter) Rate() float64 {
	if l == nil {
		return 0
	}
	return float64(l.lim.Limit())
}

// Estimate is the expected cost of a request for n items.
func (l *Limiter) Estimate(n int) float64 {
	if l == nil {
		return 0
	}
	return float64(n) * float64(l.perItem.Load()) / 1000
}

// Wait blocks until units may be spent.
func (l *Limiter) Wait(ctx context.Context, units float64) error {
	if l == nil || units <= 0 {
		return nil
	}
	n := int(math.Ceil(units))
	for n > 0 {
		k := min(n, l.burst)
		if err := l.lim.WaitN(ctx, k); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		n -= k
	}
	return nil
}

// Settle records what a request for items items really consumed after
// waiting for estimated units, charging any excess, and updates the
// per-item estimate.
func (l *Limiter) Settle(ctx context.Context, items int, estimated, consumed float64) error {
	if l == nil {
		return nil
	}
	if items > 0 && consumed > 0 {
		per := int64(consumed / float64(items) * 1000)
		old := l.perItem.Load()
		// moving average, 1/4 weight to the newest observation
		l.perItem.Store(old + (per-old)/4)
	}
	if consumed > estimated {
		return l.Wait(ctx, consumed-estimated)
	}
	return nil
}
