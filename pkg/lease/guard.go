package lease

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
)

// guardKey carries, in a context made by Lease.WithContext, the lease the
// work under that context belongs to.
type guardKey struct{}

// FromContext returns the lease whose WithContext made ctx (or an
// ancestor of it), or nil.
func FromContext(ctx context.Context) *Lease {
	l, _ := ctx.Value(guardKey{}).(*Lease)
	return l
}

// GuardWrites wraps an output client so that a write made under a lease's
// context (Lease.WithContext) is sent only while the lease is held: every
// BatchWriteItem call, and every attempt the SDK makes of it, first runs
// Lease.CheckHeld and fails with its error (errors.Is ErrLost or ErrEnded)
// instead of sending. A worker paused past its lease therefore sends no
// more writes when it resumes. Writes under other contexts pass through.
//
// What cannot be stopped is a request already sent: one delivered late by
// the network still lands (see docs/scale-out.md).
func GuardWrites(c dynamo.BatchWriteAPI) dynamo.BatchWriteAPI { return guarded{c} }

type guarded struct{ dynamo.BatchWriteAPI }

func (g guarded) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	l := FromContext(ctx)
	if l == nil {
		return g.BatchWriteAPI.BatchWriteItem(ctx, in, optFns...)
	}
	if err := l.CheckHeld(); err != nil {
		return nil, err
	}
	// Check again before each attempt: the SDK retries inside the call.
	perAttempt := func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("ddbsyncLeaseGuard",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					if err := l.CheckHeld(); err != nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, err
					}
					return next.HandleFinalize(ctx, in)
				}), middleware.After)
		})
	}
	return g.BatchWriteAPI.BatchWriteItem(ctx, in, append(append([]func(*dynamodb.Options){}, optFns...), perAttempt)...)
}
