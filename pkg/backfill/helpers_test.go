package backfill_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ddbsync/ddbsync/internal/benchutil"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/faultproxy"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/plan"
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

// faultClient is a client for DynamoDB Local through the fault-injecting
// proxy, which answers with the failures real DynamoDB produces at the
// rates of rules. The SDK's retries are short, so that a test with many
// faults stays fast.
func faultClient(t *testing.T, rules ...faultproxy.Rule) (*dynamodb.Client, *faultproxy.Proxy) {
	t.Helper()
	p, err := faultproxy.New(faultproxy.Options{Upstream: ddbtest.Endpoint(t), Seed: 1, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t.Logf("fault proxy: %s", p.Summary())
		p.Close()
	})
	prov := creds.New(creds.Options{EndpointURL: p.URL, MaxRetries: 3, RetryBase: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	c, err := prov.For(context.Background(), plan.Table{Region: ddbtest.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c.DynamoDB, p
}

func zapcoreFor(w *bytes.Buffer) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(zapcore.AddSync(w)), zap.InfoLevel)
}
