package dynamo

import (
	"context"

	"github.com/aws/smithy-go/middleware"

	"github.com/ddbsync/ddbsync/pkg/retry"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

// CountRetries returns an API option (for the APIOptions of one call's
// dynamodb.Options or dynamodbstreams.Options) that counts, just inside
// the SDK's retry loop, every attempt after the first in st.Retries and
// every throttling answer in st.Throttles. The SDK's retryer absorbs most
// transient failures (throttling, 5xx, reset connections) inside one
// call, where the engines never see them; with this option the status
// display, the metrics and the summaries show them. A client without the
// SDK's retry middleware is left alone.
func CountRetries(st *stats.Entry) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		if _, ok := stack.Finalize.Get("Retry"); !ok {
			return nil
		}
		attempts := 0
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("ddbsyncCountRetries",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				attempts++
				if attempts > 1 {
					st.Retries.Add(1)
				}
				out, md, err := next.HandleFinalize(ctx, in)
				if err != nil && retry.IsThrottle(err) {
					st.Throttles.Add(1)
				}
				return out, md, err
			}), "Retry", middleware.After)
	}
}
