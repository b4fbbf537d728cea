package backfill_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ddbsync/ddbsync/internal/benchutil"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/backfill"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// load writes n generated items into table.
func load(t *testing.T, c *dynamodb.Client, table string, n int, gen func(i int) map[string]types.AttributeValue) {
	t.Helper()
	if err := benchutil.Load(context.Background(), c, table, n, 16, gen); err != nil {
		t.Fatalf("load %s: %v", table, err)
	}
}

func simpleItem(i int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk":   &types.AttributeValueMemberS{Value: fmt.Sprintf("item-%07d", i)},
		"n":    &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
		"data": &types.AttributeValueMemberS{Value: fmt.Sprintf("payload of item %d, some text to give it weight", i)},
	}
}

// faults wraps a client and injects failures at set rates: BatchWriteItem
// leaves a share of the items unprocessed (without writing them), answers
// ProvisionedThroughputExceededException or a 500; Scan is throttled.
type faults struct {
	*dynamodb.Client
	unprocessed, throttle, serverError, scanThrottle float64
	fatal                                            error // returned by every BatchWriteItem when set

	mu  sync.Mutex
	rnd *rand.Rand

	calls, partials, throttles, errors500, scanThrottles atomic.Int64
}

func newFaults(c *dynamodb.Client) *faults {
	return &faults{Client: c, rnd: rand.New(rand.NewPCG(1, 2))}
}

func (f *faults) roll(p float64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rnd.Float64() < p
}

// first makes the first call of a fault kind with a rate fail for sure,
// so that a test that asserts a kind was exercised never depends on luck.
func (f *faults) first(p float64, seen *atomic.Int64) bool {
	return p > 0 && seen.Load() == 0
}

func throttleErr() error {
	return &types.ProvisionedThroughputExceededException{Message: aws.String("injected throttle")}
}

func serverErr() error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 500}},
		Err:      errors.New("injected internal server error"),
	}}
}

func (f *faults) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.calls.Add(1)
	if f.fatal != nil {
		return nil, f.fatal
	}
	switch {
	case f.first(f.throttle, &f.throttles) || f.roll(f.throttle):
		f.throttles.Add(1)
		return nil, throttleErr()
	case f.first(f.serverError, &f.errors500) || f.roll(f.serverError):
		f.errors500.Add(1)
		return nil, serverErr()
	case f.first(f.unprocessed, &f.partials) || f.roll(f.unprocessed):
		// Write the first half, hand the rest back unprocessed.
		for table, reqs := range in.RequestItems {
			if len(reqs) < 2 {
				continue
			}
			half := len(reqs) / 2
			out, err := f.Client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems:           map[string][]types.WriteRequest{table: reqs[:half]},
				ReturnConsumedCapacity: in.ReturnConsumedCapacity,
			}, o...)
			if err != nil {
				return nil, err
			}
			if len(out.UnprocessedItems) > 0 {
				return nil, errors.New("test wrapper: DynamoDB Local left items unprocessed")
			}
			f.partials.Add(1)
			out.UnprocessedItems = map[string][]types.WriteRequest{table: reqs[half:]}
			return out, nil
		}
	}
	return f.Client.BatchWriteItem(ctx, in, o...)
}

func (f *faults) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	if f.first(f.scanThrottle, &f.scanThrottles) || f.roll(f.scanThrottle) {
		f.scanThrottles.Add(1)
		return nil, throttleErr()
	}
	return f.Client.Scan(ctx, in, o...)
}

var _ backfill.SourceAPI = (*faults)(nil)
var _ backfill.DestAPI = (*faults)(nil)

func zapcoreFor(w *bytes.Buffer) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(zapcore.AddSync(w)), zap.InfoLevel)
}
