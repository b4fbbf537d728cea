package backfill

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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

// createOutputTable creates the output table from the input's description
// and waits until it is ACTIVE. A table created meanwhile by someone else
// is waited for too.
func createOutputTable(ctx context.Context, c DestAPI, name string, desc *types.TableDescription) (*types.TableDescription, error) {
	_, err := c.CreateTable(ctx, CreateTableInput(name, desc))
	var inUse *types.ResourceInUseException
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
	return out.Table, nil
}
