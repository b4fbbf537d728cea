package diff_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/diff"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// methodEnv names the method the suite runs with. The suite runs with the
// merge method, and TestSuiteWithLookupMethod runs it again (the test
// binary as a subprocess) with the lookup method.
const methodEnv = "DDBSYNC_TEST_DIFF_METHOD"

// testMethod is the method of this run of the suite.
func testMethod() string {
	if m := os.Getenv(methodEnv); m != "" {
		return m
	}
	return diff.MethodMerge
}

// Every test of this package again, with the lookup method.
func TestSuiteWithLookupMethod(t *testing.T) {
	if os.Getenv(methodEnv) != "" {
		t.Skip("this is the run with " + os.Getenv(methodEnv))
	}
	if testing.Short() {
		t.Skip("the suite runs once in -short mode")
	}
	ddbtest.Endpoint(t) // skips without DynamoDB Local
	args := []string{"-test.count=1"}
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.run") || strings.HasPrefix(a, "-test.v") || strings.HasPrefix(a, "-test.timeout") {
			args = append(args, a)
		}
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), methodEnv+"="+diff.MethodLookup)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the suite with the lookup method failed (%v):\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("PASS")) {
		t.Fatalf("the suite with the lookup method did not pass:\n%s", out)
	}
	t.Logf("the suite passed with the lookup method")
}

type av = types.AttributeValue

func s(v string) av     { return &types.AttributeValueMemberS{Value: v} }
func n(v string) av     { return &types.AttributeValueMemberN{Value: v} }
func b(v []byte) av     { return &types.AttributeValueMemberB{Value: v} }
func ss(v ...string) av { return &types.AttributeValueMemberSS{Value: v} }
func ns(v ...string) av { return &types.AttributeValueMemberNS{Value: v} }

// genItem builds a varied item: every attribute type DynamoDB has.
func genItem(i int) map[string]av {
	return map[string]av{
		"pk":    s(fmt.Sprintf("item-%05d", i)),
		"n":     n(fmt.Sprint(i)),
		"big":   n(fmt.Sprintf("1003665142789428%04d", i)),
		"dec":   n(fmt.Sprintf("%d.25", i)),
		"name":  s(strings.Repeat("x", i%17) + "name"),
		"tags":  ss("a", "b", fmt.Sprintf("t%d", i%5)),
		"nums":  ns("1", "2.5", fmt.Sprint(i+100)),
		"bins":  &types.AttributeValueMemberBS{Value: [][]byte{{1, 2}, {byte(i)}, {3, 4, 5}}},
		"bin":   b([]byte{0, byte(i), byte(i >> 8)}),
		"ok":    &types.AttributeValueMemberBOOL{Value: i%2 == 0},
		"nil":   &types.AttributeValueMemberNULL{Value: true},
		"list":  &types.AttributeValueMemberL{Value: []av{s("x"), n(fmt.Sprint(i)), &types.AttributeValueMemberM{Value: map[string]av{"deep": s("y")}}}},
		"attrs": &types.AttributeValueMemberM{Value: map[string]av{"color": s("red"), "size": n(fmt.Sprint(i % 9)), "inner": &types.AttributeValueMemberL{Value: []av{n("1")}}}},
	}
}

func clone(it map[string]av) map[string]av {
	out := make(map[string]av, len(it))
	for k, v := range it {
		out[k] = v
	}
	return out
}

// scenario is a master of total items and a slave in which every 100th
// item (offset 0) is missing, every 100th (offset 1) differs, and one
// extra item per 100 exists.
type scenario struct {
	master, slave string
	missing       int
	differing     int
	extra         int
	total         int
}

func newScenario(t *testing.T, c *dynamodb.Client, total int) scenario {
	t.Helper()
	sc := scenario{master: ddbtest.Name(t, "diff-master"), slave: ddbtest.Name(t, "diff-slave"), total: total}
	ddbtest.CreateTable(t, c, sc.master, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sc.slave, ddbtest.StringKey)
	var mItems, sItems []map[string]av
	for i := range total {
		it := genItem(i)
		mItems = append(mItems, it)
		switch i % 100 {
		case 0:
			sc.missing++
			continue
		case 1:
			d := clone(it)
			d["name"] = s("changed")
			sc.differing++
			sItems = append(sItems, d)
		case 2:
			e := genItem(i)
			e["pk"] = s(fmt.Sprintf("extra-%05d", i))
			sc.extra++
			sItems = append(sItems, e)
			sItems = append(sItems, it)
		default:
			sItems = append(sItems, it)
		}
	}
	ddbtest.PutItems(t, c, sc.master, mItems)
	ddbtest.PutItems(t, c, sc.slave, sItems)
	return sc
}

func table(name string, c diff.Client) diff.Table {
	return diff.Table{Name: name, Label: ddbtest.Region + ":" + name, Client: c}
}

// run prepares and runs a diff, failing the test on error.
func run(t *testing.T, cfg diff.Config) diff.Result {
	t.Helper()
	if cfg.Method == "" && cfg.StartingKey == nil {
		cfg.Method = testMethod()
	}
	d, err := diff.Check(context.Background(), cfg)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	res, err := d.Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func wantCounts(t *testing.T, got diff.SlaveResult, want diff.SlaveResult) {
	t.Helper()
	got.ConsumedRCU, got.ConsumedWCU, got.Retries, got.Throttles = 0, 0, 0, 0
	want.Slave = got.Slave
	// The method and the candidates resolved are checked only when the
	// test names them: the other counts are the same for both methods.
	if want.Method == "" {
		want.Method = testMethod()
	}
	if want.CandidatesResolved == 0 {
		want.CandidatesResolved = got.CandidatesResolved
	}
	if got != want {
		t.Fatalf("counts:\n got  %+v\n want %+v", got, want)
	}
}

// reportLines parses a JSON lines report.
func reportLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("report line: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// hookClient wraps a client and calls hooks before requests.
type hookClient struct {
	diff.Client
	mu         sync.Mutex
	beforePut  func(in *dynamodb.PutItemInput)
	beforeDel  func(in *dynamodb.DeleteItemInput)
	batchGet   func(ctx context.Context, in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error)
	scan       func(ctx context.Context, in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error)
	batchGets  int
	puts, dels int
}

func (h *hookClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	h.mu.Lock()
	h.puts++
	h.mu.Unlock()
	if h.beforePut != nil {
		h.beforePut(in)
	}
	return h.Client.PutItem(ctx, in, o...)
}

func (h *hookClient) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	h.mu.Lock()
	h.dels++
	h.mu.Unlock()
	if h.beforeDel != nil {
		h.beforeDel(in)
	}
	return h.Client.DeleteItem(ctx, in, o...)
}

func (h *hookClient) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	h.mu.Lock()
	h.batchGets++
	h.mu.Unlock()
	if h.batchGet != nil {
		return h.batchGet(ctx, in)
	}
	return h.Client.BatchGetItem(ctx, in, o...)
}

func (h *hookClient) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	if h.scan != nil {
		return h.scan(ctx, in)
	}
	return h.Client.Scan(ctx, in, o...)
}

func newEntry(sc scenario) *stats.Entry { return stats.NewEntry(sc.master, sc.slave) }
