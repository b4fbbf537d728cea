// Command backfill benchmarks `ddbsync backfill` against DynamoDB Local.
//
// In one run it loads N items (about 300 bytes, mixed types) into a
// table, then copies that table several times, alternating:
//
//   - the ceiling: a minimal hand-tuned copy loop written directly on the
//     SDK (parallel Scan, 8 segments, 16 concurrent BatchWriteItem
//     writers, no checkpoints, no display), run as a subprocess (this
//     program with -ceiling). It asks for ConsumedCapacity on every
//     request, as ddbsync must (its summary, metrics and --max-wcu budget
//     count it): DynamoDB Local then serves about 30 % fewer writes a
//     second, a cost of the server, not of the client; -pure adds the
//     ceiling without it (ceiling-pure);
//   - the real `ddbsync backfill` binary (built from ./cmd/ddbsync), as a
//     user runs it, with its default settings.
//
// With -filter EXPR and/or -transform FILE (or -program, the example of
// docs/transform.md: a filter keeping 90 % of the items and a three-step
// transform), it compares instead the plain ddbsync copy with the same
// copy filtered and transformed (ddbsync-program), alternating: items read
// per second (both read the whole table) and CPU per item read.
//
// Each copy is checked (the output holds N items; for ddbsync-program,
// its result object accounts for every item read and the output holds the
// items it wrote) and measured: wall time,
// user+sys CPU and peak RSS of the copying process. It prints items/s,
// the ratio to the ceiling, CPU seconds per 100,000 items and peak RSS.
//
//	go run ./bench/backfill -n 100000
//	go run ./bench/backfill -n 1000000 -runs 1
//	go run ./bench/backfill -n 100000 -runs 3 -program
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/internal/benchutil"
	"github.com/ddbsync/ddbsync/internal/ddblocal"
)

func main() {
	var (
		n        = flag.Int("n", 100000, "items to load and copy")
		runs     = flag.Int("runs", 2, "copies measured per contender (alternating; the best is reported)")
		endpoint = flag.String("endpoint", os.Getenv("DDBSYNC_TEST_ENDPOINT"), "DynamoDB endpoint (default: start DynamoDB Local)")
		binary   = flag.String("ddbsync", "", "ddbsync binary (default: build ./cmd/ddbsync)")
		extra    = flag.String("ddbsync-args", "", "extra arguments for ddbsync backfill (default settings when empty)")
		segments = flag.Int("segments", 8, "ceiling: scan segments")
		writers  = flag.Int("writers", 16, "ceiling: concurrent BatchWriteItem requests")
		only     = flag.String("only", "", "measure only this contender (ceiling or ddbsync), e.g. for a peak-RSS run at 1,000,000 items")
		warmup   = flag.Bool("warmup", true, "copy once, unmeasured, before measuring")
		ceiling  = flag.Bool("ceiling", false, "internal: run the ceiling copy loop (-endpoint, -in, -out)")
		capacity = flag.Bool("capacity", true, "internal: the ceiling asks for ConsumedCapacity, as ddbsync does")
		pure     = flag.Bool("pure", false, "also measure the ceiling without ConsumedCapacity (ceiling-pure), which DynamoDB Local serves faster")
		filter   = flag.String("filter", "", "compare the plain ddbsync copy with one that passes --filter EXPR (ddbsync-program)")
		trans    = flag.String("transform", "", "compare the plain ddbsync copy with one that passes --transform FILE (ddbsync-program)")
		program  = flag.Bool("program", false, "compare with the example filter (keeps 90 %) and three-step transform, for what -filter/-transform do not give")
		in       = flag.String("in", "", "internal: input table of -ceiling")
		out      = flag.String("out", "", "internal: output table of -ceiling")
	)
	flag.Parse()
	setEnv()
	if *ceiling {
		if err := ceilingCopy(context.Background(), *endpoint, *in, *out, *segments, *writers, *capacity); err != nil {
			fmt.Fprintln(os.Stderr, "ceiling:", err)
			os.Exit(1)
		}
		return
	}
	if err := bench(*n, *runs, *only, *warmup, *endpoint, *binary, *extra, *segments, *writers, *pure, *filter, *trans, *program); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// setEnv gives the SDK dummy credentials for DynamoDB Local, never the
// machine's own.
func setEnv() {
	os.Setenv("AWS_ACCESS_KEY_ID", "local")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	os.Unsetenv("AWS_SESSION_TOKEN")
	os.Unsetenv("AWS_PROFILE")
	os.Setenv("AWS_REGION", "us-east-1")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func client(ctx context.Context, endpoint string, conns int) (*dynamodb.Client, error) {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = conns
		tr.MaxIdleConnsPerHost = conns
	})
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithHTTPClient(hc),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")),
		config.WithBaseEndpoint(endpoint))
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(cfg), nil
}

// item is about 300 bytes of mixed attribute types.
func item(i int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk":      &types.AttributeValueMemberS{Value: fmt.Sprintf("item-%09d", i)},
		"n":       &types.AttributeValueMemberN{Value: fmt.Sprint(i * 7)},
		"price":   &types.AttributeValueMemberN{Value: fmt.Sprintf("%d.%02d", i%1000, i%100)},
		"title":   &types.AttributeValueMemberS{Value: fmt.Sprintf("Item number %d — a benchmark row with some descriptive text to reach its size, and a little more to make it three hundred bytes", i)},
		"blob":    &types.AttributeValueMemberB{Value: []byte(fmt.Sprintf("%032d", i))},
		"active":  &types.AttributeValueMemberBOOL{Value: i%2 == 0},
		"tags":    &types.AttributeValueMemberSS{Value: []string{"alpha", "beta", fmt.Sprint("t", i%10)}},
		"history": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"}, &types.AttributeValueMemberN{Value: "2"}, &types.AttributeValueMemberN{Value: fmt.Sprint(i)}}},
		"meta": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"owner":   &types.AttributeValueMemberS{Value: fmt.Sprint("user-", i%5000)},
			"version": &types.AttributeValueMemberN{Value: fmt.Sprint(i % 17)},
			"deleted": &types.AttributeValueMemberNULL{Value: true},
		}},
	}
}

func createTable(ctx context.Context, c *dynamodb.Client, name string) error {
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		return err
	}
	return dynamodb.NewTableExistsWaiter(c).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute)
}

func dropTable(ctx context.Context, c *dynamodb.Client, name string) {
	_, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
}

func count(ctx context.Context, c *dynamodb.Client, name string) (int, error) {
	total := 0
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(name), Select: types.SelectCount})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		total += int(out.Count)
	}
	return total, nil
}

type result struct {
	name string
	m    benchutil.Measurement
}

func bench(n, runs int, only string, warmup bool, endpoint, binary, extra string, segments, writers int, pure bool, filter, transformFile string, program bool) error {
	ctx := context.Background()
	if endpoint == "" {
		fmt.Println("starting DynamoDB Local…")
		srv, err := ddblocal.Start(ctx)
		if err != nil {
			return err
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
	}
	tmp, err := os.MkdirTemp("", "ddbsync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	prog, err := programArgs(tmp, filter, transformFile, program)
	if err != nil {
		return err
	}
	if binary == "" {
		binary = filepath.Join(tmp, "ddbsync")
		build := exec.Command("go", "build", "-o", binary, "./cmd/ddbsync")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build ddbsync: %w", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c, err := client(ctx, endpoint, 64)
	if err != nil {
		return err
	}
	src := fmt.Sprintf("bench-src-%d", time.Now().UnixNano())
	if err := createTable(ctx, c, src); err != nil {
		return err
	}
	defer dropTable(ctx, c, src)
	start := time.Now()
	if err := benchutil.Load(ctx, c, src, n, 16, item); err != nil {
		return err
	}
	fmt.Printf("loaded %d items into %s in %s\n", n, src, time.Since(start).Round(time.Millisecond))
	if d, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(src)}); err == nil {
		fmt.Printf("table: %d items, %d bytes (%.0f bytes/item)\n", aws.ToInt64(d.Table.ItemCount), aws.ToInt64(d.Table.TableSizeBytes),
			float64(aws.ToInt64(d.Table.TableSizeBytes))/float64(max(1, aws.ToInt64(d.Table.ItemCount))))
	}

	cp := copier{c: c, endpoint: endpoint, binary: binary, self: self, tmp: tmp, src: src, n: n,
		extra: extra, segments: segments, writers: writers, prog: prog}
	if warmup {
		if err := cp.warmUp(ctx); err != nil {
			return err
		}
	}
	var results []result
	for r := range runs {
		contenders := []string{"ceiling", "ddbsync"}
		if prog != nil {
			contenders = []string{"ddbsync", "ddbsync-program"}
		}
		if pure && prog == nil {
			contenders = append(contenders, "ceiling-pure")
		}
		for _, contender := range contenders {
			if only != "" && contender != only {
				continue
			}
			m, err := cp.run(ctx, r, contender)
			if err != nil {
				return err
			}
			results = append(results, result{contender, m})
		}
	}
	if only == "" {
		report(os.Stdout, n, results)
	}
	return nil
}

// copier makes the measured copies of one loaded input table.
type copier struct {
	c                           *dynamodb.Client
	endpoint, binary, self, tmp string
	src                         string
	n                           int
	extra                       string
	segments, writers           int
	prog                        []string // the filter and transform flags of ddbsync-program
}

// warmUp makes one unmeasured ceiling copy: DynamoDB Local (a JVM) is much
// slower on its first copy.
func (cp *copier) warmUp(ctx context.Context) error {
	dst := fmt.Sprintf("bench-warmup-%d", time.Now().UnixNano())
	if err := createTable(ctx, cp.c, dst); err != nil {
		return err
	}
	start := time.Now()
	cmd := exec.Command(cp.self, "-ceiling", "-endpoint", cp.endpoint, "-in", cp.src, "-out", dst, "-segments", fmt.Sprint(cp.segments), "-writers", fmt.Sprint(cp.writers))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("warm-up: %w\n%s", err, out)
	}
	fmt.Printf("warm-up copy (not measured): %s\n", time.Since(start).Round(time.Millisecond))
	dropTable(ctx, cp.c, dst)
	return nil
}

// command is the copy of contender into dst.
func (cp *copier) command(contender, dst string) *exec.Cmd {
	if contender == "ceiling" || contender == "ceiling-pure" {
		return exec.Command(cp.self, "-ceiling", "-endpoint", cp.endpoint, "-in", cp.src, "-out", dst,
			"-segments", fmt.Sprint(cp.segments), "-writers", fmt.Sprint(cp.writers), fmt.Sprintf("-capacity=%v", contender == "ceiling"))
	}
	args := []string{"backfill", "--endpoint-url", cp.endpoint, "--input-table", cp.src, "--output-table", dst,
		"--state-dir", filepath.Join(cp.tmp, "state-"+dst)}
	args = append(args, strings.Fields(cp.extra)...)
	if contender == "ddbsync-program" {
		args = append(args, cp.prog...)
		args = append(args, "--output", "json")
	}
	return exec.Command(cp.binary, args...)
}

// run measures one copy by contender (run r) into a new table, checks
// what it copied, and drops the table.
func (cp *copier) run(ctx context.Context, r int, contender string) (benchutil.Measurement, error) {
	dst := fmt.Sprintf("bench-dst-%s-%d-%d", contender, r, time.Now().UnixNano())
	if err := createTable(ctx, cp.c, dst); err != nil {
		return benchutil.Measurement{}, err
	}
	defer dropTable(ctx, cp.c, dst)
	cmd := cp.command(contender, dst)
	logPath := filepath.Join(cp.tmp, dst+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return benchutil.Measurement{}, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	m, err := benchutil.Measure(cmd)
	logf.Close()
	data, _ := os.ReadFile(logPath)
	if err != nil {
		return m, fmt.Errorf("%s: %w\n%s", contender, err, data)
	}
	got, err := count(ctx, cp.c, dst)
	if err != nil {
		return m, err
	}
	if contender == "ddbsync-program" {
		pr, err := checkProgramCopy(data, cp.n, got)
		if err != nil {
			return m, fmt.Errorf("%w\n%s", err, data)
		}
		if r == 0 {
			fmt.Printf("  ddbsync-program: %d items read, %d written, %d left out by the filter\n", pr.ItemsRead, pr.ItemsWritten, pr.ItemsFiltered)
		}
	} else if got != cp.n {
		return m, fmt.Errorf("%s copied %d items of %d\n%s", contender, got, cp.n, data)
	}
	fmt.Printf("run %d %-8s wall %6.2fs  cpu %6.2fs  rss %6.1f MB  (%d items verified)\n",
		r+1, contender, m.Wall.Seconds(), m.CPU().Seconds(), m.MaxRSSMB(), got)
	if contender == "ddbsync" && r == 0 {
		if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) > 0 {
			fmt.Println("  ddbsync:", lines[len(lines)-1])
		}
	}
	return m, nil
}

func best(results []result, name string) benchutil.Measurement {
	var ms []benchutil.Measurement
	for _, r := range results {
		if r.name == name {
			ms = append(ms, r.m)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Wall < ms[j].Wall })
	return ms[0]
}

func bestCPU(results []result, name string) time.Duration {
	var b time.Duration
	for _, r := range results {
		if r.name == name && (b == 0 || r.m.CPU() < b) {
			b = r.m.CPU()
		}
	}
	return b
}

func peakRSS(results []result, name string) float64 {
	var p float64
	for _, r := range results {
		if r.name == name {
			p = max(p, r.m.MaxRSSMB())
		}
	}
	return p
}

func report(w io.Writer, n int, results []result) {
	for _, r := range results {
		if r.name == "ddbsync-program" {
			programReport(w, n, results)
			return
		}
	}
	ceil := best(results, "ceiling")
	ips := func(m benchutil.Measurement) float64 { return float64(n) / m.Wall.Seconds() }
	cpu := func(d time.Duration) float64 { return d.Seconds() * 100000 / float64(n) }
	var rows [][]string
	runs := 0
	for _, name := range []string{"ceiling", "ddbsync", "ceiling-pure"} {
		k := 0
		for _, r := range results {
			if r.name == name {
				k++
			}
		}
		if k == 0 {
			continue
		}
		runs = k
		m := best(results, name)
		rows = append(rows, []string{name, f2(m.Wall.Seconds()), f0(ips(m)), f2(ips(m) / ips(ceil)), f2(cpu(bestCPU(results, name))),
			f2(bestCPU(results, name).Seconds() / bestCPU(results, "ceiling").Seconds()), f1(peakRSS(results, name))})
	}
	fmt.Fprintf(w, "\n%d items, best of %d runs each (wall: fastest run; CPU: lowest run; RSS: highest run)\n", n, runs)
	benchutil.Table(w, []string{"", "wall s", "items/s", "vs ceiling", "CPU s/100k", "CPU vs ceiling", "peak RSS MB"}, rows)
	fmt.Fprintln(w, "targets: items/s vs ceiling ≥ 0.95 from 10,000 to 1,000,000 items, CPU vs ceiling ≤ 1.20, peak RSS < 150 MB at 1,000,000 items")
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

// ceilingCopy is the minimal copy loop: parallel Scan, pages cut into
// 25-item batches, a fixed pool of BatchWriteItem writers that resubmit
// unprocessed items. No checkpoints, no stats, no limiter.
func ceilingCopy(ctx context.Context, endpoint, in, out string, segments, writers int, capacity bool) error {
	cc := types.ReturnConsumedCapacityNone
	if capacity {
		cc = types.ReturnConsumedCapacityTotal
	}
	c, err := client(ctx, endpoint, writers+segments)
	if err != nil {
		return err
	}
	batches := make(chan []types.WriteRequest, writers*2)
	g, ctx := errgroup.WithContext(ctx)
	var scanners sync.WaitGroup
	for s := range segments {
		scanners.Add(1)
		g.Go(func() error {
			defer scanners.Done()
			p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(in), Segment: aws.Int32(int32(s)), TotalSegments: aws.Int32(int32(segments)),
				ReturnConsumedCapacity: cc})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for i := 0; i < len(page.Items); i += 25 {
					reqs := make([]types.WriteRequest, 0, 25)
					for _, it := range page.Items[i:min(i+25, len(page.Items))] {
						reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
					}
					select {
					case batches <- reqs:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			return nil
		})
	}
	go func() { scanners.Wait(); close(batches) }()
	var written atomic.Int64
	for range writers {
		g.Go(func() error {
			for reqs := range batches {
				for len(reqs) > 0 {
					o, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{out: reqs}, ReturnConsumedCapacity: cc})
					if err != nil {
						return err
					}
					written.Add(int64(len(reqs) - len(o.UnprocessedItems[out])))
					reqs = o.UnprocessedItems[out]
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Printf("ceiling: %d items written\n", written.Load())
	return nil
}
