// Command stream benchmarks the stream engine against DynamoDB Local.
//
// It creates a source table with a NEW_AND_OLD_IMAGES stream and an output
// table, starts the stream consumer (pkg/stream with its default settings,
// in this process so that every applied change can be timed) and waits
// until it is caught up. Then it writes -n mixed changes (puts of new keys,
// updates and deletes of existing ones) to the source from -writers
// goroutines as fast as DynamoDB Local takes them; each key belongs to one
// writer, so its final state is known. It reports:
//
//   - applied records/s: stream records applied from the first write until
//     the output converged;
//   - convergence: time from the last source write to the moment every
//     key's final change was applied;
//   - latency p50/p99/max: for every change applied (after a batch is
//     collapsed to the latest change per key), the time from the start of
//     its source write to the acknowledgement of its output write.
//
// Finally it compares both tables item for item.
//
//	go run ./bench/stream -n 20000
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/internal/ddblocal"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
	"github.com/ddbsync/ddbsync/pkg/stream"
)

func main() {
	var (
		n        = flag.Int("n", 20000, "changes to write to the source")
		writers  = flag.Int("writers", 16, "concurrent writers")
		keys     = flag.Int("keys", 4000, "distinct keys the changes touch")
		endpoint = flag.String("endpoint", os.Getenv("DDBSYNC_TEST_ENDPOINT"), "DynamoDB endpoint (default: start DynamoDB Local)")
	)
	flag.Parse()
	os.Setenv("AWS_ACCESS_KEY_ID", "local")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	os.Unsetenv("AWS_SESSION_TOKEN")
	os.Unsetenv("AWS_PROFILE")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if err := bench(*n, *writers, *keys, *endpoint); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// op is one source write.
type op struct {
	id   int
	key  int
	del  bool
	sent time.Time
}

// tracker follows the applied changes reported by the engine.
type tracker struct {
	mu        sync.Mutex
	ops       map[int]*op   // by id
	deletes   map[int][]*op // key → its delete ops, in order
	appliedOp map[int]int   // key → last applied put's op id
	deletedAt map[int]time.Time
	latencies []time.Duration
}

func keyNum(k map[string]types.AttributeValue) int {
	s := k["pk"].(*types.AttributeValueMemberS).Value
	n, _ := strconv.Atoi(s[1:])
	return n
}

func (t *tracker) applied(as []stream.Applied) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range as {
		k := keyNum(a.Key)
		if a.Item != nil {
			idv, ok := a.Item["op"].(*types.AttributeValueMemberN)
			if !ok {
				continue // the warm-up item
			}
			id, _ := strconv.Atoi(idv.Value)
			t.appliedOp[k] = id
			if o := t.ops[id]; o != nil {
				t.latencies = append(t.latencies, a.At.Sub(o.sent))
			}
			continue
		}
		t.deletedAt[k] = a.At
		// The latest delete of the key sent before the write was applied.
		ds := t.deletes[k]
		for i := len(ds) - 1; i >= 0; i-- {
			if !ds[i].sent.IsZero() && ds[i].sent.Before(a.At) {
				t.latencies = append(t.latencies, a.At.Sub(ds[i].sent))
				break
			}
		}
	}
}

func bench(n, writers, nkeys int, endpoint string) error {
	ctx := context.Background()
	if endpoint == "" {
		srv, err := ddblocal.Start(ctx)
		if err != nil {
			return err
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
	}
	cl, err := creds.New(creds.Options{EndpointURL: endpoint}).For(ctx, plan.Table{Region: "us-east-1"})
	if err != nil {
		return err
	}
	c := cl.DynamoDB
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	src, dst := "bench-stream-src-"+suffix, "bench-stream-dst-"+suffix
	cleanup, err := createTables(ctx, c, src, dst)
	defer cleanup()
	if err != nil {
		return err
	}

	tr := &tracker{ops: map[int]*op{}, deletes: map[int][]*op{}, appliedOp: map[int]int{}, deletedAt: map[int]time.Time{}}
	st := stats.NewEntry(src, dst)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- stream.Run(runCtx, stream.Config{
			Common: job.Common{
				InputTable:  src,
				OutputTable: dst,
				Store:       state.NewMemory(),
				StateKey:    "bench",
				Stats:       st,
			},
			Streams:   cl.Streams,
			Source:    c,
			Dest:      c,
			OnApplied: tr.applied,
		})
	}()
	if err := warmUp(ctx, c, src, st, done); err != nil {
		return err
	}

	perWriter, final := tr.plan(n, writers, nkeys)
	start := time.Now()
	puts, dels, err := write(ctx, c, src, tr, perWriter)
	if err != nil {
		return err
	}
	lastWrite := time.Now()
	appliedAtLast := st.RecordsApplied.Load()
	if err := tr.waitConverged(final, lastWrite.Add(5*time.Minute), st); err != nil {
		return err
	}
	convergedAt := time.Now()
	stop()
	if err := <-done; err != nil {
		return err
	}

	// Verify item for item.
	same, detail, err := sameTables(ctx, c, src, dst)
	if err != nil {
		return err
	}

	lat := tr.sortedLatencies()
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	writeSecs := lastWrite.Sub(start).Seconds()
	totalSecs := convergedAt.Sub(start).Seconds()
	applied := st.RecordsApplied.Load() - 1 // the warm-up item
	fmt.Printf("stream benchmark, %s, %s/%s, %d CPUs, DynamoDB Local at %s\n", time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), endpoint)
	fmt.Printf("changes written          %d (%d puts, %d deletes; %d keys, %d writers) in %.2fs = %.0f writes/s\n",
		n, puts, dels, nkeys, writers, writeSecs, float64(n)/writeSecs)
	fmt.Printf("records read / applied   %d / %d (skipped %d)\n", st.RecordsRead.Load()-1, applied, st.RecordsSkipped.Load())
	fmt.Printf("applied records/s        %.0f (first write to convergence, %.2fs)\n", float64(applied)/totalSecs, totalSecs)
	fmt.Printf("applied at last write    %d of %d\n", appliedAtLast-1, n)
	fmt.Printf("convergence              %s after the last write (target: within 2s)\n", convergedAt.Sub(lastWrite).Round(time.Millisecond))
	fmt.Printf("latency (write → applied) p50 %s, p99 %s, max %s over %d applied changes\n",
		pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond), len(lat))
	fmt.Printf("consumed WCU             %.0f; throttles %d, retries %d\n", st.ConsumedWCU.Load(), st.Throttles.Load(), st.Retries.Load())
	if !same {
		return fmt.Errorf("output differs from source: %s", detail)
	}
	fmt.Println("verified                 output equals source item for item")
	return nil
}

// createTables creates the source table, with a NEW_AND_OLD_IMAGES stream,
// and the output table; cleanup deletes what was created.
func createTables(ctx context.Context, c *dynamodb.Client, src, dst string) (cleanup func(), err error) {
	var created []string
	cleanup = func() {
		for _, name := range created {
			_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		}
	}
	for _, tb := range []struct {
		name   string
		stream bool
	}{{src, true}, {dst, false}} {
		in := &dynamodb.CreateTableInput{
			TableName:            aws.String(tb.name),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		}
		if tb.stream {
			in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages}
		}
		if _, err := c.CreateTable(ctx, in); err != nil {
			return cleanup, err
		}
		created = append(created, tb.name)
	}
	return cleanup, nil
}

// warmUp returns once the consumer is caught up: a warm-up item written
// now has been applied.
func warmUp(ctx context.Context, c *dynamodb.Client, src string, st *stats.Entry, done <-chan error) error {
	warm := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "w0"}}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(src), Item: warm}); err != nil {
		return err
	}
	for st.RecordsApplied.Load() < 1 {
		select {
		case err := <-done:
			return fmt.Errorf("stream stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// plan draws the n changes: each key belongs to one writer, so that its
// final change (final, by key) is known.
func (t *tracker) plan(n, writers, nkeys int) (perWriter [][]*op, final map[int]*op) {
	rng := rand.New(rand.NewPCG(7, 11))
	perWriter = make([][]*op, writers)
	exists := map[int]bool{}
	final = map[int]*op{}
	for id := 1; id <= n; id++ {
		k := 1 + rng.IntN(nkeys)
		o := &op{id: id, key: k}
		// A missing key gets a put (insert); an existing one an update
		// (put) or, one time in three, a delete.
		if exists[k] && rng.IntN(3) == 0 {
			o.del = true
		}
		exists[k] = !o.del
		final[k] = o
		t.ops[id] = o
		if o.del {
			t.deletes[k] = append(t.deletes[k], o)
		}
		w := k % writers
		perWriter[w] = append(perWriter[w], o)
	}
	return perWriter, final
}

// write sends every writer's changes to the source as fast as it takes
// them, recording when each was sent.
func write(ctx context.Context, c *dynamodb.Client, src string, tr *tracker, perWriter [][]*op) (puts, dels int64, err error) {
	var p, d atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for _, ops := range perWriter {
		g.Go(func() error {
			for _, o := range ops {
				pk := &types.AttributeValueMemberS{Value: "k" + strconv.Itoa(o.key)}
				tr.mu.Lock()
				o.sent = time.Now()
				tr.mu.Unlock()
				var err error
				if o.del {
					_, err = c.DeleteItem(gctx, &dynamodb.DeleteItemInput{TableName: aws.String(src), Key: map[string]types.AttributeValue{"pk": pk}})
					d.Add(1)
				} else {
					_, err = c.PutItem(gctx, &dynamodb.PutItemInput{TableName: aws.String(src), Item: map[string]types.AttributeValue{
						"pk":   pk,
						"op":   &types.AttributeValueMemberN{Value: strconv.Itoa(o.id)},
						"data": &types.AttributeValueMemberS{Value: fmt.Sprintf("%0200d", o.id)},
					}})
					p.Add(1)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	err = g.Wait()
	return p.Load(), d.Load(), err
}

// waitConverged returns once every key's final change was applied.
func (t *tracker) waitConverged(final map[int]*op, deadline time.Time, st *stats.Entry) error {
	converged := func() bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		for k, o := range final {
			if o.del {
				if at, ok := t.deletedAt[k]; !ok || !at.After(o.sent) {
					return false
				}
			} else if t.appliedOp[k] != o.id {
				return false
			}
		}
		return true
	}
	for !converged() {
		if time.Now().After(deadline) {
			return fmt.Errorf("no convergence within 5 minutes of the last write (applied %d records)", st.RecordsApplied.Load())
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

func (t *tracker) sortedLatencies() []time.Duration {
	t.mu.Lock()
	lat := append([]time.Duration(nil), t.latencies...)
	t.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat
}

func scan(ctx context.Context, c *dynamodb.Client, table string) (map[string]map[string]types.AttributeValue, error) {
	out := map[string]map[string]types.AttributeValue{}
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			out[it["pk"].(*types.AttributeValueMemberS).Value] = it
		}
	}
	return out, nil
}

func sameTables(ctx context.Context, c *dynamodb.Client, a, b string) (bool, string, error) {
	x, err := scan(ctx, c, a)
	if err != nil {
		return false, "", err
	}
	y, err := scan(ctx, c, b)
	if err != nil {
		return false, "", err
	}
	if len(x) != len(y) {
		return false, fmt.Sprintf("%d items vs %d", len(x), len(y)), nil
	}
	for k, it := range x {
		if !reflect.DeepEqual(it, y[k]) {
			return false, "item " + k + " differs", nil
		}
	}
	return true, "", nil
}
