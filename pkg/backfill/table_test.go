package backfill

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

// A created output table keeps the input's time to live and deletion
// protection: DynamoDB Local holds both. (It accepts tags and a table
// class at CreateTable without keeping them and has no point-in-time
// recovery: those are checked with SDK stubs below.)
func TestCreateOutputTableCopiesTTLAndDeletionProtection(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	ctx := context.Background()
	in, out := ddbtest.Name(t, "settings-in"), ddbtest.Name(t, "settings-out")
	ddbtest.CreateTable(t, c, in, ddbtest.StringKey)
	for _, name := range []string{out, in} { // cleanups run last first: in after out
		t.Cleanup(func() {
			_, _ = c.UpdateTable(context.Background(), &dynamodb.UpdateTableInput{TableName: aws.String(name), DeletionProtectionEnabled: aws.Bool(false)})
			_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		})
	}
	if _, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(in), DeletionProtectionEnabled: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(in),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{Enabled: aws.Bool(true), AttributeName: aws.String("expires_at")}}); err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(in)})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	if _, err := createOutputTable(ctx, c, c, out, desc.Table, CreateOptions{Log: zap.New(core)}); err != nil {
		t.Fatalf("createOutputTable: %v", err)
	}

	got, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(out)})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(got.Table.DeletionProtectionEnabled) {
		t.Errorf("deletion protection of the output: %v, want true like the input", got.Table.DeletionProtectionEnabled)
	}
	ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(out)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "expires_at" {
		t.Errorf("time to live of the output: %+v, want ENABLED on expires_at", d)
	}
	for _, e := range logs.All() {
		t.Logf("warning (DynamoDB Local cannot hold every setting): %s", e.Message)
	}
}

// stubCall is one request a stubbed client received.
type stubCall struct {
	op    string
	input any
}

// stubClient is a DynamoDB client whose requests never leave the process:
// a Serialize-step middleware (added through APIOptions, as awsdocs'
// testtools stubber does) records each input and answers from answers,
// by operation name; an error value is returned as the request's error.
func stubClient(t *testing.T, answers map[string]any) (*dynamodb.Client, *[]stubCall) {
	t.Helper()
	calls := &[]stubCall{}
	stub := func(stack *middleware.Stack) error {
		return stack.Serialize.Add(middleware.SerializeMiddlewareFunc("stub", func(ctx context.Context, in middleware.SerializeInput, _ middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			*calls = append(*calls, stubCall{op, in.Parameters})
			a, ok := answers[op]
			if !ok {
				return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("stub: unexpected %s", op)
			}
			if err, ok := a.(error); ok {
				return middleware.SerializeOutput{}, middleware.Metadata{}, err
			}
			return middleware.SerializeOutput{Result: a}, middleware.Metadata{}, nil
		}), middleware.Before)
	}
	c := dynamodb.New(dynamodb.Options{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}, APIOptions: []func(*middleware.Stack) error{stub}})
	return c, calls
}

func callsOf(calls []stubCall, op string) []any {
	var out []any
	for _, c := range calls {
		if c.op == op {
			out = append(out, c.input)
		}
	}
	return out
}

// inputDesc is an input table with every setting ddbsync copies.
func inputDesc() *types.TableDescription {
	return &types.TableDescription{
		TableName:                 aws.String("orders"),
		TableArn:                  aws.String("arn:aws:dynamodb:us-east-1:111111111111:table/orders"),
		KeySchema:                 []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions:      []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		BillingModeSummary:        &types.BillingModeSummary{BillingMode: types.BillingModePayPerRequest},
		OnDemandThroughput:        &types.OnDemandThroughput{MaxReadRequestUnits: aws.Int64(500)},
		TableClassSummary:         &types.TableClassSummary{TableClass: types.TableClassStandardInfrequentAccess},
		DeletionProtectionEnabled: aws.Bool(true),
		WarmThroughput:            &types.TableWarmThroughputDescription{ReadUnitsPerSecond: aws.Int64(20000), WriteUnitsPerSecond: aws.Int64(6000), Status: types.TableStatusActive},
		SSEDescription:            &types.SSEDescription{Status: types.SSEStatusEnabled, SSEType: types.SSETypeKms, KMSMasterKeyArn: aws.String("arn:aws:kms:us-east-1:111111111111:key/1234")},
		StreamSpecification:       &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage},
	}
}

func sourceAnswers() map[string]any {
	return map[string]any{
		"ListTagsOfResource": &dynamodb.ListTagsOfResourceOutput{Tags: []types.Tag{
			{Key: aws.String("team"), Value: aws.String("data")},
			{Key: aws.String("aws:cloudformation:stack-name"), Value: aws.String("orders-stack")},
		}},
		"DescribeTimeToLive": &dynamodb.DescribeTimeToLiveOutput{TimeToLiveDescription: &types.TimeToLiveDescription{TimeToLiveStatus: types.TimeToLiveStatusEnabled, AttributeName: aws.String("expires_at")}},
		"DescribeContinuousBackups": &dynamodb.DescribeContinuousBackupsOutput{ContinuousBackupsDescription: &types.ContinuousBackupsDescription{
			ContinuousBackupsStatus:        types.ContinuousBackupsStatusEnabled,
			PointInTimeRecoveryDescription: &types.PointInTimeRecoveryDescription{PointInTimeRecoveryStatus: types.PointInTimeRecoveryStatusEnabled, RecoveryPeriodInDays: aws.Int32(14)},
		}},
	}
}

func destAnswers() map[string]any {
	return map[string]any{
		"CreateTable":             &dynamodb.CreateTableOutput{},
		"DescribeTable":           &dynamodb.DescribeTableOutput{Table: &types.TableDescription{TableName: aws.String("orders-copy"), TableStatus: types.TableStatusActive}},
		"UpdateTimeToLive":        &dynamodb.UpdateTimeToLiveOutput{},
		"UpdateContinuousBackups": &dynamodb.UpdateContinuousBackupsOutput{},
	}
}

// Tags, table class, point-in-time recovery (which DynamoDB Local cannot
// hold), throughput limits, warm throughput, encryption and the stream are
// requested as the input has them.
func TestCreateOutputTableRequestsInputSettings(t *testing.T) {
	src, srcCalls := stubClient(t, sourceAnswers())
	dst, dstCalls := stubClient(t, destAnswers())
	core, logs := observer.New(zap.WarnLevel)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := createOutputTable(ctx, src, dst, "orders-copy", inputDesc(), CreateOptions{Stream: true, Log: zap.New(core)}); err != nil {
		t.Fatal(err)
	}
	creates := callsOf(*dstCalls, "CreateTable")
	if len(creates) != 1 {
		t.Fatalf("CreateTable calls: %d (%v)", len(creates), *dstCalls)
	}
	ct := creates[0].(*dynamodb.CreateTableInput)
	if ct.TableClass != types.TableClassStandardInfrequentAccess {
		t.Errorf("table class %q", ct.TableClass)
	}
	if !aws.ToBool(ct.DeletionProtectionEnabled) {
		t.Error("deletion protection not requested")
	}
	if want := []types.Tag{{Key: aws.String("team"), Value: aws.String("data")}}; !reflect.DeepEqual(ct.Tags, want) {
		t.Errorf("tags %v, want the input's without aws: tags", ct.Tags)
	}
	if ct.BillingMode != types.BillingModePayPerRequest || ct.OnDemandThroughput == nil || aws.ToInt64(ct.OnDemandThroughput.MaxReadRequestUnits) != 500 {
		t.Errorf("billing %q, on-demand throughput %+v", ct.BillingMode, ct.OnDemandThroughput)
	}
	if w := ct.WarmThroughput; w == nil || aws.ToInt64(w.ReadUnitsPerSecond) != 20000 || aws.ToInt64(w.WriteUnitsPerSecond) != 6000 {
		t.Errorf("warm throughput %+v", ct.WarmThroughput)
	}
	if sse := ct.SSESpecification; sse == nil || !aws.ToBool(sse.Enabled) || sse.SSEType != types.SSETypeKms || sse.KMSMasterKeyId != nil {
		t.Errorf("encryption %+v, want KMS with the AWS managed key", ct.SSESpecification)
	}
	if s := ct.StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) || s.StreamViewType != types.StreamViewTypeNewImage {
		t.Errorf("stream %+v", ct.StreamSpecification)
	}
	ttl := callsOf(*dstCalls, "UpdateTimeToLive")
	if len(ttl) != 1 || aws.ToString(ttl[0].(*dynamodb.UpdateTimeToLiveInput).TimeToLiveSpecification.AttributeName) != "expires_at" {
		t.Errorf("UpdateTimeToLive: %v", ttl)
	}
	pitr := callsOf(*dstCalls, "UpdateContinuousBackups")
	if len(pitr) != 1 {
		t.Fatalf("UpdateContinuousBackups: %v", pitr)
	}
	if s := pitr[0].(*dynamodb.UpdateContinuousBackupsInput).PointInTimeRecoverySpecification; !aws.ToBool(s.PointInTimeRecoveryEnabled) || aws.ToInt32(s.RecoveryPeriodInDays) != 14 {
		t.Errorf("point-in-time recovery %+v", s)
	}
	if tags := callsOf(*srcCalls, "ListTagsOfResource"); len(tags) != 1 || aws.ToString(tags[0].(*dynamodb.ListTagsOfResourceInput).ResourceArn) != "arn:aws:dynamodb:us-east-1:111111111111:table/orders" {
		t.Errorf("ListTagsOfResource: %v", tags)
	}
	// The customer managed key is not copied, and the log says so.
	if n := logs.FilterMessageSnippet("arn:aws:kms:us-east-1:111111111111:key/1234").Len(); n != 1 {
		t.Errorf("%d warnings about the KMS key; logs: %v", n, logs.All())
	}

	// Without Stream, no stream specification.
	dst2, dst2Calls := stubClient(t, destAnswers())
	if _, err := createOutputTable(ctx, src, dst2, "orders-copy", inputDesc(), CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ct := callsOf(*dst2Calls, "CreateTable")[0].(*dynamodb.CreateTableInput); ct.StreamSpecification != nil {
		t.Errorf("stream specification without Stream: %+v", ct.StreamSpecification)
	}
}

// An endpoint that lacks an API gets a warning for that setting; the copy
// goes on. A CreateTable refused for a setting is made again with the
// shape alone.
func TestCreateOutputTableSettingsTheEndpointCannotHold(t *testing.T) {
	unknown := &smithy.GenericAPIError{Code: "UnknownOperationException", Message: "not supported"}
	srcAnswers := sourceAnswers()
	srcAnswers["DescribeContinuousBackups"] = unknown
	src, _ := stubClient(t, srcAnswers)

	refused := 0
	dstAnswers := destAnswers()
	dstAnswers["UpdateTimeToLive"] = unknown
	dst, dstCalls := stubClient(t, dstAnswers)
	// The first CreateTable is refused for a setting, the second accepted.
	dst2 := createRefusingOnce{Client: dst, refused: &refused}

	core, logs := observer.New(zap.WarnLevel)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := createOutputTable(ctx, src, dst2, "orders-copy", inputDesc(), CreateOptions{Log: zap.New(core)}); err != nil {
		t.Fatalf("a setting the endpoint cannot hold failed the copy: %v", err)
	}
	if refused != 1 {
		t.Fatalf("CreateTable refused %d times", refused)
	}
	creates := callsOf(*dstCalls, "CreateTable")
	if len(creates) != 1 {
		t.Fatalf("CreateTable calls that reached the endpoint: %d", len(creates))
	}
	if ct := creates[0].(*dynamodb.CreateTableInput); ct.TableClass != "" || len(ct.Tags) != 0 || ct.DeletionProtectionEnabled != nil || ct.SSESpecification != nil || ct.WarmThroughput != nil {
		t.Errorf("the retried CreateTable still has settings: %+v", ct)
	}
	for _, want := range []string{"was refused", "Time to live (attribute expires_at) not set", "Point-in-time recovery of orders not copied"} {
		if logs.FilterMessageSnippet(want).Len() == 0 {
			t.Errorf("no warning %q; logs: %v", want, logs.All())
		}
	}
}

// createRefusingOnce refuses the first CreateTable with a
// ValidationException, as an endpoint that does not know a parameter.
type createRefusingOnce struct {
	*dynamodb.Client
	refused *int
}

func (c createRefusingOnce) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	if *c.refused == 0 {
		*c.refused++
		return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "unknown parameter TableClass"}
	}
	return c.Client.CreateTable(ctx, in, optFns...)
}
