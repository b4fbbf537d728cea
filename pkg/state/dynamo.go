package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// Attribute names of the checkpoint table. The key is (pk, sk): pk is the
// first element of a state key (the plan entry ID), sk the whole key, so
// that every checkpoint of an entry is one Query away and an item reads
// naturally in the console (pk "orders-orders-1a2b…", sk
// "orders-orders-1a2b…/backfill/segment-3").
//
// Sort keys starting with "~" are reserved for pkg/lease (leases
// "~lease/…" and plan fingerprints "~plan/…"); Store keys cannot start
// with "~".
const (
	AttrPK        = "pk"         // S, partition key
	AttrSK        = "sk"         // S, sort key
	AttrDoc       = "doc"        // S, the JSON document
	AttrUpdatedAt = "updated_at" // S, RFC 3339 time of the last write (writer's clock; informational)
	AttrWriter    = "writer"     // S, who wrote last (worker ID, or empty)
	AttrVersion   = "version"    // N, number of writes of this key
)

// ReservedPrefix starts the sort keys that belong to pkg/lease.
const ReservedPrefix = "~"

// maxDocBytes keeps a document well below DynamoDB's 400 KB item limit.
const maxDocBytes = 380 * 1024

// DynamoAPI is the part of the DynamoDB client the checkpoint table needs
// (pkg/lease uses the same client).
type DynamoAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// DynamoOptions configure a DynamoStore.
type DynamoOptions struct {
	// Writer is recorded with every document written (a worker ID such as
	// lease.NewWorkerID() returns); informational.
	Writer string
	// Logger receives the table creation line; nil: no logs.
	Logger *zap.Logger
	// Now is the clock of the updated_at attribute; nil: time.Now.
	Now func() time.Time
	// CreateTimeout bounds EnsureTable's wait for a new table to become
	// active; 0: 5 minutes.
	CreateTimeout time.Duration
}

// DynamoStore is a Store in a DynamoDB table (--checkpoint-table), shared
// by every worker of a plan. Reads are strongly consistent; each Put is a
// single-item write, so it is atomic.
type DynamoStore struct {
	client DynamoAPI
	table  string
	opts   DynamoOptions
	log    *zap.Logger
}

// NewDynamoStore returns a store on table. Call EnsureTable before the
// first use.
func NewDynamoStore(client DynamoAPI, table string, opts DynamoOptions) *DynamoStore {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CreateTimeout == 0 {
		opts.CreateTimeout = 5 * time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &DynamoStore{client: client, table: table, opts: opts, log: log}
}

// Table is the name of the checkpoint table.
func (s *DynamoStore) Table() string { return s.table }

// Where is "checkpoint table TABLE" (see the package's Where).
func (s *DynamoStore) Where() string { return "checkpoint table " + s.table }

// Client is the DynamoDB client of the checkpoint table.
func (s *DynamoStore) Client() DynamoAPI { return s.client }

// Logger is the store's logger (never nil).
func (s *DynamoStore) Logger() *zap.Logger { return s.log }

// EnsureTable creates the checkpoint table (on-demand billing) when it
// does not exist and waits until it is active, or checks the key schema of
// an existing one. A table with another key schema is a *plan.Error (exit
// 2): it is not ours, and nothing is written to it.
func (s *DynamoStore) EnsureTable(ctx context.Context) error {
	exists, creating, err := s.checkTable(ctx)
	switch {
	case err != nil:
		return err
	case !exists:
		return s.create(ctx)
	case creating:
		return s.wait(ctx)
	}
	return nil
}

// CheckTable does EnsureTable's checks without creating or waiting for
// anything (a dry run): exists is false when the table is missing (a run
// would create it); a table of another key schema or one being deleted is
// a *plan.Error.
func (s *DynamoStore) CheckTable(ctx context.Context) (exists bool, err error) {
	exists, _, err = s.checkTable(ctx)
	return exists, err
}

func (s *DynamoStore) checkTable(ctx context.Context) (exists, creating bool, err error) {
	desc, err := dynamo.DescribeTable(ctx, s.client, s.table, "")
	var nf *dynamo.NotFoundError
	switch {
	case errors.As(err, &nf):
		return false, false, nil
	case err != nil:
		return false, false, err
	}
	if err := s.checkSchema(desc); err != nil {
		return true, false, err
	}
	if desc.TableStatus == types.TableStatusDeleting {
		return true, false, &plan.Error{Msg: fmt.Sprintf("checkpoint table %s is being deleted; wait until it is gone (ddbsync then creates it again) or name another table", s.table)}
	}
	return true, desc.TableStatus == types.TableStatusCreating, nil
}

func (s *DynamoStore) create(ctx context.Context) error {
	s.log.Info(fmt.Sprintf("checkpoint table %s does not exist: creating it (on-demand billing, key %s/%s)", s.table, AttrPK, AttrSK))
	_, err := s.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(s.table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSK), KeyType: types.KeyTypeRange},
		},
	})
	var inUse *types.ResourceInUseException
	racing := errors.As(err, &inUse) // another worker is creating it right now
	if err != nil && !racing {
		return &dynamo.TableError{Table: s.table, Op: "CreateTable", Err: err}
	}
	if err := s.wait(ctx); err != nil {
		return err
	}
	if racing { // created by someone else: make sure it is what we need
		desc, err := dynamo.DescribeTable(ctx, s.client, s.table, "")
		if err != nil {
			return err
		}
		return s.checkSchema(desc)
	}
	return nil
}

func (s *DynamoStore) wait(ctx context.Context) error {
	w := dynamodb.NewTableExistsWaiter(s.client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 200 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)}, s.opts.CreateTimeout); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &dynamo.TableError{Table: s.table, Op: "wait for the checkpoint table to become active", Err: err}
	}
	s.log.Info(fmt.Sprintf("checkpoint table %s is ready", s.table))
	return nil
}

func (s *DynamoStore) checkSchema(desc *types.TableDescription) error {
	attrTypes := map[string]types.ScalarAttributeType{}
	for _, a := range desc.AttributeDefinitions {
		attrTypes[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	var have []string
	ok := len(desc.KeySchema) == 2
	for i, k := range desc.KeySchema {
		name := aws.ToString(k.AttributeName)
		have = append(have, fmt.Sprintf("%s (%s, %s)", name, attrTypes[name], strings.ToLower(string(k.KeyType))))
		want := []string{AttrPK, AttrSK}
		wantType := []types.KeyType{types.KeyTypeHash, types.KeyTypeRange}
		if i >= 2 || name != want[i] || k.KeyType != wantType[i] || attrTypes[name] != types.ScalarAttributeTypeS {
			ok = false
		}
	}
	if !ok {
		return &plan.Error{Msg: fmt.Sprintf("checkpoint table %s has the key %s; ddbsync needs %s (S, hash) and %s (S, range). It is probably not a ddbsync checkpoint table: name another table (ddbsync creates it when missing)",
			s.table, strings.Join(have, " + "), AttrPK, AttrSK)}
	}
	return nil
}

// SplitKey maps a state key to the item key of the checkpoint table: pk is
// the key's first path element, sk the whole key.
func SplitKey(key string) (pk, sk string, err error) {
	if key == "" {
		return "", "", fmt.Errorf("empty checkpoint key")
	}
	if strings.HasPrefix(key, ReservedPrefix) {
		return "", "", fmt.Errorf("checkpoint key %q starts with %q, which is reserved for leases", key, ReservedPrefix)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" {
			return "", "", fmt.Errorf("checkpoint key %q has an empty path element", key)
		}
	}
	if len(key) > 1024 {
		return "", "", fmt.Errorf("checkpoint key %q… is %d bytes long; DynamoDB allows 1024", key[:40], len(key))
	}
	pk, _, _ = strings.Cut(key, "/")
	return pk, key, nil
}

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: pk},
		AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func (s *DynamoStore) fail(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &dynamo.TableError{Table: s.table, Op: op, Err: err}
}

// Get implements Store with a strongly consistent read.
func (s *DynamoStore) Get(ctx context.Context, key string, v any) (bool, error) {
	pk, sk, err := SplitKey(key)
	if err != nil {
		return false, err
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            itemKey(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return false, s.fail("GetItem "+key, err)
	}
	if out.Item == nil {
		return false, nil
	}
	doc, ok := out.Item[AttrDoc].(*types.AttributeValueMemberS)
	if !ok {
		return false, fmt.Errorf("checkpoint %s in table %s has no %q string attribute; it was not written by ddbsync: delete the item to start that part over", key, s.table, AttrDoc)
	}
	if err := json.Unmarshal([]byte(doc.Value), v); err != nil {
		return false, fmt.Errorf("checkpoint %s in table %s is damaged (%v); delete the item to start that part over", key, s.table, err)
	}
	return true, nil
}

// Put implements Store: one UpdateItem replaces the document and bumps the
// bookkeeping attributes.
func (s *DynamoStore) Put(ctx context.Context, key string, v any) error {
	pk, sk, err := SplitKey(key)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode checkpoint %s: %w", key, err)
	}
	if len(data) > maxDocBytes {
		return fmt.Errorf("checkpoint %s is %d bytes; the checkpoint table holds documents up to %d bytes", key, len(data), maxDocBytes)
	}
	in, err := s.docUpdate(pk, sk, data, false)
	if err != nil {
		return err
	}
	_, err = s.client.UpdateItem(ctx, in)
	if err != nil {
		return s.fail("UpdateItem "+key, err)
	}
	return nil
}

// Delete implements Store.
func (s *DynamoStore) Delete(ctx context.Context, key string) error {
	pk, sk, err := SplitKey(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: itemKey(pk, sk)})
	if err != nil {
		return s.fail("DeleteItem "+key, err)
	}
	return nil
}

// List implements Store. A prefix with a "/" (the usual "ENTRY-ID/backfill/")
// is one consistent Query; a shorter prefix needs a consistent Scan.
// Lease items are never listed.
func (s *DynamoStore) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	collect := func(items []map[string]types.AttributeValue) {
		for _, it := range items {
			if sk, ok := it[AttrSK].(*types.AttributeValueMemberS); ok {
				keys = append(keys, sk.Value)
			}
		}
	}
	// Lease items have no document.
	filter := expression.AttributeExists(expression.Name(AttrDoc))
	b := expression.NewBuilder().WithProjection(expression.NamesList(expression.Name(AttrSK)))
	if pk, _, found := strings.Cut(prefix, "/"); found && pk != "" {
		expr, err := b.WithFilter(filter).
			WithKeyCondition(expression.Key(AttrPK).Equal(expression.Value(pk)).
				And(expression.Key(AttrSK).BeginsWith(prefix))).
			Build()
		if err != nil {
			return nil, fmt.Errorf("list checkpoints %s: %w", prefix, err)
		}
		p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    expr.KeyCondition(),
			FilterExpression:          expr.Filter(),
			ProjectionExpression:      expr.Projection(),
			ExpressionAttributeNames:  expr.Names(),
			ExpressionAttributeValues: expr.Values(),
			ConsistentRead:            aws.Bool(true),
		})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, s.fail("Query "+prefix, err)
			}
			collect(out.Items)
		}
		return keys, nil // Query returns sort-key order
	}
	if prefix != "" {
		filter = filter.And(expression.Name(AttrSK).BeginsWith(prefix))
	}
	expr, err := b.WithFilter(filter).Build()
	if err != nil {
		return nil, fmt.Errorf("list checkpoints %s: %w", prefix, err)
	}
	p := dynamodb.NewScanPaginator(s.client, &dynamodb.ScanInput{
		TableName:                 aws.String(s.table),
		FilterExpression:          expr.Filter(),
		ProjectionExpression:      expr.Projection(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.fail("Scan "+prefix, err)
		}
		collect(out.Items)
	}
	sort.Strings(keys)
	return keys, nil
}

// PutIfAbsent writes v under key only when no document is there yet (a
// conditional write), and reports whether it wrote. Workers that race to
// record the same thing (sync's handover) call it, and the losers read
// the winner's document with Get. A retried request whose first attempt
// was applied reports false: Get then returns this worker's own document.
func (s *DynamoStore) PutIfAbsent(ctx context.Context, key string, v any) (bool, error) {
	pk, sk, err := SplitKey(key)
	if err != nil {
		return false, err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("encode checkpoint %s: %w", key, err)
	}
	if len(data) > maxDocBytes {
		return false, fmt.Errorf("checkpoint %s is %d bytes; the checkpoint table holds documents up to %d bytes", key, len(data), maxDocBytes)
	}
	in, err := s.docUpdate(pk, sk, data, true)
	if err != nil {
		return false, err
	}
	_, err = s.client.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, s.fail("UpdateItem "+key, err)
	}
	return true, nil
}

// docUpdate is the UpdateItem that stores a document: it replaces the
// document and bumps the bookkeeping attributes (time, writer, version),
// only when no document is there yet if ifAbsent.
func (s *DynamoStore) docUpdate(pk, sk string, doc []byte, ifAbsent bool) (*dynamodb.UpdateItemInput, error) {
	update := expression.
		Set(expression.Name(AttrDoc), expression.Value(string(doc))).
		Set(expression.Name(AttrUpdatedAt), expression.Value(s.opts.Now().UTC().Format(time.RFC3339Nano))).
		Set(expression.Name(AttrWriter), expression.Value(s.opts.Writer)).
		Add(expression.Name(AttrVersion), expression.Value(1))
	b := expression.NewBuilder().WithUpdate(update)
	if ifAbsent {
		b = b.WithCondition(expression.AttributeNotExists(expression.Name(AttrDoc)))
	}
	expr, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s/%s: %w", pk, sk, err)
	}
	return &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       itemKey(pk, sk),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}, nil
}
