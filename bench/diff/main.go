// Command diff benchmarks `ddbsync diff` against DynamoDB Local (issues 5
// and 11, "Performance"): a master of -items items and a slave with 1%
// missing, 1% differing and 1% extra items.
//
// First, side by side (issue 11), at --parallel 8 with extra items
// looked for: the merge ceiling (a loop on the SDK scanning both tables,
// 8 segments each, and comparing them in memory), `ddbsync diff
// --scan-for-extra` with --method merge and with --method lookup, and the
// lookup ceiling (parallel Scan of the master + BatchGetItem in the
// slave, no comparison). Each reports wall time, CPU time, peak RSS of
// the process and the read capacity consumed. Then (issue 5, unless
// -only merge) the lookup method's dry runs at --parallel 1 and 8 beside
// the lookup ceiling, a smaller table, and a repair run.
//
//	go run ./bench/diff                  # 100,000 items, starts DynamoDB Local
//	go run ./bench/diff -items 20000 -small 0 -only merge
//	go run ./bench/diff -endpoint http://127.0.0.1:8000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/internal/benchutil"
	"github.com/ddbsync/ddbsync/internal/ddblocal"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/diff"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

const region = "us-east-1"

func main() {
	items := flag.Int("items", 100000, "items in the master table")
	small := flag.Int("small", 20000, "also run a dry run on a table of this many items, to compare peak RSS (0: skip)")
	endpoint := flag.String("endpoint", "", "DynamoDB endpoint (default: start DynamoDB Local)")
	reps := flag.Int("reps", 2, "runs of each dry run and ceiling; the fastest counts")
	only := flag.String("only", "", "merge: only the side-by-side comparison of the methods; merge-diff: only diff --method merge, once (peak RSS of large tables)")
	memLimit := flag.String("memory-limit", "", "--memory-limit of the merge runs (default: ddbsync's)")
	reuse := flag.Bool("reuse", false, "name the tables by their size and reuse them when they exist (loading 1,000,000 items takes minutes); they are left on the server")
	// Ceiling child mode.
	ceiling := flag.Bool("ceiling", false, "internal: run the SDK ceiling loop")
	mergeCeiling := flag.Bool("merge-ceiling", false, "internal: run the SDK merge ceiling loop")
	master := flag.String("master", "", "internal: master table")
	slave := flag.String("slave", "", "internal: slave table")
	parallel := flag.Int("parallel", 1, "internal: scan segments")
	flag.Parse()
	if *mergeCeiling {
		if err := runMergeCeiling(*endpoint, *master, *slave, *parallel); err != nil {
			fmt.Fprintln(os.Stderr, "merge ceiling:", err)
			os.Exit(3)
		}
		return
	}
	if *ceiling {
		if err := runCeiling(*endpoint, *master, *slave, *parallel); err != nil {
			fmt.Fprintln(os.Stderr, "ceiling:", err)
			os.Exit(3)
		}
		return
	}
	if err := bench(*items, *small, *endpoint, *reps, *only, *memLimit, *reuse); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// item is the master's item i: ~250 bytes of varied attributes.
func item(i int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk":    &types.AttributeValueMemberS{Value: fmt.Sprintf("customer-%08d", i)},
		"n":     &types.AttributeValueMemberN{Value: strconv.Itoa(i)},
		"big":   &types.AttributeValueMemberN{Value: fmt.Sprintf("100366514278942%05d", i%100000)},
		"price": &types.AttributeValueMemberN{Value: fmt.Sprintf("%d.%02d", i%1000, i%100)},
		"name":  &types.AttributeValueMemberS{Value: fmt.Sprintf("Customer number %d of the benchmark", i)},
		"tags":  &types.AttributeValueMemberSS{Value: []string{"alpha", "beta", fmt.Sprintf("t%d", i%7)}},
		"ok":    &types.AttributeValueMemberBOOL{Value: i%2 == 0},
		"addr": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"city": &types.AttributeValueMemberS{Value: "Springfield"},
			"zip":  &types.AttributeValueMemberN{Value: strconv.Itoa(10000 + i%9000)},
			"tags": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "home"}}},
		}},
	}
}

// The slave: every item of the master except i%100 == 0 (missing); items
// with i%100 == 1 differ; one extra item per 100.
type layout struct{ missing, differing, extra int }

func slaveItems(n int) ([]func() map[string]types.AttributeValue, layout) {
	var gens []func() map[string]types.AttributeValue
	var l layout
	for i := range n {
		switch i % 100 {
		case 0:
			l.missing++
			continue
		case 1:
			l.differing++
			gens = append(gens, func() map[string]types.AttributeValue {
				it := item(i)
				it["name"] = &types.AttributeValueMemberS{Value: "changed on the slave"}
				return it
			})
			continue
		case 2:
			l.extra++
			gens = append(gens, func() map[string]types.AttributeValue {
				it := item(i)
				it["pk"] = &types.AttributeValueMemberS{Value: fmt.Sprintf("extra-%08d", i)}
				return it
			})
		}
		gens = append(gens, func() map[string]types.AttributeValue { return item(i) })
	}
	return gens, l
}

type pair struct {
	master, slave string
	n             int
	l             layout
}

// setup creates and loads the two tables; with reuse, tables named by
// their size are reused when a previous run loaded them in full.
func setup(ctx context.Context, c *dynamodb.Client, n int, tag string, reuse bool) (pair, error) {
	suffix := strconv.FormatInt(time.Now().Unix(), 10)
	if reuse {
		suffix = "n" + strconv.Itoa(n)
	}
	p := pair{master: fmt.Sprintf("bench-diff-%s-master-%s", tag, suffix), slave: fmt.Sprintf("bench-diff-%s-slave-%s", tag, suffix), n: n}
	gens, l := slaveItems(n)
	if reuse {
		mo, merr := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(p.master)})
		so, serr := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(p.slave)})
		if merr == nil && serr == nil {
			if aws.ToInt64(mo.Table.ItemCount) != int64(n) || aws.ToInt64(so.Table.ItemCount) != int64(len(gens)) {
				return p, fmt.Errorf("-reuse: %s holds %d items and %s %d, want %d and %d (a load was interrupted? delete the tables)",
					p.master, aws.ToInt64(mo.Table.ItemCount), p.slave, aws.ToInt64(so.Table.ItemCount), n, len(gens))
			}
			p.l = l
			fmt.Fprintf(os.Stderr, "reusing %s and %s\n", p.master, p.slave)
			return p, nil
		}
	}
	for _, t := range []string{p.master, p.slave} {
		_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(t),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		})
		if err != nil {
			return p, err
		}
	}
	start := time.Now()
	if err := benchutil.Load(ctx, c, p.master, n, 16, item); err != nil {
		return p, err
	}
	p.l = l
	if err := benchutil.Load(ctx, c, p.slave, len(gens), 16, func(i int) map[string]types.AttributeValue { return gens[i]() }); err != nil {
		return p, err
	}
	fmt.Fprintf(os.Stderr, "loaded %d + %d items in %s\n", n, len(gens), time.Since(start).Round(time.Second))
	return p, nil
}

type row struct {
	name   string
	items  int
	m      benchutil.Measurement
	result string
	rcu    float64 // read capacity consumed, as the run reports it
}

// consumedRCU reads the read capacity a run reports: the ceilings' "rcu",
// or the diff's "consumed_rcu" of its slaves.
func consumedRCU(out string) float64 {
	var r struct {
		RCU    float64 `json:"rcu"`
		Slaves []struct {
			RCU float64 `json:"consumed_rcu"`
		} `json:"slaves"`
	}
	_ = json.Unmarshal([]byte(out), &r)
	for _, s := range r.Slaves {
		r.RCU += s.RCU
	}
	return r.RCU
}

func bench(n, small int, endpoint string, reps int, only, memLimit string, reuse bool) error {
	ctx := context.Background()
	if endpoint == "" {
		srv, err := ddblocal.Start(ctx)
		if err != nil {
			return err
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
	}
	os.Setenv("AWS_ACCESS_KEY_ID", "local")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	os.Setenv("AWS_REGION", region)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Unsetenv("AWS_PROFILE")
	dir, err := os.MkdirTemp("", "bench-diff")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "ddbsync")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/ddbsync").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cl, err := creds.New(creds.Options{EndpointURL: endpoint}).For(ctx, plan.Table{Region: region})
	if err != nil {
		return err
	}
	p, err := setup(ctx, cl.DynamoDB, n, "big", reuse)
	if err != nil {
		return err
	}
	r := &runner{endpoint: endpoint, bin: bin, self: self, dir: dir, reps: reps}

	mergeArgs := []string{"--scan-for-extra", "--method", "merge"}
	if memLimit != "" {
		mergeArgs = append(mergeArgs, "--memory-limit", memLimit)
	}
	if only == "merge-diff" {
		r.reps = 1
		return r.measure(job{"diff --scan-for-extra -p 8 --method merge", n, r.diffCmd(p, 8, mergeArgs...), wantDiff(p, 1, withExtra(p))})
	}
	// Warm DynamoDB Local up (JIT, caches) before measuring anything.
	r.reps = 1
	if err := r.measure(job{"warm-up (not measured)", n, r.ceilingCmd(p, 8), wantCeiling(p)}); err != nil {
		return err
	}
	r.rows = r.rows[:0]
	r.reps = reps

	if err := r.methods(p, mergeArgs); err != nil || only == "merge" {
		return err
	}
	r.rows = r.rows[:0]
	return r.lookup(ctx, cl.DynamoDB, p, small, reuse)
}

// runner runs the measured commands and keeps their figures.
type runner struct {
	endpoint, bin, self, dir string
	reps                     int
	rows                     []row
}

// job is one command to measure: mk makes it, check checks its output.
type job struct {
	name  string
	items int
	mk    func() *exec.Cmd
	check func([]byte, int) error
}

// once runs a job's command and checks its output.
func (r *runner) once(j job) (row, error) {
	cmd := j.mk()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	m, err := benchutil.Measure(cmd)
	if err != nil && m.ExitCode != 1 {
		return row{}, fmt.Errorf("%s: %v\n%s", j.name, err, errb.String())
	}
	if err := j.check(out.Bytes(), m.ExitCode); err != nil {
		return row{}, fmt.Errorf("%s: %v\nstdout: %s\nstderr: %s", j.name, err, out.String(), errb.String())
	}
	rcu := consumedRCU(out.String())
	fmt.Fprintf(os.Stderr, "%-48s %6.1fs  CPU %5.1fs  RSS %4.0f MB  %8.1f RCU\n", j.name, m.Wall.Seconds(), m.CPU().Seconds(), m.MaxRSSMB(), rcu)
	return row{name: j.name, items: j.items, m: m, result: strings.TrimSpace(out.String()), rcu: rcu}, nil
}

// measure runs the jobs in turn, reps rounds (ABAB…, so that neither side
// always runs on a warmer or more loaded server), and keeps the fastest
// run of each: DynamoDB Local shares the machine and its JIT warms up, so
// single runs are noisy.
func (r *runner) measure(jobs ...job) error {
	best := make([]*row, len(jobs))
	for range r.reps {
		for i, j := range jobs {
			got, err := r.once(j)
			if err != nil {
				return err
			}
			if best[i] == nil || got.m.Wall < best[i].m.Wall {
				best[i] = &got
			}
		}
	}
	for _, b := range best {
		r.rows = append(r.rows, *b)
	}
	return nil
}

func (r *runner) ceilingCmd(p pair, par int) func() *exec.Cmd {
	return func() *exec.Cmd {
		return exec.Command(r.self, "-ceiling", "-endpoint", r.endpoint, "-master", p.master, "-slave", p.slave, "-parallel", strconv.Itoa(par))
	}
}

func (r *runner) diffCmd(p pair, par int, extra ...string) func() *exec.Cmd {
	args := append([]string{"diff", "--endpoint-url", r.endpoint, "--no-status", "--output", "json", "--state-dir", filepath.Join(r.dir, "state"),
		"-m", region + ":" + p.master, "-s", region + ":" + p.slave, "--parallel", strconv.Itoa(par)}, extra...)
	return func() *exec.Cmd { return exec.Command(r.bin, args...) }
}

func (r *runner) mergeCeilingCmd(p pair) func() *exec.Cmd {
	return func() *exec.Cmd {
		return exec.Command(r.self, "-merge-ceiling", "-endpoint", r.endpoint, "-master", p.master, "-slave", p.slave, "-parallel", "8")
	}
}

func wantMergeCeiling(p pair) func([]byte, int) error {
	return func(out []byte, code int) error {
		var r struct{ Missing, Differing, Extra int }
		if err := json.Unmarshal(out, &r); err != nil {
			return err
		}
		if code != 0 || r.Missing != p.l.missing || r.Differing != p.l.differing || r.Extra != p.l.extra {
			return fmt.Errorf("merge ceiling found %+v (exit %d); want %+v", r, code, p.l)
		}
		return nil
	}
}

func wantCeiling(p pair) func([]byte, int) error {
	return func(out []byte, code int) error {
		var r struct{ Scanned, Found int }
		if err := json.Unmarshal(out, &r); err != nil {
			return err
		}
		if code != 0 || r.Scanned != p.n || r.Found != p.n-p.l.missing {
			return fmt.Errorf("ceiling read %d, found %d (exit %d); want %d and %d", r.Scanned, r.Found, code, p.n, p.n-p.l.missing)
		}
		return nil
	}
}

func wantDiff(p pair, wantCode int, want map[string]int) func([]byte, int) error {
	return func(out []byte, code int) error {
		var r struct{ Slaves []map[string]any }
		if err := json.Unmarshal(out, &r); err != nil {
			return err
		}
		if code != wantCode || len(r.Slaves) != 1 {
			return fmt.Errorf("exit %d, want %d", code, wantCode)
		}
		for k, v := range want {
			if got, _ := r.Slaves[0][k].(float64); int(got) != v {
				return fmt.Errorf("%s = %v, want %d", k, r.Slaves[0][k], v)
			}
		}
		return nil
	}
}

// withExtra is what a diff --scan-for-extra of p reports.
func withExtra(p pair) map[string]int {
	return map[string]int{"scanned": p.n, "missing": p.l.missing, "differing": p.l.differing, "extra": p.l.extra,
		"matching": p.n - p.l.missing - p.l.differing}
}

// methods measures the two methods side by side, extra items included:
// (a) the merge ceiling, (b) diff with each method, (c) the lookup
// ceiling.
func (r *runner) methods(p pair, mergeArgs []string) error {
	if err := r.measure(
		job{"(a) merge ceiling (scan both, compare in memory)", p.n, r.mergeCeilingCmd(p), wantMergeCeiling(p)},
		job{"(b) diff --scan-for-extra -p 8 --method merge", p.n, r.diffCmd(p, 8, mergeArgs...), wantDiff(p, 1, withExtra(p))},
		job{"(b) diff --scan-for-extra -p 8 --method lookup", p.n, r.diffCmd(p, 8, "--scan-for-extra", "--method", "lookup"), wantDiff(p, 1, withExtra(p))},
		job{"(c) lookup ceiling -p 8 (master → slave only)", p.n, r.ceilingCmd(p, 8), wantCeiling(p)},
	); err != nil {
		return err
	}
	fmt.Printf("methods side by side: %d master items (slave: %d missing, %d differing, %d extra), DynamoDB Local at %s; %s, %d CPUs, %s\n\n",
		p.n, p.l.missing, p.l.differing, p.l.extra, r.endpoint, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02 15:04"))
	var side [][]string
	a := r.rows[0]
	for _, x := range r.rows {
		side = append(side, []string{x.name, fmt.Sprintf("%.1f", x.m.Wall.Seconds()), fmt.Sprintf("%.2f×", x.m.Wall.Seconds()/a.m.Wall.Seconds()),
			fmt.Sprintf("%.1f", x.m.CPU().Seconds()), fmt.Sprintf("%.0f", x.m.MaxRSSMB()), fmt.Sprintf("%.0f", x.rcu), fmt.Sprintf("%.2f×", x.rcu/a.rcu)})
	}
	benchutil.Table(os.Stdout, []string{"run", "wall s", "wall vs (a)", "CPU s", "peak RSS MB", "RCU", "RCU vs (a)"}, side)
	fmt.Println()
	return nil
}

// lookup measures the lookup method against its ceiling (serial and 8
// segments, and a small table), then a repair and the diff after it.
func (r *runner) lookup(ctx context.Context, c *dynamodb.Client, p pair, small int, reuse bool) error {
	lookup := []string{"--method", "lookup"}
	dry := map[string]int{"scanned": p.n, "missing": p.l.missing, "differing": p.l.differing, "matching": p.n - p.l.missing - p.l.differing}
	for _, par := range []int{1, 8} {
		if err := r.measure(
			job{fmt.Sprintf("ceiling --parallel %d", par), p.n, r.ceilingCmd(p, par), wantCeiling(p)},
			job{fmt.Sprintf("diff dry run --parallel %d", par), p.n, r.diffCmd(p, par, lookup...), wantDiff(p, 1, dry)},
		); err != nil {
			return err
		}
	}
	if small > 0 {
		sp, err := setup(ctx, c, small, "small", reuse)
		if err != nil {
			return err
		}
		sdry := map[string]int{"scanned": sp.n, "missing": sp.l.missing, "differing": sp.l.differing}
		for _, par := range []int{1, 8} {
			if err := r.measure(job{fmt.Sprintf("diff dry run (%d items) --parallel %d", small, par), small, r.diffCmd(sp, par, lookup...), wantDiff(sp, 1, sdry)}); err != nil {
				return err
			}
		}
	}
	r.reps = 1 // a repair changes the slave: it runs once
	repair := map[string]int{"scanned": p.n, "missing": p.l.missing, "differing": p.l.differing, "extra": p.l.extra,
		"written": p.l.missing + p.l.differing, "deleted": p.l.extra, "skipped": 0, "errors": 0}
	if err := r.measure(job{"diff repair --parallel 8", p.n, r.diffCmd(p, 8, "--write-missing", "--write-differing", "--delete-extra", "--method", "lookup"), wantDiff(p, 0, repair)}); err != nil {
		return err
	}
	after := map[string]int{"scanned": p.n, "matching": p.n, "missing": 0, "differing": 0, "extra": 0}
	if err := r.measure(job{"diff after repair -p 8", p.n, r.diffCmd(p, 8, "--scan-for-extra", "--method", "lookup"), wantDiff(p, 0, after)}); err != nil {
		return err
	}
	r.lookupTable(p)
	return nil
}

// lookupTable prints the lookup figures, each dry run against the ceiling
// with the same segments.
func (r *runner) lookupTable(p pair) {
	ceil := map[string]benchutil.Measurement{}
	for _, x := range r.rows {
		if strings.HasPrefix(x.name, "ceiling") {
			ceil[x.name[len(x.name)-1:]] = x.m
		}
	}
	n := p.n
	var table [][]string
	for _, x := range r.rows {
		ips := float64(x.items) / x.m.Wall.Seconds()
		cpuPer := float64(x.m.CPU().Microseconds()) / float64(x.items)
		vs, cpuVs := "", ""
		if c, ok := ceil[x.name[len(x.name)-1:]]; ok && strings.HasPrefix(x.name, "diff dry run --parallel") {
			vs = fmt.Sprintf("%.2f×", ips/(float64(n)/c.Wall.Seconds()))
			cpuVs = fmt.Sprintf("%.2f×", cpuPer/(float64(c.CPU().Microseconds())/float64(n)))
		}
		table = append(table, []string{x.name, strconv.Itoa(x.items), fmt.Sprintf("%.1f", x.m.Wall.Seconds()), fmt.Sprintf("%.0f", ips), vs,
			fmt.Sprintf("%.1f", x.m.CPU().Seconds()), fmt.Sprintf("%.1f", cpuPer), cpuVs, fmt.Sprintf("%.0f", x.m.MaxRSSMB())})
	}
	fmt.Printf("diff benchmark: %d master items (slave: %d missing, %d differing, %d extra), DynamoDB Local at %s; %s, %d CPUs, %s\n\n",
		n, p.l.missing, p.l.differing, p.l.extra, r.endpoint, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
	benchutil.Table(os.Stdout, []string{"run", "items", "wall s", "items/s", "vs ceiling", "CPU s", "CPU µs/item", "CPU vs ceiling", "peak RSS MB"}, table)
}

// runCeiling scans the master (parallel segments) and looks every page
// up in the slave with BatchGetItem (50 keys), without comparing: the
// fastest a diff could go. It uses the checker count diff uses.
func runCeiling(endpoint, master, slave string, parallel int) error {
	ctx := context.Background()
	cl, err := creds.New(creds.Options{EndpointURL: endpoint}).For(ctx, plan.Table{Region: region})
	if err != nil {
		return err
	}
	c := cl.DynamoDB
	checkers := min(max(8, 4*parallel), 64)
	keys := make(chan []map[string]types.AttributeValue, 2*checkers)
	var scanned, found atomic.Int64
	var rcu capacity
	g, gctx := errgroup.WithContext(ctx)
	var scanners sync.WaitGroup
	for seg := range parallel {
		scanners.Add(1)
		g.Go(func() error {
			defer scanners.Done()
			in := &dynamodb.ScanInput{TableName: aws.String(master), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal}
			if parallel > 1 {
				in.Segment, in.TotalSegments = aws.Int32(int32(seg)), aws.Int32(int32(parallel))
			}
			pg := dynamodb.NewScanPaginator(c, in)
			for pg.HasMorePages() {
				out, err := pg.NextPage(gctx)
				if err != nil {
					return err
				}
				scanned.Add(int64(len(out.Items)))
				rcu.add(out.ConsumedCapacity)
				for i := 0; i < len(out.Items); i += 50 {
					var ks []map[string]types.AttributeValue
					for _, it := range out.Items[i:min(i+50, len(out.Items))] {
						ks = append(ks, map[string]types.AttributeValue{"pk": it["pk"]})
					}
					select {
					case keys <- ks:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
			}
			return nil
		})
	}
	go func() { scanners.Wait(); close(keys) }()
	for range checkers {
		g.Go(func() error {
			for ks := range keys {
				for len(ks) > 0 {
					out, err := c.BatchGetItem(gctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{slave: {Keys: ks}},
						ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
					if err != nil {
						return err
					}
					for _, cc := range out.ConsumedCapacity {
						rcu.add(&cc)
					}
					found.Add(int64(len(out.Responses[slave])))
					ks = out.UnprocessedKeys[slave].Keys
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"scanned": scanned.Load(), "found": found.Load(), "rcu": rcu.total()})
}

// capacity sums consumed capacity across goroutines.
type capacity struct {
	mu sync.Mutex
	u  float64
}

func (c *capacity) add(cc *types.ConsumedCapacity) {
	if cc == nil {
		return
	}
	c.mu.Lock()
	c.u += aws.ToFloat64(cc.CapacityUnits)
	c.mu.Unlock()
}

func (c *capacity) total() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.u
}

// runMergeCeiling scans the master and the slave at once (parallel
// segments each) and compares them in memory: a map of the master's items
// by key, looked up with every slave item and compared with diff.Compare.
// It holds the whole master in memory and confirms nothing: the fastest
// and cheapest a two-scan diff could be.
func runMergeCeiling(endpoint, master, slave string, parallel int) error {
	ctx := context.Background()
	cl, err := creds.New(creds.Options{EndpointURL: endpoint}).For(ctx, plan.Table{Region: region})
	if err != nil {
		return err
	}
	c := cl.DynamoDB
	var rcu capacity
	scan := func(table string, each func([]map[string]types.AttributeValue)) error {
		g, gctx := errgroup.WithContext(ctx)
		for seg := range parallel {
			g.Go(func() error {
				in := &dynamodb.ScanInput{TableName: aws.String(table), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
					Segment: aws.Int32(int32(seg)), TotalSegments: aws.Int32(int32(parallel))}
				pg := dynamodb.NewScanPaginator(c, in)
				for pg.HasMorePages() {
					out, err := pg.NextPage(gctx)
					if err != nil {
						return err
					}
					rcu.add(out.ConsumedCapacity)
					each(out.Items)
				}
				return nil
			})
		}
		return g.Wait()
	}
	var mu sync.Mutex
	ms := map[string]map[string]types.AttributeValue{}
	ss := map[string]map[string]types.AttributeValue{}
	key := func(it map[string]types.AttributeValue) string { return it["pk"].(*types.AttributeValueMemberS).Value }
	g, _ := errgroup.WithContext(ctx)
	g.Go(func() error {
		return scan(master, func(items []map[string]types.AttributeValue) {
			mu.Lock()
			for _, it := range items {
				ms[key(it)] = it
			}
			mu.Unlock()
		})
	})
	g.Go(func() error {
		return scan(slave, func(items []map[string]types.AttributeValue) {
			mu.Lock()
			for _, it := range items {
				ss[key(it)] = it
			}
			mu.Unlock()
		})
	})
	if err := g.Wait(); err != nil {
		return err
	}
	var missing, differing, extra int
	for k, m := range ms {
		s, ok := ss[k]
		switch {
		case !ok:
			missing++
		case diff.Compare(m, s, nil) != nil:
			differing++
		}
	}
	for k := range ss {
		if _, ok := ms[k]; !ok {
			extra++
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"missing": missing, "differing": differing, "extra": extra, "rcu": rcu.total()})
}
