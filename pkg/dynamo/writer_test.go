package dynamo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

func TestWriterWritesEveryItem(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	table := ddbtest.Name(t, "writer")
	ddbtest.CreateTable(t, c, table, ddbtest.StringKey)
	var reqs []types.WriteRequest
	for i := range 103 {
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("k%03d", i)},
			"v":  &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
		}}})
	}
	st := stats.NewEntry("in", "out")
	w := &dynamo.Writer{Client: c, Table: table, Stats: st}
	n, err := w.Write(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if n != 103 {
		t.Fatalf("written = %d, want 103", n)
	}
	if got := len(ddbtest.ScanAll(t, c, table)); got != 103 {
		t.Fatalf("table holds %d items, want 103", got)
	}
	if st.ConsumedWCU.Load() <= 0 {
		t.Fatalf("consumed WCU not recorded: %v", st.ConsumedWCU.Load())
	}
}
