package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/retry"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

// flaky is a BatchWriteItem client that throttles, leaves items
// unprocessed and fails with 500s, recording what it really wrote. It
// stands for faults DynamoDB Local never produces.
type flaky struct {
	mu       sync.Mutex
	calls    int
	written  map[string]int
	failWith error // returned once every 3 calls
}

func (f *flaky) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls%3 == 1 && f.failWith != nil {
		return nil, f.failWith
	}
	var unprocessed []types.WriteRequest
	for table, reqs := range in.RequestItems {
		for i, r := range reqs {
			if i%2 == 1 && f.calls%2 == 0 { // leave every other item unprocessed on even calls
				unprocessed = append(unprocessed, r)
				continue
			}
			f.written[r.PutRequest.Item["pk"].(*types.AttributeValueMemberS).Value]++
		}
		out := &dynamodb.BatchWriteItemOutput{}
		if len(unprocessed) > 0 {
			out.UnprocessedItems = map[string][]types.WriteRequest{table: unprocessed}
		}
		return out, nil
	}
	return &dynamodb.BatchWriteItemOutput{}, nil
}

func requests(n int) []types.WriteRequest {
	var reqs []types.WriteRequest
	for i := range n {
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: fmt.Sprint(i)}}}})
	}
	return reqs
}

func TestWriterRetriesUnprocessedAndThrottling(t *testing.T) {
	f := &flaky{written: map[string]int{}, failWith: &types.ProvisionedThroughputExceededException{Message: new(string)}}
	st := stats.NewEntry("a", "b")
	w := &dynamo.Writer{Client: f, Table: "t", Stats: st, Backoff: retry.Backoff{Base: time.Microsecond, Max: time.Millisecond}}
	n, err := w.Write(context.Background(), requests(110))
	if err != nil {
		t.Fatal(err)
	}
	if n != 110 {
		t.Fatalf("written = %d, want 110", n)
	}
	for i := range 110 {
		if c := f.written[fmt.Sprint(i)]; c != 1 {
			t.Errorf("item %d written %d times", i, c)
		}
	}
	if st.Throttles.Load() == 0 || st.Retries.Load() <= st.Throttles.Load() {
		t.Errorf("throttles=%d retries=%d: both throttles and unprocessed retries expected", st.Throttles.Load(), st.Retries.Load())
	}
}

func TestWriterStopsOnValidationError(t *testing.T) {
	msg := "One or more parameter values were invalid"
	f := &flaky{written: map[string]int{}, failWith: &types.ResourceNotFoundException{Message: &msg}}
	w := &dynamo.Writer{Client: f, Table: "t", Backoff: retry.Backoff{Base: time.Microsecond, Max: time.Millisecond}}
	n, err := w.Write(context.Background(), requests(30))
	var te *dynamo.TableError
	if !errors.As(err, &te) || te.Table != "t" {
		t.Fatalf("err = %v, want a TableError for t", err)
	}
	if n != 0 {
		t.Fatalf("written = %d, want 0", n)
	}
}

func TestWriterHonoursCancel(t *testing.T) {
	f := &flaky{written: map[string]int{}, failWith: &types.ProvisionedThroughputExceededException{}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &dynamo.Writer{Client: f, Table: "t"}
	if _, err := w.Write(ctx, requests(5)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
