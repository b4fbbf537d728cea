// Package ddbtest is the test harness for DynamoDB Local: it starts one
// server per test binary (or uses DDBSYNC_TEST_ENDPOINT), builds clients
// for it, and creates uniquely named tables that are dropped after each
// test.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { ddbtest.Main(m) }
//
// Under CI=true a missing Java or DynamoDB Local fails the run; elsewhere
// tests that need it are skipped with a message saying how to install it.
package ddbtest

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/ddbsync/ddbsync/internal/ddblocal"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// EndpointEnv names an already running DynamoDB-compatible endpoint to
// test against instead of starting DynamoDB Local.
const EndpointEnv = "DDBSYNC_TEST_ENDPOINT"

// Region is the region every test table lives in.
const Region = "us-east-1"

var (
	endpoint string
	startErr error
	server   *ddblocal.Server
	once     sync.Once
	counter  atomic.Int64
)

// Main runs the tests of a package and stops DynamoDB Local afterwards.
func Main(m *testing.M) {
	// DynamoDB Local accepts any credentials; make sure the SDK finds some
	// without looking at the machine's real ones.
	os.Setenv("AWS_ACCESS_KEY_ID", "local")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	os.Unsetenv("AWS_SESSION_TOKEN")
	os.Unsetenv("AWS_PROFILE")
	os.Setenv("AWS_REGION", Region)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

// Endpoint returns the DynamoDB Local endpoint, starting the server on
// first use. Without one, the test is skipped (failed under CI=true).
func Endpoint(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if e := os.Getenv(EndpointEnv); e != "" {
			endpoint = e
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		server, startErr = ddblocal.Start(ctx)
		if startErr == nil {
			endpoint = server.Endpoint
		}
	})
	if startErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("DynamoDB Local is required under CI=true: %v", startErr)
		}
		t.Skipf("skipping: %v", startErr)
	}
	return endpoint
}

// Provider returns a credentials provider pointed at DynamoDB Local.
func Provider(t testing.TB) *creds.Provider {
	t.Helper()
	return creds.New(creds.Options{EndpointURL: Endpoint(t), MaxRetries: 3, RetryBase: 20 * time.Millisecond})
}

// Clients returns DynamoDB and DynamoDB Streams clients for DynamoDB Local.
func Clients(t testing.TB) (*dynamodb.Client, *dynamodbstreams.Client) {
	t.Helper()
	c, err := Provider(t).For(context.Background(), Table(""))
	if err != nil {
		t.Fatalf("clients: %v", err)
	}
	return c.DynamoDB, c.Streams
}

// Table returns a plan table reference to a DynamoDB Local table. Call
// Endpoint (or Clients, Provider) first: without a running endpoint it
// panics rather than point a test at AWS.
func Table(name string) plan.Table {
	var e string
	once.Do(func() {}) // synchronises with the Do that set endpoint
	e = endpoint
	if e == "" {
		panic("ddbtest.Table called before ddbtest.Endpoint: no DynamoDB Local endpoint")
	}
	return plan.Table{Table: name, Region: Region, EndpointURL: e}
}

// Name returns a table name unique to this test run.
func Name(t testing.TB, prefix string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, prefix)
	return fmt.Sprintf("%s-%d-%d", clean, time.Now().UnixNano()%1e9, counter.Add(1))
}

// KeySpec describes the primary key of a test table.
type KeySpec struct {
	Hash      string
	HashType  types.ScalarAttributeType
	Range     string
	RangeType types.ScalarAttributeType
	// Stream is the stream view type; empty means no stream.
	Stream types.StreamViewType
}

// StringKey is a table keyed by a string "pk".
var StringKey = KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeS}

// CreateTable creates an on-demand table and drops it when the test ends.
func CreateTable(t testing.TB, c *dynamodb.Client, name string, k KeySpec) {
	t.Helper()
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(k.Hash), AttributeType: k.HashType},
		},
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String(k.Hash), KeyType: types.KeyTypeHash}},
	}
	if k.Range != "" {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(k.Range), AttributeType: k.RangeType})
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k.Range), KeyType: types.KeyTypeRange})
	}
	if k.Stream != "" {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: k.Stream}
	}
	ctx := context.Background()
	if _, err := c.CreateTable(ctx, in); err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("wait for table %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
}

// PutItems writes items with BatchWriteItem, failing the test on error.
func PutItems(t testing.TB, c *dynamodb.Client, table string, items []map[string]types.AttributeValue) {
	t.Helper()
	ctx := context.Background()
	for start := 0; start < len(items); start += 25 {
		end := min(start+25, len(items))
		var reqs []types.WriteRequest
		for _, it := range items[start:end] {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
		for len(reqs) > 0 {
			out, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}})
			if err != nil {
				t.Fatalf("put items into %s: %v", table, err)
			}
			reqs = out.UnprocessedItems[table]
		}
	}
}

// ScanAll reads every item of a table with a consistent scan.
func ScanAll(t testing.TB, c *dynamodb.Client, table string) []map[string]types.AttributeValue {
	t.Helper()
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		items = append(items, out.Items...)
	}
	return items
}

// AssertSameItems fails the test unless both tables hold exactly the same
// items (compared attribute by attribute), reporting a few differences.
func AssertSameItems(t testing.TB, c *dynamodb.Client, want, got string, hash, rangeKey string) {
	t.Helper()
	index := func(items []map[string]types.AttributeValue) map[string]map[string]types.AttributeValue {
		m := make(map[string]map[string]types.AttributeValue, len(items))
		for _, it := range items {
			m[keyString(it, hash, rangeKey)] = it
		}
		return m
	}
	w, g := index(ScanAll(t, c, want)), index(ScanAll(t, c, got))
	problems := 0
	for k, wi := range w {
		gi, ok := g[k]
		switch {
		case !ok:
			problems++
			if problems <= 5 {
				t.Errorf("%s: item %s missing", got, k)
			}
		case !reflect.DeepEqual(wi, gi):
			problems++
			if problems <= 5 {
				t.Errorf("%s: item %s differs:\nwant %v\ngot  %v", got, k, wi, gi)
			}
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			problems++
			if problems <= 5 {
				t.Errorf("%s: extra item %s", got, k)
			}
		}
	}
	if problems > 0 {
		t.Fatalf("%s differs from %s in %d items (%d vs %d items)", got, want, problems, len(g), len(w))
	}
}

func keyString(it map[string]types.AttributeValue, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		if n == "" {
			continue
		}
		switch v := it[n].(type) {
		case *types.AttributeValueMemberS:
			fmt.Fprintf(&b, "S:%q;", v.Value)
		case *types.AttributeValueMemberN:
			fmt.Fprintf(&b, "N:%s;", v.Value)
		case *types.AttributeValueMemberB:
			fmt.Fprintf(&b, "B:%x;", v.Value)
		default:
			fmt.Fprintf(&b, "?:%v;", v)
		}
	}
	return b.String()
}
