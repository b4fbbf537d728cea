// Command demo is `make demo`: it starts DynamoDB Local, fills a source
// table that has a stream with a few thousand varied items, runs
// `ddbsync sync --until-caught-up` while it changes the source, then runs
// `ddbsync diff` to show that both tables hold the same items. It stops
// everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddblocal"
	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

const (
	region = "us-east-1"
	source = "demo-orders"
	dest   = "demo-orders-copy"
)

func main() {
	bin := flag.String("bin", "bin/ddbsync", "ddbsync binary")
	items := flag.Int("items", 5000, "items in the source table")
	changes := flag.Int("changes", 600, "changes made to the source while sync runs")
	flag.Parse()
	if err := run(*bin, *items, *changes); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func run(bin string, nItems, nChanges int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		os.Setenv(k, "demo")
	}
	os.Setenv("AWS_REGION", region)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Unsetenv("AWS_PROFILE")

	say("Starting DynamoDB Local")
	srv, err := ddblocal.Start(ctx)
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Println("    endpoint", srv.Endpoint)

	cl, err := creds.New(creds.Options{EndpointURL: srv.Endpoint}).For(ctx, plan.Table{Region: region})
	if err != nil {
		return err
	}
	db := cl.DynamoDB

	say("Creating %s (partition key customer, sort key order_id, stream NEW_AND_OLD_IMAGES) with %d items", source, nItems)
	if err := createSource(ctx, db); err != nil {
		return err
	}
	if err := load(ctx, db, nItems); err != nil {
		return err
	}

	stateDir, err := os.MkdirTemp("", "ddbsync-demo-state-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)

	args := []string{"sync",
		"--input-table", source, "--input-region", region,
		"--output-table", dest, "--output-region", region,
		"--endpoint-url", srv.Endpoint,
		"--create-output-table", "--until-caught-up",
		"--state-dir", filepath.Join(stateDir, "state"),
	}
	say("ddbsync %s", join(args))
	say("…while %d changes (updates, deletes, new orders) hit %s", nChanges, source)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	var changeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		changeErr = change(ctx, db, nItems, nChanges)
	}()
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("ddbsync sync: %w", err)
	}
	if changeErr != nil {
		return changeErr
	}

	diffArgs := []string{"diff", "-m", region + ":" + source, "-s", region + ":" + dest, "--endpoint-url", srv.Endpoint}
	say("ddbsync %s", join(diffArgs))
	diff := exec.CommandContext(ctx, bin, diffArgs...)
	diff.Stdout, diff.Stderr = os.Stdout, os.Stderr
	if err := diff.Run(); err != nil {
		return fmt.Errorf("ddbsync diff says the tables differ: %w", err)
	}
	say("Done: %s was copied to %s, %d changes made during the copy were applied, and diff finds the tables equal.", source, dest, nChanges)
	return nil
}

func join(args []string) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}

func createSource(ctx context.Context, db *dynamodb.Client) error {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(source),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("customer"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("order_id"), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("customer"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("order_id"), KeyType: types.KeyTypeRange},
		},
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages},
	})
	if err != nil {
		return fmt.Errorf("create %s: %w", source, err)
	}
	return dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(source)}, time.Minute)
}

var statuses = []string{"placed", "paid", "shipped", "delivered", "returned"}

func item(i int, rev int) map[string]types.AttributeValue {
	r := rand.New(rand.NewPCG(uint64(i), uint64(rev)))
	it := map[string]types.AttributeValue{
		"customer": &types.AttributeValueMemberS{Value: fmt.Sprintf("customer-%04d", i%700)},
		"order_id": &types.AttributeValueMemberN{Value: strconv.Itoa(i)},
		"status":   &types.AttributeValueMemberS{Value: statuses[(i+rev)%len(statuses)]},
		"total":    &types.AttributeValueMemberN{Value: fmt.Sprintf("%d.%02d", r.IntN(900)+1, r.IntN(100))},
		"rev":      &types.AttributeValueMemberN{Value: strconv.Itoa(rev)},
		"gift":     &types.AttributeValueMemberBOOL{Value: i%7 == 0},
		"tags":     &types.AttributeValueMemberSS{Value: []string{"web", fmt.Sprintf("batch-%d", i%13)}},
		"lines": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"sku": &types.AttributeValueMemberS{Value: fmt.Sprintf("SKU-%05d", r.IntN(99999))},
				"qty": &types.AttributeValueMemberN{Value: strconv.Itoa(r.IntN(5) + 1)},
			}},
		}},
		"address": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"city":    &types.AttributeValueMemberS{Value: []string{"Zürich", "東京", "São Paulo", "Oslo"}[i%4]},
			"zip":     &types.AttributeValueMemberS{Value: fmt.Sprintf("%05d", r.IntN(99999))},
			"note":    &types.AttributeValueMemberS{Value: ""},
			"comment": &types.AttributeValueMemberNULL{Value: true},
		}},
		"signature": &types.AttributeValueMemberB{Value: []byte{byte(i), byte(i >> 8), 0, 0xff}},
	}
	if i%5 == 0 {
		it["coupons"] = &types.AttributeValueMemberNS{Value: []string{"5", "10", strconv.Itoa(100 + i%50)}}
	}
	return it
}

func load(ctx context.Context, db *dynamodb.Client, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := w * 25; start < n; start += 8 * 25 {
				var reqs []types.WriteRequest
				for i := start; i < min(start+25, n); i++ {
					reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item(i, 0)}})
				}
				for len(reqs) > 0 {
					out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{source: reqs}})
					if err != nil {
						errs <- err
						return
					}
					reqs = out.UnprocessedItems[source]
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// change makes n changes to the source while sync runs: a third updates,
// a third deletes, a third new items.
func change(ctx context.Context, db *dynamodb.Client, nItems, n int) error {
	for c := range n {
		var err error
		i := (c * 7919) % nItems
		switch c % 3 {
		case 0:
			_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(source), Item: item(i, c+1)})
		case 1:
			key := item(i, 0)
			_, err = db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(source), Key: map[string]types.AttributeValue{
				"customer": key["customer"], "order_id": key["order_id"]}})
		case 2:
			_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(source), Item: item(nItems+c, 0)})
		}
		if err != nil {
			return fmt.Errorf("change %d: %w", c, err)
		}
	}
	return nil
}
