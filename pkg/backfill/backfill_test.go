package backfill_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/internal/faultproxy"
	"github.com/ddbsync/ddbsync/pkg/backfill"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/job"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/retry"
	"github.com/ddbsync/ddbsync/pkg/state"
	"github.com/ddbsync/ddbsync/pkg/stats"
)

func config(t *testing.T, c backfill.SourceAPI, d backfill.DestAPI, in, out string) backfill.Config {
	return backfill.Config{
		Common: job.Common{
			InputTable:  in,
			OutputTable: out,
			Store:       state.NewMemory(),
			StateKey:    "entry-" + in,
			Stats:       stats.NewEntry(in, out),
			Logger:      zaptest.NewLogger(t),
		},
		Source:  c,
		Dest:    d,
		Backoff: retry.Backoff{Base: time.Millisecond, Max: 20 * time.Millisecond},
	}
}

// checkAccounting asserts read = written + failed + skipped + unfinished,
// and that the stats entry agrees with the result.
func checkAccounting(t *testing.T, res backfill.Result, st *stats.Entry) {
	t.Helper()
	if res.ItemsRead != res.ItemsWritten+res.ItemsFailed+res.ItemsSkipped+res.ItemsUnfinished {
		t.Errorf("accounting: read %d != written %d + failed %d + skipped %d + unfinished %d",
			res.ItemsRead, res.ItemsWritten, res.ItemsFailed, res.ItemsSkipped, res.ItemsUnfinished)
	}
	if st == nil {
		return
	}
	if st.ItemsRead.Load() != res.ItemsRead || st.ItemsWritten.Load() != res.ItemsWritten ||
		st.ItemsFailed.Load() != res.ItemsFailed || st.ItemsSkipped.Load() != res.ItemsSkipped {
		t.Errorf("stats (read %d written %d failed %d skipped %d) disagree with the result %+v",
			st.ItemsRead.Load(), st.ItemsWritten.Load(), st.ItemsFailed.Load(), st.ItemsSkipped.Load(), res)
	}
}

func bigString(n int) string { return strings.Repeat("x", n) }

// everyType is an item holding every attribute type, nested values, empty
// strings and binaries, with the given key attributes.
func everyType(key map[string]types.AttributeValue, i int) map[string]types.AttributeValue {
	it := map[string]types.AttributeValue{
		"s":      &types.AttributeValueMemberS{Value: fmt.Sprintf("text %d ✓ 日本語", i)},
		"n":      &types.AttributeValueMemberN{Value: "-123.456e-7"},
		"bignum": &types.AttributeValueMemberN{Value: "12345678901234567890123456789012345678"},
		"b":      &types.AttributeValueMemberB{Value: []byte{0, 1, 2, 0xff, byte(i)}},
		"ss":     &types.AttributeValueMemberSS{Value: []string{"a", "b", "ü"}},
		"ns":     &types.AttributeValueMemberNS{Value: []string{"1", "2.5", "-3"}},
		"bs":     &types.AttributeValueMemberBS{Value: [][]byte{{0}, {1, 2}, {0xff}}},
		"bool":   &types.AttributeValueMemberBOOL{Value: i%2 == 0},
		"null":   &types.AttributeValueMemberNULL{Value: true},
		"emptyS": &types.AttributeValueMemberS{Value: ""},
		"emptyB": &types.AttributeValueMemberB{Value: []byte{}},
		"emptyL": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberS{Value: "x"},
			&types.AttributeValueMemberN{Value: "1"},
			&types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberBOOL{Value: false}}},
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"deep": &types.AttributeValueMemberNULL{Value: true}}},
		}},
		"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"inner": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"ss": &types.AttributeValueMemberSS{Value: []string{"z"}},
				"b":  &types.AttributeValueMemberB{Value: []byte("bin")},
				"e":  &types.AttributeValueMemberS{Value: ""},
			}},
			"list": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "42"}}},
		}},
	}
	for k, v := range key {
		it[k] = v
	}
	return it
}

func TestRoundTripEveryTypeAndKeyShape(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	S, N, B := types.ScalarAttributeTypeS, types.ScalarAttributeTypeN, types.ScalarAttributeTypeB
	scalar := func(typ types.ScalarAttributeType, i int) types.AttributeValue {
		switch typ {
		case S:
			return &types.AttributeValueMemberS{Value: []string{"plain", "ünï☃ode 🚀", "with space", "a/b#c", "日本"}[i%5] + fmt.Sprint(i)}
		case N:
			return &types.AttributeValueMemberN{Value: []string{"0", "-1", "3.14159", "12345678901234567890123456789012345678", "1e-100"}[i%5]}
		default:
			return &types.AttributeValueMemberB{Value: []byte{byte(i), 0, 0xff, 0x80, byte(i * 7)}}
		}
	}
	shapes := []ddbtest.KeySpec{
		{Hash: "pk", HashType: S},
		{Hash: "pk", HashType: N},
		{Hash: "pk", HashType: B},
		{Hash: "pk", HashType: S, Range: "sk", RangeType: N},
		{Hash: "pk", HashType: N, Range: "sk", RangeType: B},
		{Hash: "pk", HashType: B, Range: "sk", RangeType: S},
	}
	for _, k := range shapes {
		name := fmt.Sprintf("%s-%s", k.HashType, k.RangeType)
		t.Run(name, func(t *testing.T) {
			in, out := ddbtest.Name(t, "rt-in"), ddbtest.Name(t, "rt-out")
			ddbtest.CreateTable(t, c, in, k)
			ddbtest.CreateTable(t, c, out, k)
			var items []map[string]types.AttributeValue
			for i := range 20 {
				key := map[string]types.AttributeValue{k.Hash: scalar(k.HashType, i)}
				if k.Range != "" {
					// Several sort keys under one partition key.
					key[k.Hash] = scalar(k.HashType, i/4)
					key[k.Range] = scalar(k.RangeType, i)
				}
				if k.Range == "" && k.HashType == N {
					key[k.Hash] = &types.AttributeValueMemberN{Value: fmt.Sprintf("%d.%d", i-10, i)}
				}
				if k.Range != "" && k.RangeType == N {
					key[k.Range] = &types.AttributeValueMemberN{Value: fmt.Sprintf("-%de%d", i+1, i)}
				}
				items = append(items, everyType(key, i))
			}
			// An item near the 400 KB limit.
			bigKey := map[string]types.AttributeValue{k.Hash: scalar(k.HashType, 99)}
			if k.HashType == N {
				bigKey[k.Hash] = &types.AttributeValueMemberN{Value: "999"}
			}
			if k.Range != "" {
				bigKey[k.Range] = scalar(k.RangeType, 98)
				if k.RangeType == N {
					bigKey[k.Range] = &types.AttributeValueMemberN{Value: "998"}
				}
			}
			big := everyType(bigKey, 99)
			big["huge"] = &types.AttributeValueMemberS{Value: bigString(395 * 1024)}
			items = append(items, big)
			ddbtest.PutItems(t, c, in, items)

			cfg := config(t, c, c, in, out)
			cfg.TotalSegments = 3
			res, err := backfill.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.ItemsWritten != int64(len(items)) || res.ItemsRead != int64(len(items)) {
				t.Fatalf("read %d, written %d; want %d", res.ItemsRead, res.ItemsWritten, len(items))
			}
			checkAccounting(t, res, cfg.Stats)
			ddbtest.AssertSameItems(t, c, in, out, k.Hash, k.Range)
		})
	}
}

func TestCopiesFiftyThousandItemsExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 50,000 items")
	}
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "big-in"), ddbtest.Name(t, "big-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	const n = 50000
	load(t, c, in, n, simpleItem)

	core, logs := observer.New(zap.InfoLevel)
	cfg := config(t, c, c, in, out)
	cfg.Logger = zap.New(core)
	cfg.TotalSegments = 8
	res, err := backfill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ItemsRead != n || res.ItemsWritten != n || res.ItemsFailed != 0 || res.ItemsSkipped != 0 {
		t.Fatalf("result %+v; want %d read and written", res, n)
	}
	checkAccounting(t, res, cfg.Stats)
	if res.ConsumedWCU <= 0 || cfg.Stats.ConsumedWCU.Load() <= 0 {
		t.Errorf("consumed WCU not recorded: %v", res.ConsumedWCU)
	}
	// Exact count and content (AssertSameItems compares the item sets).
	ddbtest.AssertSameItems(t, c, in, out, "pk", "")

	if got := logs.FilterMessageSnippet("Backfill started: segments 0-7 of 8").Len(); got != 1 {
		t.Errorf("start lines = %d, want 1; logs: %v", got, messages(logs))
	}
	if got := logs.FilterMessageSnippet("complete: ").Len(); got != 8 {
		t.Errorf("segment completion lines = %d, want 8", got)
	}
	if got := logs.FilterMessageSnippet(fmt.Sprintf("Backfill complete. %d items written over ", n)).Len(); got != 1 {
		t.Errorf("completion lines = %d, want 1; logs: %v", got, messages(logs))
	}
	done, err := backfill.Done(context.Background(), cfg.Store, cfg.StateKey)
	if err != nil || !done {
		t.Fatalf("Done = %v, %v after a full copy", done, err)
	}
	if stats.GetPhase(&cfg.Stats.BackfillPhase) != stats.Complete {
		t.Errorf("phase = %v, want complete", stats.GetPhase(&cfg.Stats.BackfillPhase))
	}

	// Run again: the checkpoints say it is done; nothing is read.
	res, err = backfill.Run(context.Background(), cfg)
	if err != nil || !res.AlreadyDone || res.ItemsRead != 0 {
		t.Fatalf("second run: %+v, %v; want AlreadyDone and nothing read", res, err)
	}
}

func messages(logs *observer.ObservedLogs) []string {
	var m []string
	for _, e := range logs.All() {
		m = append(m, e.Message)
	}
	return m
}

func TestSegmentSubsetCopiesExactlyItsSegments(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "sub-in"), ddbtest.Name(t, "sub-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	load(t, c, in, 2000, simpleItem)

	// What segments 1 and 3 of 4 hold.
	want := map[string]bool{}
	for _, seg := range []int32{1, 3} {
		p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(in), Segment: aws.Int32(seg), TotalSegments: aws.Int32(4)})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Items {
				want[it["pk"].(*types.AttributeValueMemberS).Value] = true
			}
		}
	}
	if len(want) == 0 || len(want) == 2000 {
		t.Fatalf("segments 1 and 3 hold %d of 2000 items; the test needs a proper subset", len(want))
	}
	cfg := config(t, c, c, in, out)
	cfg.TotalSegments = 4
	cfg.Segments = []int{3, 1}
	res, err := backfill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ItemsWritten != int64(len(want)) {
		t.Fatalf("written %d, want %d", res.ItemsWritten, len(want))
	}
	got := ddbtest.ScanAll(t, c, out)
	if len(got) != len(want) {
		t.Fatalf("output holds %d items, want %d", len(got), len(want))
	}
	for _, it := range got {
		if k := it["pk"].(*types.AttributeValueMemberS).Value; !want[k] {
			t.Fatalf("item %s is not in segments 1 or 3", k)
		}
	}
	// The run covered only its segments: Done says so, and segment 0 has
	// no checkpoint.
	if done, _ := backfill.Done(context.Background(), cfg.Store, cfg.StateKey); !done {
		t.Error("Done = false after the subset was copied")
	}
	if _, ok, _ := backfill.LoadSegment(context.Background(), cfg.Store, cfg.StateKey, 0); ok {
		t.Error("segment 0 has a checkpoint, but this worker does not own it")
	}
}

func TestResumeAfterInterruption(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "resume-in"), ddbtest.Name(t, "resume-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	const n, pageSize, segments, pagesInFlight = 3000, 50, 4, 2
	load(t, c, in, n, simpleItem)

	cfg := config(t, c, c, in, out)
	dir := t.TempDir()
	fs, err := state.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = fs
	cfg.TotalSegments = segments
	cfg.PageSize = pageSize
	cfg.PagesInFlight = pagesInFlight
	cfg.WritersPerSegment = 1

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once a part of the table is written.
		for cfg.Stats.ItemsWritten.Load() < n/4 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res1, err := backfill.Run(ctx, cfg)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run returned %v (%+v); want context.Canceled", err, res1)
	}
	checkAccounting(t, res1, cfg.Stats)
	if res1.ItemsWritten >= n {
		t.Fatalf("the run was not interrupted: %d written", res1.ItemsWritten)
	}
	// The checkpoint says how far each segment got.
	var checkpointed int64
	doneSegs := 0
	for seg := range segments {
		cp, ok, err := backfill.LoadSegment(context.Background(), fs, cfg.StateKey, seg)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			checkpointed += cp.ItemsWritten
			if cp.Done {
				doneSegs++
			}
		}
	}
	if checkpointed == 0 || doneSegs == segments {
		t.Fatalf("checkpoints hold %d items, %d segments done; want partial progress", checkpointed, doneSegs)
	}
	if done, _ := backfill.Done(context.Background(), fs, cfg.StateKey); done {
		t.Fatal("Done = true after an interrupted run")
	}
	// Written beyond the checkpoints: at most the pages in flight.
	if extra := res1.ItemsWritten - checkpointed; extra < 0 || extra > segments*pagesInFlight*pageSize {
		t.Fatalf("written %d but checkpointed %d: %d beyond the checkpoints, more than %d pages in flight",
			res1.ItemsWritten, checkpointed, extra, segments*pagesInFlight)
	}

	// Run again with the same plan (a new store object on the same directory).
	fs2, _ := state.NewFileStore(dir)
	cfg.Store = fs2
	cfg.Stats = stats.NewEntry(in, out)
	res2, err := backfill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Resumed {
		t.Error("second run did not say it resumed")
	}
	if res2.ItemsWritten != n-checkpointed {
		t.Fatalf("resumed run wrote %d items; want exactly the %d not checkpointed", res2.ItemsWritten, n-checkpointed)
	}
	if total := res1.ItemsWritten + res2.ItemsWritten; total > n+segments*pagesInFlight*pageSize {
		t.Fatalf("both runs wrote %d items for %d", total, n)
	}
	if got := len(ddbtest.ScanAll(t, c, out)); got != n {
		t.Fatalf("output holds %d items, want %d", got, n)
	}
	ddbtest.AssertSameItems(t, c, in, out, "pk", "")
	if done, _ := backfill.Done(context.Background(), fs2, cfg.StateKey); !done {
		t.Fatal("Done = false after the resumed run completed")
	}

	// Another total is refused while checkpoints exist.
	cfg.TotalSegments = 8
	_, err = backfill.Run(context.Background(), cfg)
	var pe *plan.Error
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "made with 4 total segments") {
		t.Fatalf("run with another total: %v; want a plan.Error naming the 4 total segments", err)
	}
}

func TestFaultsAreRetriedUntilWritten(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "fault-in"), ddbtest.Name(t, "fault-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	const n = 3000
	load(t, c, in, n, simpleItem)

	f, p := faultClient(t,
		faultproxy.Rule{Op: "BatchWriteItem", Kind: faultproxy.UnprocessedItems, Rate: 0.3},
		faultproxy.Rule{Op: "BatchWriteItem", Kind: faultproxy.Throttle, Rate: 0.2},
		faultproxy.Rule{Op: "BatchWriteItem", Kind: faultproxy.InternalServerError, Rate: 0.05},
		faultproxy.Rule{Op: "Scan", Kind: faultproxy.Throttle, Rate: 0.3},
	)
	cfg := config(t, f, f, in, out)
	cfg.PageSize = 200
	res, err := backfill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ItemsWritten != n || res.ItemsFailed != 0 {
		t.Fatalf("result %+v; want %d written, none failed", res, n)
	}
	checkAccounting(t, res, cfg.Stats)
	partials, throttles := p.Count("BatchWriteItem", faultproxy.UnprocessedItems), p.Count("BatchWriteItem", faultproxy.Throttle)
	errors500, scanThrottles := p.Count("BatchWriteItem", faultproxy.InternalServerError), p.Count("Scan", faultproxy.Throttle)
	if partials == 0 || throttles == 0 || errors500 == 0 || scanThrottles == 0 {
		t.Fatalf("faults not exercised: partial %d, throttles %d, 500s %d, scan throttles %d", partials, throttles, errors500, scanThrottles)
	}
	if cfg.Stats.Throttles.Load() < throttles+scanThrottles {
		t.Errorf("throttles counted %d, injected %d", cfg.Stats.Throttles.Load(), throttles+scanThrottles)
	}
	ddbtest.AssertSameItems(t, c, in, out, "pk", "")
}

func TestNonRetryableErrorStopsTheRun(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "fatal-in"), ddbtest.Name(t, "fatal-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	load(t, c, in, 500, simpleItem)
	// The output table "disappears" after the pre-flight DescribeTable:
	// every write is answered ResourceNotFoundException.
	f, _ := faultClient(t, faultproxy.Rule{Op: "BatchWriteItem", Kind: faultproxy.ResourceNotFound, Rate: 1})
	cfg := config(t, c, f, in, out)
	res, err := backfill.Run(context.Background(), cfg)
	var te *dynamo.TableError
	if !errors.As(err, &te) || te.Table != out {
		t.Fatalf("err = %v; want a *dynamo.TableError naming %s", err, out)
	}
	if !strings.Contains(err.Error(), out) || !strings.Contains(err.Error(), "no longer exists") {
		t.Errorf("message %q should name the table and the cause", err)
	}
	if res.ItemsFailed == 0 {
		t.Errorf("no items reported failed: %+v", res)
	}
	checkAccounting(t, res, cfg.Stats)
	if stats.GetPhase(&cfg.Stats.BackfillPhase) != stats.Failed {
		t.Errorf("phase = %v, want failed", stats.GetPhase(&cfg.Stats.BackfillPhase))
	}
	// Nothing is checkpointed past what was written.
	if done, _ := backfill.Done(context.Background(), cfg.Store, cfg.StateKey); done {
		t.Error("Done = true after a failed run")
	}
}

func TestSkipExpired(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "ttl-in"), ddbtest.Name(t, "ttl-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	if _, err := c.UpdateTimeToLive(context.Background(), &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(in),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expires"), Enabled: aws.Bool(true)},
	}); err != nil {
		t.Fatal(err)
	}
	// The run's clock is ten years ahead, so that every TTL below lies in
	// the real future: DynamoDB Local deletes expired items itself, in
	// the background, which would make the counts vary.
	now := time.Now().UTC().AddDate(10, 0, 0).Truncate(time.Second)
	var items []map[string]types.AttributeValue
	wantKept := map[string]bool{}
	for i := range 90 {
		it := simpleItem(i)
		k := it["pk"].(*types.AttributeValueMemberS).Value
		switch i % 3 {
		case 0:
			switch i % 9 {
			case 0: // expired an hour ago
				it["expires"] = &types.AttributeValueMemberN{Value: fmt.Sprint(now.Add(-time.Hour).Unix())}
			case 3: // expired a day short of five years ago: still deleted by DynamoDB
				it["expires"] = &types.AttributeValueMemberN{Value: fmt.Sprint(now.AddDate(-5, 0, 1).Unix())}
			default: // more than five years in the past: DynamoDB never deletes it
				it["expires"] = &types.AttributeValueMemberN{Value: fmt.Sprint(now.AddDate(-6, 0, 0).Unix())}
				wantKept[k] = true
			}
		case 1: // expires later
			it["expires"] = &types.AttributeValueMemberN{Value: fmt.Sprint(now.Add(time.Hour).Unix())}
			wantKept[k] = true
		default: // no TTL, or one that is not a number
			if i%2 == 0 {
				it["expires"] = &types.AttributeValueMemberS{Value: "never"}
			}
			wantKept[k] = true
		}
		items = append(items, it)
	}
	ddbtest.PutItems(t, c, in, items)
	cfg := config(t, c, c, in, out)
	cfg.SkipExpired = true
	cfg.Now = func() time.Time { return now }
	res, err := backfill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ItemsSkipped != 20 || res.ItemsWritten != 70 || res.ItemsRead != 90 {
		t.Fatalf("result %+v; want 90 read, 20 skipped, 70 written", res)
	}
	checkAccounting(t, res, cfg.Stats)
	got := ddbtest.ScanAll(t, c, out)
	if len(got) != len(wantKept) {
		t.Fatalf("output holds %d items, want %d", len(got), len(wantKept))
	}
	for _, it := range got {
		if !wantKept[it["pk"].(*types.AttributeValueMemberS).Value] {
			t.Fatalf("expired item %v was copied", it["pk"])
		}
	}

	// Without the flag every item is copied.
	out2 := ddbtest.Name(t, "ttl-out2")
	ddbtest.CreateTable(t, c, out2, ddbtest.StringKey)
	cfg = config(t, c, c, in, out2)
	cfg.Now = func() time.Time { return now }
	if res, err := backfill.Run(context.Background(), cfg); err != nil || res.ItemsWritten != 90 {
		t.Fatalf("without --skip-expired: %+v, %v; want 90 written", res, err)
	}
}

func TestCreateOutputTable(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "create-in"), ddbtest.Name(t, "create-out")
	_, err := c.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName: aws.String(in),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String("g"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("l"), AttributeType: types.ScalarAttributeTypeB},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		BillingMode:           types.BillingModeProvisioned,
		ProvisionedThroughput: &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(7), WriteCapacityUnits: aws.Int64(9)},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:             aws.String("by-g"),
			KeySchema:             []types.KeySchemaElement{{AttributeName: aws.String("g"), KeyType: types.KeyTypeHash}},
			Projection:            &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
			ProvisionedThroughput: &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(3), WriteCapacityUnits: aws.Int64(4)},
		}},
		LocalSecondaryIndexes: []types.LocalSecondaryIndex{{
			IndexName: aws.String("by-l"),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("l"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: []string{"n"}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range []string{in, out} {
			_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(n)})
		}
	})
	var items []map[string]types.AttributeValue
	for i := range 100 {
		items = append(items, map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: fmt.Sprint("p", i%10)},
			"sk": &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
			"g":  &types.AttributeValueMemberS{Value: fmt.Sprint("g", i%3)},
			"l":  &types.AttributeValueMemberB{Value: []byte{byte(i)}},
			"n":  &types.AttributeValueMemberN{Value: "1"},
		})
	}
	ddbtest.PutItems(t, c, in, items)

	// Without the flag: a clear error before anything is read.
	cfg := config(t, c, c, in, out)
	_, err = backfill.Run(context.Background(), cfg)
	var nf *dynamo.NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "(CreateOutputTable)") {
		t.Fatalf("missing output without CreateOutputTable: %v; want a NotFoundError naming the option", err)
	}
	if cfg.Stats.ItemsRead.Load() != 0 {
		t.Fatal("items were read although the output is missing")
	}

	cfg.CreateOutputTable = true
	res, err := backfill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ItemsWritten != 100 {
		t.Fatalf("written %d, want 100", res.ItemsWritten)
	}
	ddbtest.AssertSameItems(t, c, in, out, "pk", "sk")
	d, err := c.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(out)})
	if err != nil {
		t.Fatal(err)
	}
	got := d.Table
	if got.TableStatus != types.TableStatusActive {
		t.Errorf("status %s, want ACTIVE", got.TableStatus)
	}
	if ks := dynamo.KeySchemaOf(got); ks.String() != "pk (S, partition key) + sk (N, sort key)" {
		t.Errorf("key schema %s", ks)
	}
	if pt := got.ProvisionedThroughput; pt == nil || aws.ToInt64(pt.ReadCapacityUnits) != 7 || aws.ToInt64(pt.WriteCapacityUnits) != 9 {
		t.Errorf("provisioned throughput %+v, want 7/9", got.ProvisionedThroughput)
	}
	if len(got.GlobalSecondaryIndexes) != 1 || aws.ToString(got.GlobalSecondaryIndexes[0].IndexName) != "by-g" ||
		got.GlobalSecondaryIndexes[0].Projection.ProjectionType != types.ProjectionTypeKeysOnly ||
		aws.ToInt64(got.GlobalSecondaryIndexes[0].ProvisionedThroughput.WriteCapacityUnits) != 4 {
		t.Errorf("GSIs %+v", got.GlobalSecondaryIndexes)
	}
	if len(got.LocalSecondaryIndexes) != 1 || aws.ToString(got.LocalSecondaryIndexes[0].IndexName) != "by-l" ||
		got.LocalSecondaryIndexes[0].Projection.ProjectionType != types.ProjectionTypeInclude {
		t.Errorf("LSIs %+v", got.LocalSecondaryIndexes)
	}
}

func TestKeyMismatchWritesNothing(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "mm-in"), ddbtest.Name(t, "mm-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.KeySpec{Hash: "pk", HashType: types.ScalarAttributeTypeN})
	load(t, c, in, 50, simpleItem)
	cfg := config(t, c, c, in, out)
	_, err := backfill.Run(context.Background(), cfg)
	var pe *plan.Error
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "key schemas differ") {
		t.Fatalf("err = %v; want a plan.Error about key schemas", err)
	}
	if err := backfill.Check(context.Background(), cfg); !errors.As(err, &pe) {
		t.Fatalf("Check: %v; want the same usage error", err)
	}
	if cfg.Stats.ItemsRead.Load() != 0 || len(ddbtest.ScanAll(t, c, out)) != 0 {
		t.Fatal("items were read or written despite the key mismatch")
	}
	if keys, _ := cfg.Store.List(context.Background(), ""); len(keys) != 0 {
		t.Fatalf("checkpoints written: %v", keys)
	}
}

func TestReadBudgetIsKept(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "rcu-in"), ddbtest.Name(t, "rcu-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	load(t, c, in, 1000, simpleItem)
	var buf bytes.Buffer
	cfg := config(t, c, c, in, out)
	cfg.Logger = zap.New(zapcoreFor(&buf))
	cfg.MaxRCU = 1000
	cfg.MaxWCU = 100000
	res, err := backfill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ItemsWritten != 1000 || res.ConsumedRCU <= 0 {
		t.Fatalf("result %+v; want 1000 written and RCU recorded", res)
	}
	if !strings.Contains(buf.String(), "consumed_wcu") {
		t.Errorf("completion line lacks consumed WCU: %s", buf.String())
	}
}

// killStore persists checkpoints until its limit, then loses every later
// write, as a process killed with SIGKILL at that moment would; it cancels
// the run at that point so the test does not wait for the whole copy.
type killStore struct {
	state.Store
	mu     sync.Mutex
	puts   int
	limit  int
	killed bool
	kill   func()
}

func (k *killStore) Put(ctx context.Context, key string, v any) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed {
		return nil
	}
	k.puts++
	if k.puts > k.limit && strings.Contains(key, "/segment-") {
		k.killed = true
		k.kill()
		return nil
	}
	return k.Store.Put(ctx, key, v)
}

func TestResumeAfterKill(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	in, out := ddbtest.Name(t, "kill-in"), ddbtest.Name(t, "kill-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, out, ddbtest.StringKey)
	const n, pageSize, segments, pagesInFlight = 3000, 40, 4, 2
	load(t, c, in, n, simpleItem)

	fs, err := state.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ks := &killStore{Store: fs, limit: 12, kill: cancel}
	cfg := config(t, c, c, in, out)
	cfg.Store = ks
	cfg.TotalSegments, cfg.PageSize, cfg.PagesInFlight, cfg.WritersPerSegment = segments, pageSize, pagesInFlight, 2
	res1, err := backfill.Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) || !ks.killed {
		t.Fatalf("first run: %v (killed %v); want it killed mid-run", err, ks.killed)
	}
	// What survived the kill.
	var checkpointed int64
	for seg := range segments {
		if cp, ok, err := backfill.LoadSegment(context.Background(), fs, cfg.StateKey, seg); err != nil {
			t.Fatal(err)
		} else if ok {
			checkpointed += cp.ItemsWritten
		}
	}
	if checkpointed == 0 || checkpointed >= n {
		t.Fatalf("%d items checkpointed before the kill; want partial progress", checkpointed)
	}
	cfg.Store = fs
	cfg.Stats = stats.NewEntry(in, out)
	res2, err := backfill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res2.ItemsWritten != n-checkpointed {
		t.Fatalf("resumed run wrote %d; want the %d items after the surviving checkpoints", res2.ItemsWritten, n-checkpointed)
	}
	// Rewritten: what the first run wrote past the surviving checkpoints,
	// at most the pages in flight (plus the page whose checkpoint the kill
	// lost) per segment.
	if rewritten := res1.ItemsWritten - checkpointed; rewritten > segments*(pagesInFlight+1)*pageSize {
		t.Fatalf("%d items written again after the kill; more than the pages in flight", rewritten)
	}
	ddbtest.AssertSameItems(t, c, in, out, "pk", "")
}
