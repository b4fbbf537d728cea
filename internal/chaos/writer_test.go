package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

type av = types.AttributeValue

func key(i int) string { return fmt.Sprintf("k%04d", i) }

// randomItem makes an item with a mix of every attribute type, including
// numbers in non-canonical form, sets, and empty and nested maps and lists.
func randomItem(r *rand.Rand, pk string) map[string]av {
	it := map[string]av{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"v":  &types.AttributeValueMemberN{Value: strconv.Itoa(r.IntN(1000))},
	}
	if r.IntN(4) > 0 {
		it["s"] = &types.AttributeValueMemberS{Value: strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(120))}
	}
	if r.IntN(3) == 0 {
		it["d"] = &types.AttributeValueMemberN{Value: fmt.Sprintf("%d.%d0", r.IntN(100), r.IntN(10))}
	}
	if r.IntN(3) == 0 {
		it["ss"] = &types.AttributeValueMemberSS{Value: []string{"z", "a" + strconv.Itoa(r.IntN(9))}}
	}
	if r.IntN(3) == 0 {
		it["ns"] = &types.AttributeValueMemberNS{Value: []string{"3", "1.50", strconv.Itoa(10 + r.IntN(9))}}
	}
	if r.IntN(3) == 0 {
		m := map[string]av{}
		if r.IntN(2) == 0 {
			m["x"] = &types.AttributeValueMemberN{Value: strconv.Itoa(r.IntN(50))}
			m["e"] = &types.AttributeValueMemberM{Value: map[string]av{}}
		}
		it["m"] = &types.AttributeValueMemberM{Value: m}
	}
	if r.IntN(3) == 0 {
		l := []av{}
		for range r.IntN(3) {
			l = append(l, &types.AttributeValueMemberS{Value: strconv.Itoa(r.IntN(10))})
		}
		it["l"] = &types.AttributeValueMemberL{Value: l}
	}
	if r.IntN(4) == 0 {
		it["b"] = &types.AttributeValueMemberB{Value: []byte{byte(r.IntN(256)), 0, 1}}
		it["t"] = &types.AttributeValueMemberBOOL{Value: r.IntN(2) == 0}
		it["z"] = &types.AttributeValueMemberNULL{Value: true}
	}
	return it
}

// writers is how many goroutines change the input at once, each on its
// own keys (DynamoDB Local takes tens to hundreds of milliseconds a write
// on a busy machine; one writer alone changes too little).
const writers = 3

// writer changes the input table until stopped.
type writer struct {
	c     *dynamodb.Client
	table string
	keys  int

	cancel context.CancelFunc
	done   chan struct{}
	err    error
	ops    atomic.Int64
	mu     sync.Mutex
	counts map[string]int
	start  time.Time
	hist   map[string][]string // the last writes of each key
}

func startWriter(c *dynamodb.Client, table string, keys int, seed uint64, start time.Time) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{c: c, table: table, keys: keys,
		cancel: cancel, done: make(chan struct{}), counts: map[string]int{}, start: start, hist: map[string][]string{}}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &loop{w: w, r: rand.New(rand.NewPCG(seed, 0x77726974+uint64(g))), g: g}
			for ctx.Err() == nil {
				if err := l.step(ctx); err != nil {
					if !errors.Is(err, context.Canceled) && ctx.Err() == nil {
						w.mu.Lock()
						w.err = err
						w.mu.Unlock()
						cancel()
					}
					return
				}
				t := time.NewTimer(time.Duration(5+l.r.IntN(35)) * time.Millisecond)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
		}()
	}
	go func() {
		wg.Wait()
		close(w.done)
	}()
	return w
}

// loop is one writer goroutine: its random source, and the keys whose
// index is g modulo writers.
type loop struct {
	w *writer
	r *rand.Rand
	g int
}

// stop stops the writer and returns its error, if any. After stop returns
// no write is in flight.
func (w *writer) stop() error {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *writer) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("%d puts, %d updates, %d deletes, %d delete+reinserts, %d bursts (%d writes in all)",
		w.counts["put"], w.counts["update"], w.counts["delete"], w.counts["reinsert"], w.counts["burst"], w.ops.Load())
}

// note records a write of key k (the time it was acknowledged).
func (w *writer) note(k, what string, err error) {
	if err != nil {
		what += " (failed: " + err.Error() + ")"
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	h := append(w.hist[k], fmt.Sprintf("%.1fs %s", time.Since(w.start).Seconds(), what))
	if len(h) > 5 {
		h = h[len(h)-5:]
	}
	w.hist[k] = h
}

// history describes the last writes of key k, with the time since the
// seed began.
func (w *writer) history(k string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.hist[k]) == 0 {
		return "none (initial load only)"
	}
	return strings.Join(w.hist[k], ", ")
}

func (w *writer) count(kind string) {
	w.mu.Lock()
	w.counts[kind]++
	w.mu.Unlock()
}

// step makes one change (or a burst). Stopping (ctx) is checked between
// writes only: a write is never cancelled in flight, because DynamoDB
// Local may still apply a request whose client gave up, after the test
// has read the input for the last time.
func (l *loop) step(stop context.Context) error {
	ctx := context.WithoutCancel(stop)
	w := l.w
	k := key(l.r.IntN((w.keys+writers-1-l.g)/writers)*writers + l.g)
	switch p := l.r.IntN(100); {
	case p < 35:
		w.count("put")
		return l.put(ctx, k)
	case p < 65:
		w.count("update")
		return l.update(ctx, k)
	case p < 78:
		w.count("delete")
		return l.del(ctx, k)
	case p < 90:
		w.count("reinsert")
		if err := l.del(ctx, k); err != nil {
			return err
		}
		return l.put(ctx, k)
	default:
		w.count("burst")
		for range 5 + l.r.IntN(40) {
			if stop.Err() != nil {
				return nil
			}
			var err error
			switch l.r.IntN(6) {
			case 0:
				err = l.del(ctx, k)
			case 1, 2:
				err = l.put(ctx, k)
			default:
				err = l.update(ctx, k)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func (l *loop) put(ctx context.Context, k string) error {
	w := l.w
	w.ops.Add(1)
	_, err := w.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(w.table), Item: randomItem(l.r, k)})
	w.note(k, "put", err)
	return err
}

func (l *loop) del(ctx context.Context, k string) error {
	w := l.w
	w.ops.Add(1)
	_, err := w.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(w.table),
		Key: map[string]av{"pk": &types.AttributeValueMemberS{Value: k}}})
	w.note(k, "delete", err)
	return err
}

func (l *loop) update(ctx context.Context, k string) error {
	w := l.w
	w.ops.Add(1)
	in := &dynamodb.UpdateItemInput{TableName: aws.String(w.table),
		Key: map[string]av{"pk": &types.AttributeValueMemberS{Value: k}}}
	switch l.r.IntN(5) {
	case 0:
		in.UpdateExpression = aws.String("SET v = if_not_exists(v, :zero) + :one, s = :s")
		in.ExpressionAttributeValues = map[string]av{
			":zero": &types.AttributeValueMemberN{Value: "0"},
			":one":  &types.AttributeValueMemberN{Value: "1"},
			":s":    &types.AttributeValueMemberS{Value: "u" + strconv.Itoa(l.r.IntN(1000))},
		}
	case 1:
		in.UpdateExpression = aws.String("ADD ns :n")
		in.ExpressionAttributeValues = map[string]av{":n": &types.AttributeValueMemberNS{Value: []string{strconv.Itoa(l.r.IntN(30)) + ".0"}}}
	case 2:
		in.UpdateExpression = aws.String("SET l = list_append(if_not_exists(l, :empty), :one)")
		in.ExpressionAttributeValues = map[string]av{
			":empty": &types.AttributeValueMemberL{Value: []av{}},
			":one":   &types.AttributeValueMemberL{Value: []av{&types.AttributeValueMemberN{Value: strconv.Itoa(l.r.IntN(9))}}},
		}
	case 3:
		in.UpdateExpression = aws.String("REMOVE s, ss, m")
	default:
		in.UpdateExpression = aws.String("SET m = :m, d = :d")
		in.ExpressionAttributeValues = map[string]av{
			":m": &types.AttributeValueMemberM{Value: map[string]av{"y": &types.AttributeValueMemberS{Value: "x"}, "e": &types.AttributeValueMemberM{Value: map[string]av{}}}},
			":d": &types.AttributeValueMemberN{Value: fmt.Sprintf("%d.250", l.r.IntN(100))},
		}
	}
	_, err := w.c.UpdateItem(ctx, in)
	w.note(k, "update "+strings.Fields(*in.UpdateExpression)[0], err)
	return err
}
