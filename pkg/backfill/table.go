package backfill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
)

// CreateTableInput builds the CreateTable request that gives a new table
// the shape of desc: key schema, attribute definitions, global and local
// secondary indexes, billing mode and provisioned capacities.
func CreateTableInput(name string, desc *types.TableDescription) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: desc.AttributeDefinitions,
		KeySchema:            desc.KeySchema,
	}
	provisioned := billingMode(desc) == types.BillingModeProvisioned
	if provisioned {
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = throughput(desc.ProvisionedThroughput)
	} else {
		in.BillingMode = types.BillingModePayPerRequest
		if desc.OnDemandThroughput != nil && (desc.OnDemandThroughput.MaxReadRequestUnits != nil || desc.OnDemandThroughput.MaxWriteRequestUnits != nil) {
			in.OnDemandThroughput = desc.OnDemandThroughput
		}
	}
	if desc.TableClassSummary != nil && desc.TableClassSummary.TableClass != "" {
		in.TableClass = desc.TableClassSummary.TableClass
	}
	for _, g := range desc.GlobalSecondaryIndexes {
		gi := types.GlobalSecondaryIndex{
			IndexName:  g.IndexName,
			KeySchema:  g.KeySchema,
			Projection: g.Projection,
		}
		if provisioned {
			gi.ProvisionedThroughput = throughput(g.ProvisionedThroughput)
		} else if g.OnDemandThroughput != nil && (g.OnDemandThroughput.MaxReadRequestUnits != nil || g.OnDemandThroughput.MaxWriteRequestUnits != nil) {
			gi.OnDemandThroughput = g.OnDemandThroughput
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gi)
	}
	for _, l := range desc.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName:  l.IndexName,
			KeySchema:  l.KeySchema,
			Projection: l.Projection,
		})
	}
	return in
}

func billingMode(desc *types.TableDescription) types.BillingMode {
	if desc.BillingModeSummary != nil && desc.BillingModeSummary.BillingMode != "" {
		return desc.BillingModeSummary.BillingMode
	}
	// Tables created before billing modes existed (and some emulators)
	// say nothing: provisioned when they report capacities.
	if pt := desc.ProvisionedThroughput; pt != nil && aws.ToInt64(pt.ReadCapacityUnits) > 0 {
		return types.BillingModeProvisioned
	}
	return types.BillingModePayPerRequest
}

func throughput(d *types.ProvisionedThroughputDescription) *types.ProvisionedThroughput {
	r, w := int64(1), int64(1)
	if d != nil {
		r = max(1, aws.ToInt64(d.ReadCapacityUnits))
		w = max(1, aws.ToInt64(d.WriteCapacityUnits))
	}
	return &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(r), WriteCapacityUnits: aws.Int64(w)}
}

// Warm throughput of a new on-demand table: DynamoDB reports at least
// these for every table, so only a higher figure was set (pre-warmed).
const (
	defaultWarmRead  = 12000
	defaultWarmWrite = 4000
)

// settingsSource is what copying the settings beyond CreateTable's needs
// of the input's client; settingsDest of the output's. *dynamodb.Client
// has both; a client without them gets the keys, indexes and capacities.
type settingsSource interface {
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	DescribeContinuousBackups(ctx context.Context, in *dynamodb.DescribeContinuousBackupsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeContinuousBackupsOutput, error)
	ListTagsOfResource(ctx context.Context, in *dynamodb.ListTagsOfResourceInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ListTagsOfResourceOutput, error)
}

type settingsDest interface {
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	UpdateContinuousBackups(ctx context.Context, in *dynamodb.UpdateContinuousBackupsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateContinuousBackupsOutput, error)
}

// CreateOptions are the settings of a created output table beyond the
// input's description.
type CreateOptions struct {
	// Stream gives the output table the input's stream specification
	// (for a copy that will itself be a source).
	Stream bool
	// Tags are the input's tags (aws: tags, which only AWS sets, are
	// left out).
	Tags []types.Tag
	// Log receives a warning for each setting that is not copied.
	Log *zap.Logger
}

// FullCreateTableInput is CreateTableInput plus the settings CreateTable
// takes besides the shape: table class, deletion protection, tags, warm
// throughput above the defaults, encryption with the AWS managed key when
// the input uses KMS (a customer managed key is not copied: warned), and
// the stream specification when asked.
func FullCreateTableInput(name string, desc *types.TableDescription, o CreateOptions) *dynamodb.CreateTableInput {
	in := CreateTableInput(name, desc)
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	in.DeletionProtectionEnabled = desc.DeletionProtectionEnabled
	for _, t := range o.Tags {
		if !strings.HasPrefix(aws.ToString(t.Key), "aws:") {
			in.Tags = append(in.Tags, t)
		}
	}
	if w := desc.WarmThroughput; w != nil && (aws.ToInt64(w.ReadUnitsPerSecond) > defaultWarmRead || aws.ToInt64(w.WriteUnitsPerSecond) > defaultWarmWrite) {
		in.WarmThroughput = &types.WarmThroughput{ReadUnitsPerSecond: w.ReadUnitsPerSecond, WriteUnitsPerSecond: w.WriteUnitsPerSecond}
	}
	if sse := desc.SSEDescription; sse != nil && sse.SSEType == types.SSETypeKms && (sse.Status == types.SSEStatusEnabled || sse.Status == types.SSEStatusEnabling || sse.Status == types.SSEStatusUpdating) {
		in.SSESpecification = &types.SSESpecification{Enabled: aws.Bool(true), SSEType: types.SSETypeKms}
		log.Warn(fmt.Sprintf("The input table is encrypted with the KMS key %s; the output table %s uses the AWS managed key for DynamoDB (aws/dynamodb): a customer managed key, which may be in another account or region, is not copied. To use it: aws dynamodb update-table --table-name %s --sse-specification Enabled=true,SSEType=KMS,KMSMasterKeyId=KEY", aws.ToString(sse.KMSMasterKeyArn), name, name))
	}
	if o.Stream && desc.StreamSpecification != nil && aws.ToBool(desc.StreamSpecification.StreamEnabled) {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: desc.StreamSpecification.StreamViewType}
	}
	return in
}

// tagsOf returns the input table's tags, or nil with a warning.
func tagsOf(ctx context.Context, src settingsSource, desc *types.TableDescription, log *zap.Logger) []types.Tag {
	if desc.TableArn == nil {
		return nil
	}
	var tags []types.Tag
	in := &dynamodb.ListTagsOfResourceInput{ResourceArn: desc.TableArn}
	for {
		out, err := src.ListTagsOfResource(ctx, in)
		if err != nil {
			log.Warn(fmt.Sprintf("Tags of %s not copied: ListTagsOfResource failed: %s", aws.ToString(desc.TableName), dynamo.Describe(err)))
			return nil
		}
		tags = append(tags, out.Tags...)
		if out.NextToken == nil {
			return tags
		}
		in.NextToken = out.NextToken
	}
}

// createOutputTable creates the output table from the input's description
// with the input's settings (FullCreateTableInput, then time to live and
// point-in-time recovery) and waits until it is ACTIVE. A table created
// meanwhile by someone else is waited for too. A setting the endpoint
// cannot hold is warned about and left out: it never fails the copy.
func createOutputTable(ctx context.Context, src any, c DestAPI, name string, desc *types.TableDescription, o CreateOptions) (*types.TableDescription, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	ss, copySettings := src.(settingsSource)
	if copySettings {
		o.Tags = tagsOf(ctx, ss, desc, o.Log)
	}
	in := FullCreateTableInput(name, desc, o)
	_, err := c.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) && isRejectedSetting(err) {
		// An endpoint that does not know a setting (an older emulator):
		// the shape alone.
		o.Log.Warn(fmt.Sprintf("CreateTable with the input's settings (table class, deletion protection, tags, warm throughput, encryption, stream) was refused (%s): creating %s with keys, indexes and capacities only", dynamo.Describe(err), name))
		shape := CreateTableInput(name, desc)
		shape.TableClass = ""
		_, err = c.CreateTable(ctx, shape)
	}
	if err != nil && !errors.As(err, &inUse) {
		return nil, &dynamo.TableError{Table: name, Op: "CreateTable", Err: err}
	}
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 200 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	out, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Minute)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &dynamo.TableError{Table: name, Op: "waiting for the new table to become ACTIVE", Err: err}
	}
	if copySettings {
		if sd, ok := c.(settingsDest); ok {
			copyTTL(ctx, ss, sd, desc, name, o.Log)
			copyPITR(ctx, ss, sd, desc, name, o.Log)
		}
	}
	return out.Table, nil
}

// isRejectedSetting reports whether CreateTable was refused for a
// parameter the endpoint does not support.
func isRejectedSetting(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ValidationException", "UnknownOperationException", "SerializationException":
		return true
	}
	return false
}

func copyTTL(ctx context.Context, src settingsSource, dst settingsDest, desc *types.TableDescription, name string, log *zap.Logger) {
	out, err := src.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: desc.TableName})
	if err != nil {
		log.Warn(fmt.Sprintf("Time to live of %s not copied: DescribeTimeToLive failed: %s", aws.ToString(desc.TableName), dynamo.Describe(err)))
		return
	}
	d := out.TimeToLiveDescription
	if d == nil || (d.TimeToLiveStatus != types.TimeToLiveStatusEnabled && d.TimeToLiveStatus != types.TimeToLiveStatusEnabling) || d.AttributeName == nil {
		return
	}
	_, err = dst.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{Enabled: aws.Bool(true), AttributeName: d.AttributeName},
	})
	if err != nil {
		log.Warn(fmt.Sprintf("Time to live (attribute %s) not set on %s: UpdateTimeToLive failed: %s", aws.ToString(d.AttributeName), name, dynamo.Describe(err)))
	}
}

func copyPITR(ctx context.Context, src settingsSource, dst settingsDest, desc *types.TableDescription, name string, log *zap.Logger) {
	out, err := src.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: desc.TableName})
	if err != nil {
		log.Warn(fmt.Sprintf("Point-in-time recovery of %s not copied: DescribeContinuousBackups failed: %s", aws.ToString(desc.TableName), dynamo.Describe(err)))
		return
	}
	cb := out.ContinuousBackupsDescription
	if cb == nil || cb.PointInTimeRecoveryDescription == nil || cb.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus != types.PointInTimeRecoveryStatusEnabled {
		return
	}
	_, err = dst.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
		TableName: aws.String(name),
		PointInTimeRecoverySpecification: &types.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: aws.Bool(true),
			RecoveryPeriodInDays:       cb.PointInTimeRecoveryDescription.RecoveryPeriodInDays,
		},
	})
	if err != nil {
		log.Warn(fmt.Sprintf("Point-in-time recovery not enabled on %s: UpdateContinuousBackups failed: %s", name, dynamo.Describe(err)))
	}
}
