package faultproxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/faultproxy"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/plan"
	ddbretry "github.com/ddbsync/ddbsync/pkg/retry"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// start runs a proxy in front of DynamoDB Local for one test.
func start(t *testing.T, opts faultproxy.Options) *faultproxy.Proxy {
	t.Helper()
	opts.Upstream = ddbtest.Endpoint(t)
	p, err := faultproxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t.Logf("fault proxy: %s", p.Summary())
		p.Close()
	})
	return p
}

// via returns clients whose endpoint is the proxy, with the project's
// retryer; maxRetries < 0 means no retries.
func via(t *testing.T, p *faultproxy.Proxy, maxRetries int) (*dynamodb.Client, *dynamodbstreams.Client) {
	t.Helper()
	prov := creds.New(creds.Options{EndpointURL: p.URL, MaxRetries: maxRetries, RetryBase: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	c, err := prov.For(context.Background(), plan.Table{Region: ddbtest.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c.DynamoDB, c.Streams
}

func item(i int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk":  &types.AttributeValueMemberS{Value: fmt.Sprintf("k%04d", i)},
		"v":   &types.AttributeValueMemberN{Value: strconv.Itoa(i * 7)},
		"doc": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"s": &types.AttributeValueMemberS{Value: "<&> " + strings.Repeat("x", i%13)}}},
	}
}

func key(i int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("k%04d", i)}}
}

func pk(it map[string]types.AttributeValue) string {
	return it["pk"].(*types.AttributeValueMemberS).Value
}

// checkItems fails unless got holds exactly the items want (by pk).
func checkItems(t *testing.T, what string, want map[string]map[string]types.AttributeValue, got []map[string]types.AttributeValue) {
	t.Helper()
	seen := map[string]bool{}
	for _, it := range got {
		k := pk(it)
		if seen[k] {
			t.Errorf("%s: item %s returned twice", what, k)
		}
		seen[k] = true
		if w, ok := want[k]; !ok {
			t.Errorf("%s: unexpected item %s", what, k)
		} else if !reflect.DeepEqual(w, it) {
			t.Errorf("%s: item %s differs:\nwant %v\ngot  %v", what, k, w, it)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%s: %d distinct items, want %d", what, len(seen), len(want))
	}
}

func rawPost(t *testing.T, endpoint, target, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := faultproxy.New(faultproxy.Options{Upstream: "localhost:8000"}); err == nil || !strings.Contains(err.Error(), "http(s) URL") {
		t.Errorf("upstream without scheme: err = %v", err)
	}
	_, err := faultproxy.New(faultproxy.Options{Upstream: "http://127.0.0.1:1", Rules: []faultproxy.Rule{{Kind: faultproxy.Any, Rate: 1.5}}})
	if err == nil || !strings.Contains(err.Error(), "between 0 and 1") {
		t.Errorf("rate 1.5: err = %v", err)
	}
	p, err := faultproxy.New(faultproxy.Options{Upstream: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SetRate("", "Typo", 0.1); err == nil || !strings.Contains(err.Error(), `unknown fault kind "Typo"`) {
		t.Errorf("unknown kind: err = %v", err)
	}
	if err := p.SetRate("GetItem", faultproxy.Slow, -0.1); err == nil {
		t.Error("negative rate accepted")
	}
	if err := p.SetRate("GetItem", faultproxy.Slow, 0.25); err != nil {
		t.Fatal(err)
	}
	if err := p.SetRate("GetItem", faultproxy.Slow, 0.5); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Rules(), []faultproxy.Rule{{Op: "GetItem", Kind: faultproxy.Slow, Rate: 0.5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %v, want %v", got, want)
	}
	p.Close() // twice is fine
}

// TestErrorsAreTypedAndRetryable checks that each injected error reaches
// the SDK as the error real DynamoDB would produce, and that the
// project's retryer retries it.
func TestErrorsAreTypedAndRetryable(t *testing.T) {
	direct, _ := ddbtest.Clients(t)
	table := ddbtest.Name(t, "fp-errors")
	ddbtest.CreateTable(t, direct, table, ddbtest.StringKey)
	get := &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(1)}

	cases := []struct {
		kind     faultproxy.Kind
		status   int
		typed    func(error) bool
		throttle bool
	}{
		{faultproxy.ProvisionedThroughputExceeded, 400, func(err error) bool {
			var e *types.ProvisionedThroughputExceededException
			return errors.As(err, &e)
		}, true},
		{faultproxy.ThrottlingException, 400, func(err error) bool {
			var e *types.ThrottlingException
			return errors.As(err, &e)
		}, true},
		{faultproxy.RequestLimitExceeded, 400, func(err error) bool {
			var e *types.RequestLimitExceeded
			return errors.As(err, &e)
		}, true},
		{faultproxy.InternalServerError, 500, func(err error) bool {
			var e *types.InternalServerError
			return errors.As(err, &e)
		}, false},
		{faultproxy.ServiceUnavailable, 503, func(err error) bool {
			var e smithy.APIError
			return errors.As(err, &e) && e.ErrorCode() == "ServiceUnavailable"
		}, false},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			p := start(t, faultproxy.Options{Seed: 1, Rules: []faultproxy.Rule{{Op: "GetItem", Kind: tc.kind, Rate: 1}}})
			once, _ := via(t, p, -1)
			_, err := once.GetItem(context.Background(), get)
			if err == nil {
				t.Fatal("GetItem succeeded with the fault at rate 1")
			}
			if !tc.typed(err) {
				t.Errorf("error %T %v is not the expected typed error", err, err)
			}
			var st interface{ HTTPStatusCode() int }
			if !errors.As(err, &st) || st.HTTPStatusCode() != tc.status {
				t.Errorf("status = %v, want %d", st, tc.status)
			}
			if got := ddbretry.IsThrottle(err); got != tc.throttle {
				t.Errorf("ddbretry.IsThrottle = %v, want %v", got, tc.throttle)
			}
			if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) != aws.TrueTernary {
				t.Errorf("the SDK's retryer would not retry %v", err)
			}
			if got := retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary; got != tc.throttle {
				t.Errorf("SDK IsErrorThrottle = %v, want %v", got, tc.throttle)
			}
			// The retryer sends MaxRetries+1 attempts, all faulted.
			retrying, _ := via(t, p, 3)
			before := p.Requests("GetItem")
			if _, err := retrying.GetItem(context.Background(), get); err == nil {
				t.Fatal("GetItem succeeded with the fault at rate 1")
			}
			if got := p.Requests("GetItem") - before; got != 4 {
				t.Errorf("retrying client sent %d attempts, want 4", got)
			}
			if got := p.Count("GetItem", tc.kind); got != 5 {
				t.Errorf("Count(GetItem, %s) = %d, want 5", tc.kind, got)
			}
		})
	}

	t.Run("Streams", func(t *testing.T) {
		p := start(t, faultproxy.Options{Seed: 1, Rules: []faultproxy.Rule{{Op: "ListStreams", Kind: faultproxy.Throttle, Rate: 1}}})
		_, streams := via(t, p, -1)
		_, err := streams.ListStreams(context.Background(), &dynamodbstreams.ListStreamsInput{})
		var le *streamtypes.LimitExceededException
		if !errors.As(err, &le) {
			t.Fatalf("error %T %v, want *LimitExceededException", err, err)
		}
		if !ddbretry.IsThrottle(err) {
			t.Error("ddbretry.IsThrottle(LimitExceededException) = false")
		}
		if err := p.SetRules([]faultproxy.Rule{{Op: "ListStreams", Kind: faultproxy.InternalServerError, Rate: 1}}); err != nil {
			t.Fatal(err)
		}
		_, err = streams.ListStreams(context.Background(), &dynamodbstreams.ListStreamsInput{})
		var ise *streamtypes.InternalServerError
		if !errors.As(err, &ise) {
			t.Fatalf("error %T %v, want *InternalServerError", err, err)
		}
		if p.Count("ListStreams", faultproxy.LimitExceeded) != 1 || p.Count("ListStreams", faultproxy.InternalServerError) != 1 {
			t.Errorf("counters: %s", p.Summary())
		}
	})
}

func TestDroppedConnections(t *testing.T) {
	direct, _ := ddbtest.Clients(t)
	table := ddbtest.Name(t, "fp-drop")
	ddbtest.CreateTable(t, direct, table, ddbtest.StringKey)
	ctx := context.Background()
	exists := func(i int) bool {
		out, err := direct.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(i), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item != nil
	}
	for i, kind := range []faultproxy.Kind{faultproxy.DropBefore, faultproxy.DropAfter} {
		t.Run(string(kind), func(t *testing.T) {
			p := start(t, faultproxy.Options{Seed: 2, Rules: []faultproxy.Rule{{Op: "PutItem", Kind: kind, Rate: 1}}})
			c, _ := via(t, p, -1)
			_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item(i)})
			if err == nil {
				t.Fatal("PutItem succeeded on a dropped connection")
			}
			if !ddbretry.IsRetryable(err) {
				t.Errorf("dropped connection error is not retryable: %v", err)
			}
			wantWritten := kind == faultproxy.DropAfter
			if got := exists(i); got != wantWritten {
				t.Errorf("item written = %v, want %v", got, wantWritten)
			}
			if p.Count("PutItem", kind) != 1 {
				t.Errorf("counters: %s", p.Summary())
			}
		})
	}
}

func TestSlowResponses(t *testing.T) {
	direct, _ := ddbtest.Clients(t)
	table := ddbtest.Name(t, "fp-slow")
	ddbtest.CreateTable(t, direct, table, ddbtest.StringKey)
	const delay = 300 * time.Millisecond
	p := start(t, faultproxy.Options{Seed: 3, SlowDelay: delay, Rules: []faultproxy.Rule{{Op: "GetItem", Kind: faultproxy.Slow, Rate: 1}}})
	c, _ := via(t, p, -1)
	begin := time.Now()
	if _, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(1)}); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(begin); elapsed < delay {
		t.Errorf("answered after %v, before the %v delay", elapsed, delay)
	}
	if p.Count("GetItem", faultproxy.Slow) != 1 || p.Count("", faultproxy.Any) != 0 {
		t.Errorf("counters: %s", p.Summary())
	}
	// A client that gives up before the delay sees a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(1)}); err == nil {
		t.Error("GetItem with a 50ms deadline succeeded through a 300ms delay")
	}
}

// TestUnprocessedItemsAreNotWritten checks that the requests the proxy
// holds back come back as UnprocessedItems, unchanged, and are not
// written, while the others are.
func TestUnprocessedItemsAreNotWritten(t *testing.T) {
	direct, _ := ddbtest.Clients(t)
	t1, t2 := ddbtest.Name(t, "fp-unproc-a"), ddbtest.Name(t, "fp-unproc-b")
	ddbtest.CreateTable(t, direct, t1, ddbtest.StringKey)
	ddbtest.CreateTable(t, direct, t2, ddbtest.StringKey)
	var mu sync.Mutex
	var events []faultproxy.Event
	p := start(t, faultproxy.Options{Seed: 4, Rules: []faultproxy.Rule{{Op: "BatchWriteItem", Kind: faultproxy.UnprocessedItems, Rate: 1}},
		OnInject: func(e faultproxy.Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		}})
	c, _ := via(t, p, -1)
	ctx := context.Background()

	sent := map[string][]map[string]types.AttributeValue{}
	unprocessed := map[string]map[string]bool{t1: {}, t2: {}}
	for round := range 4 {
		reqs := map[string][]types.WriteRequest{}
		for i := range 15 {
			n := round*100 + i
			for _, tbl := range []string{t1, t2} {
				if tbl == t2 && i >= 10 {
					continue
				}
				it := item(n)
				sent[tbl] = append(sent[tbl], it)
				reqs[tbl] = append(reqs[tbl], types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
			}
		}
		out, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: reqs, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
		if err != nil {
			t.Fatal(err)
		}
		held := 0
		for tbl, wrs := range out.UnprocessedItems {
			byKey := map[string]map[string]types.AttributeValue{}
			for _, wr := range reqs[tbl] {
				byKey[pk(wr.PutRequest.Item)] = wr.PutRequest.Item
			}
			for _, wr := range wrs {
				if wr.PutRequest == nil {
					t.Fatalf("unprocessed request without PutRequest: %+v", wr)
				}
				k := pk(wr.PutRequest.Item)
				if !reflect.DeepEqual(byKey[k], wr.PutRequest.Item) {
					t.Errorf("unprocessed item %s changed:\nsent %v\ngot  %v", k, byKey[k], wr.PutRequest.Item)
				}
				unprocessed[tbl][k] = true
				held++
			}
		}
		if held < 1 || held > 24 {
			t.Errorf("round %d: %d of 25 requests unprocessed, want 1..24", round, held)
		}
	}
	mu.Lock()
	injected := append([]faultproxy.Event(nil), events...)
	mu.Unlock()
	if len(injected) != 4 {
		t.Fatalf("%d UnprocessedItems faults recorded, want 4", len(injected))
	}
	total := 0
	for _, tbl := range []string{t1, t2} {
		want := map[string]map[string]types.AttributeValue{}
		for _, it := range sent[tbl] {
			if !unprocessed[tbl][pk(it)] {
				want[pk(it)] = it
			}
		}
		total += len(unprocessed[tbl])
		checkItems(t, tbl, want, ddbtest.ScanAll(t, direct, tbl))
	}
	heldSum := 0
	for _, e := range injected {
		heldSum += e.Held
	}
	if heldSum != total {
		t.Errorf("events report %d held back, responses carried %d", heldSum, total)
	}

	// The rewritten response carries a correct CRC32 for the SDK's check.
	body := fmt.Sprintf(`{"RequestItems":{%q:[{"PutRequest":{"Item":{"pk":{"S":"crc1"}}}},{"PutRequest":{"Item":{"pk":{"S":"crc2"}}}}]}}`, t1)
	resp, b := rawPost(t, p.URL, "DynamoDB_20120810.BatchWriteItem", body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"UnprocessedItems":{"`+t1) {
		t.Fatalf("raw BatchWriteItem: %d %s", resp.StatusCode, b)
	}
	if got, want := resp.Header.Get("X-Amz-Crc32"), strconv.FormatUint(uint64(crc32.ChecksumIEEE(b)), 10); got != want {
		t.Errorf("X-Amz-Crc32 = %s, body checksum %s", got, want)
	}
}

func TestUnprocessedKeysAreReturned(t *testing.T) {
	direct, _ := ddbtest.Clients(t)
	table := ddbtest.Name(t, "fp-keys")
	ddbtest.CreateTable(t, direct, table, ddbtest.StringKey)
	var items []map[string]types.AttributeValue
	var keys []map[string]types.AttributeValue
	for i := range 60 {
		items = append(items, item(i))
		keys = append(keys, key(i))
	}
	ddbtest.PutItems(t, direct, table, items)
	p := start(t, faultproxy.Options{Seed: 5, Rules: []faultproxy.Rule{{Op: "BatchGetItem", Kind: faultproxy.UnprocessedKeys, Rate: 1}}})
	c, _ := via(t, p, -1)
	ka := types.KeysAndAttributes{
		Keys:                     keys,
		ProjectionExpression:     aws.String("#k, v"),
		ExpressionAttributeNames: map[string]string{"#k": "pk"},
		ConsistentRead:           aws.Bool(true),
	}
	out, err := c.BatchGetItem(context.Background(), &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: ka}})
	if err != nil {
		t.Fatal(err)
	}
	un, ok := out.UnprocessedKeys[table]
	if !ok || len(un.Keys) == 0 || len(un.Keys) >= 60 {
		t.Fatalf("UnprocessedKeys = %v, want 1..59 keys", out.UnprocessedKeys)
	}
	if aws.ToString(un.ProjectionExpression) != "#k, v" || !aws.ToBool(un.ConsistentRead) || !reflect.DeepEqual(un.ExpressionAttributeNames, ka.ExpressionAttributeNames) {
		t.Errorf("UnprocessedKeys lost the request's settings: %+v", un)
	}
	got := map[string]bool{}
	for _, it := range out.Responses[table] {
		if len(it) != 2 || it["v"] == nil {
			t.Errorf("projection not applied: %v", it)
		}
		got[pk(it)] = true
	}
	for _, k := range un.Keys {
		if got[pk(k)] {
			t.Errorf("key %s both returned and unprocessed", pk(k))
		}
		got[pk(k)] = true
	}
	if len(got) != 60 || len(out.Responses[table])+len(un.Keys) != 60 {
		t.Fatalf("%d returned + %d unprocessed, want 60 distinct keys", len(out.Responses[table]), len(un.Keys))
	}
	if p.Count("BatchGetItem", faultproxy.UnprocessedKeys) != 1 {
		t.Errorf("counters: %s", p.Summary())
	}
}

// TestWorkloadsUnderEachFault runs, for every fault kind at rate 0.5 on
// every operation, a workload of batch writes (dynamo.Writer), PutItem,
// Scan, BatchGetItem and GetRecords through the proxy with the project's
// retryer, and checks the data is exactly right and the faults happened.
func TestWorkloadsUnderEachFault(t *testing.T) {
	kinds := append([]faultproxy.Kind{faultproxy.Slow, faultproxy.Throttle, faultproxy.Any}, faultproxy.Failures...)
	direct, _ := ddbtest.Clients(t)
	for n, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			p := start(t, faultproxy.Options{Seed: uint64(100 + n), SlowDelay: 5 * time.Millisecond,
				Rules: []faultproxy.Rule{{Kind: kind, Rate: 0.5}}})
			c, streams := via(t, p, 30)
			table := ddbtest.Name(t, "fp-work")
			ddbtest.CreateTable(t, direct, table, ddbtest.KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeS, Stream: types.StreamViewTypeNewImage})
			ctx := context.Background()
			want := map[string]map[string]types.AttributeValue{}

			// Batch writes with the engines' writer.
			var reqs []types.WriteRequest
			for i := range 60 {
				it := item(i)
				want[pk(it)] = it
				reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
			}
			st := stats.NewEntry("in", "out")
			w := &dynamo.Writer{Client: c, Table: table, Stats: st, Backoff: ddbretry.Backoff{Base: time.Millisecond, Max: 20 * time.Millisecond}}
			for i := 0; i < len(reqs); i += 5 { // small batches: more requests to fault
				if n, err := w.Write(ctx, reqs[i:i+5]); err != nil || n != 5 {
					t.Fatalf("Write = %d, %v; want 5", n, err)
				}
			}
			if kind == faultproxy.UnprocessedItems && st.Retries.Load() == 0 {
				t.Error("writer recorded no retries for unprocessed items")
			}
			// Single writes.
			for i := 60; i < 80; i++ {
				it := item(i)
				want[pk(it)] = it
				if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
					t.Fatal(err)
				}
			}
			checkItems(t, "direct scan", want, ddbtest.ScanAll(t, direct, table))

			// Scan through the proxy, in small pages.
			var scanned []map[string]types.AttributeValue
			sp := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(table), Limit: aws.Int32(10), ConsistentRead: aws.Bool(true)})
			for sp.HasMorePages() {
				page, err := sp.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				scanned = append(scanned, page.Items...)
			}
			checkItems(t, "scan via proxy", want, scanned)

			// BatchGetItem through the proxy, following UnprocessedKeys.
			var pending []map[string]types.AttributeValue
			for i := range 80 {
				pending = append(pending, key(i))
			}
			var got []map[string]types.AttributeValue
			for len(pending) > 0 {
				chunk := pending[:min(10, len(pending))] // small batches: more requests to fault
				pending = pending[len(chunk):]
				for rounds := 0; len(chunk) > 0; rounds++ {
					if rounds > 200 {
						t.Fatalf("BatchGetItem: %d keys still unprocessed after 200 rounds", len(chunk))
					}
					out, err := c.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
						table: {Keys: chunk, ConsistentRead: aws.Bool(true)}}})
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, out.Responses[table]...)
					chunk = out.UnprocessedKeys[table].Keys
				}
			}
			checkItems(t, "BatchGetItem via proxy", want, got)

			// The stream through the proxy.
			checkItems(t, "stream via proxy", want, readStream(t, c, streams, table, len(want)))

			for _, op := range []string{"BatchWriteItem", "PutItem", "Scan", "BatchGetItem", "GetRecords"} {
				service := faultproxy.ServiceDynamoDB
				if op == "GetRecords" {
					service = faultproxy.ServiceStreams
				}
				applies := kind == faultproxy.Any || kind == faultproxy.Throttle || faultproxy.Applies(kind, service, op)
				if got := p.Count(op, kind); applies && got == 0 {
					t.Errorf("no %s fault injected into %s (%d requests)", kind, op, p.Requests(op))
				} else if !applies && got != 0 {
					t.Errorf("%d %s faults injected into %s, where they do not apply", got, kind, op)
				}
			}
		})
	}
}

// readStream reads the INSERT/MODIFY records of the table's stream until
// it has seen want distinct keys, and returns the latest image of each.
func readStream(t *testing.T, c *dynamodb.Client, s *dynamodbstreams.Client, table string, want int) []map[string]types.AttributeValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := s.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: desc.Table.LatestStreamArn})
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]map[string]types.AttributeValue{}
	var lastSeq string
	for _, sh := range sd.StreamDescription.Shards {
		it, err := s.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn: desc.Table.LatestStreamArn, ShardId: sh.ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil && len(images) < want {
			out, err := s.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10)})
			if err != nil {
				t.Fatalf("GetRecords: %v (%d of %d keys seen)", err, len(images), want)
			}
			for _, r := range out.Records {
				seq := aws.ToString(r.Dynamodb.SequenceNumber)
				if lastSeq != "" && len(seq) == len(lastSeq) && seq <= lastSeq {
					t.Errorf("record %s after %s: out of order or repeated", seq, lastSeq)
				}
				lastSeq = seq
				if r.Dynamodb.NewImage == nil {
					continue
				}
				img := map[string]types.AttributeValue{}
				for k, v := range r.Dynamodb.NewImage {
					img[k] = toDDB(v)
				}
				images[pk(img)] = img
			}
			iter = out.NextShardIterator
		}
	}
	var items []map[string]types.AttributeValue
	for _, it := range images {
		items = append(items, it)
	}
	return items
}

// toDDB converts the attribute values this test writes (S, N, M) from
// their Streams type.
func toDDB(v streamtypes.AttributeValue) types.AttributeValue {
	switch v := v.(type) {
	case *streamtypes.AttributeValueMemberS:
		return &types.AttributeValueMemberS{Value: v.Value}
	case *streamtypes.AttributeValueMemberN:
		return &types.AttributeValueMemberN{Value: v.Value}
	case *streamtypes.AttributeValueMemberM:
		m := map[string]types.AttributeValue{}
		for k, e := range v.Value {
			m[k] = toDDB(e)
		}
		return &types.AttributeValueMemberM{Value: m}
	}
	panic(fmt.Sprintf("unexpected stream attribute %T", v))
}

// TestConcurrentWritersWhileRatesChange writes from several goroutines
// while another changes the rates, under the race detector.
func TestConcurrentWritersWhileRatesChange(t *testing.T) {
	direct, _ := ddbtest.Clients(t)
	table := ddbtest.Name(t, "fp-conc")
	ddbtest.CreateTable(t, direct, table, ddbtest.StringKey)
	p := start(t, faultproxy.Options{Seed: 6, SlowDelay: 2 * time.Millisecond, Rules: []faultproxy.Rule{{Kind: faultproxy.Any, Rate: 0.5}, {Kind: faultproxy.Slow, Rate: 0.2}}})
	c, _ := via(t, p, 30)
	want := map[string]map[string]types.AttributeValue{}
	batches := make([][]types.WriteRequest, 4)
	for i := range 400 {
		it := item(i)
		want[pk(it)] = it
		batches[i%4] = append(batches[i%4], types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var flipper sync.WaitGroup
	flipper.Add(1)
	go func() {
		defer flipper.Done()
		rates := []float64{0.5, 0, 0.3}
		for i := 0; ctx.Err() == nil; i++ {
			if err := p.SetRate("", faultproxy.Any, rates[i%len(rates)]); err != nil {
				t.Error(err)
				return
			}
			_ = ddbretry.Sleep(ctx, 3*time.Millisecond)
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	for _, b := range batches {
		g.Go(func() error {
			w := &dynamo.Writer{Client: c, Table: table, Backoff: ddbretry.Backoff{Base: time.Millisecond, Max: 20 * time.Millisecond}}
			for i := 0; i < len(b); i += 5 { // small batches: more requests
				n, err := w.Write(gctx, b[i:i+5])
				if err == nil && n != 5 {
					err = fmt.Errorf("wrote %d of 5", n)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	cancel()
	flipper.Wait()
	if err != nil {
		t.Fatal(err)
	}
	checkItems(t, "table", want, ddbtest.ScanAll(t, direct, table))
	if p.Count("BatchWriteItem", faultproxy.Any) == 0 {
		t.Errorf("no faults injected: %s", p.Summary())
	}
}

// TestRatesZeroPassThroughUnchanged compares raw responses from DynamoDB
// Local and from the proxy with every rate at 0.
func TestRatesZeroPassThroughUnchanged(t *testing.T) {
	direct, _ := ddbtest.Clients(t)
	table := ddbtest.Name(t, "fp-pass")
	ddbtest.CreateTable(t, direct, table, ddbtest.KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeS, Stream: types.StreamViewTypeNewImage})
	var items []map[string]types.AttributeValue
	for i := range 30 {
		items = append(items, item(i))
	}
	ddbtest.PutItems(t, direct, table, items)
	var rules []faultproxy.Rule
	for _, k := range append([]faultproxy.Kind{faultproxy.Any, faultproxy.Throttle, faultproxy.Slow}, faultproxy.Failures...) {
		rules = append(rules, faultproxy.Rule{Kind: k, Rate: 0})
	}
	p := start(t, faultproxy.Options{Seed: 7, Rules: rules})
	requests := []struct{ target, body string }{
		{"DynamoDB_20120810.GetItem", fmt.Sprintf(`{"TableName":%q,"Key":{"pk":{"S":"k0003"}},"ConsistentRead":true}`, table)},
		{"DynamoDB_20120810.Scan", fmt.Sprintf(`{"TableName":%q,"ConsistentRead":true,"Limit":7}`, table)},
		{"DynamoDB_20120810.BatchGetItem", fmt.Sprintf(`{"RequestItems":{%q:{"Keys":[{"pk":{"S":"k0001"}},{"pk":{"S":"k0002"}}],"ConsistentRead":true}}}`, table)},
		{"DynamoDB_20120810.BatchWriteItem", fmt.Sprintf(`{"RequestItems":{%q:[{"PutRequest":{"Item":{"pk":{"S":"k0001"},"v":{"N":"7"}}}},{"PutRequest":{"Item":{"pk":{"S":"p2"}}}}]}}`, table)},
		{"DynamoDB_20120810.GetItem", `{"TableName":"no-such-table","Key":{"pk":{"S":"a"}}}`},
		{"DynamoDBStreams_20120810.ListStreams", fmt.Sprintf(`{"TableName":%q}`, table)},
	}
	for _, r := range requests {
		dr, db := rawPost(t, ddbtest.Endpoint(t), r.target, r.body)
		pr, pb := rawPost(t, p.URL, r.target, r.body)
		if dr.StatusCode != pr.StatusCode || !bytes.Equal(db, pb) {
			t.Errorf("%s: direct %d %s\nproxy  %d %s", r.target, dr.StatusCode, db, pr.StatusCode, pb)
		}
		for _, h := range []string{"X-Amz-Crc32", "Content-Type", "Content-Length"} {
			if dr.Header.Get(h) != pr.Header.Get(h) {
				t.Errorf("%s: header %s: direct %q, proxy %q", r.target, h, dr.Header.Get(h), pr.Header.Get(h))
			}
		}
		if pr.Header.Get("X-Faultproxy-Fault") != "" {
			t.Errorf("%s: fault header on a passed-through response", r.target)
		}
	}
	// And through the SDK.
	c, _ := via(t, p, -1)
	if got := ddbtest.ScanAll(t, c, table); len(got) != 31 {
		t.Errorf("scan via proxy: %d items, want 31", len(got))
	}
	if n := p.Requests(""); n < int64(len(requests)) {
		t.Errorf("proxy saw %d requests", n)
	}
	if len(p.Counts()) != 0 {
		t.Errorf("faults injected at rate 0: %s", p.Summary())
	}
}

// TestSameSeedSameFaults checks that a sequential workload meets the same
// faults with the same seed.
func TestSameSeedSameFaults(t *testing.T) {
	direct, _ := ddbtest.Clients(t)
	table := ddbtest.Name(t, "fp-seed")
	ddbtest.CreateTable(t, direct, table, ddbtest.StringKey)
	run := func(seed uint64) []string {
		var mu sync.Mutex
		var log []string
		p := start(t, faultproxy.Options{Seed: seed, SlowDelay: time.Millisecond,
			Rules: []faultproxy.Rule{{Kind: faultproxy.Any, Rate: 0.4}, {Kind: faultproxy.Slow, Rate: 0.1}},
			OnInject: func(e faultproxy.Event) {
				mu.Lock()
				defer mu.Unlock()
				log = append(log, fmt.Sprintf("%d %s %s %d", e.Seq, e.Op, e.Kind, e.Held))
			}})
		c, _ := via(t, p, -1)
		ctx := context.Background()
		for i := range 20 {
			_, _ = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item(i)})
			var reqs []types.WriteRequest
			for j := range 5 {
				reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item(100 + 5*i + j)}})
			}
			_, _ = c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}})
		}
		p.Close()
		mu.Lock()
		defer mu.Unlock()
		return log
	}
	a, b, other := run(42), run(42), run(43)
	if len(a) == 0 {
		t.Fatal("no faults injected")
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if reflect.DeepEqual(a, other) {
		t.Errorf("seeds 42 and 43 gave the same faults: %v", a)
	}
	sort.Strings(a) // only to show a stable sample in the log
	t.Logf("%d faults with seed 42, e.g. %v", len(b), a[:min(3, len(a))])
}
