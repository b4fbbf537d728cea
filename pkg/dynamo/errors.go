// Package dynamo is the DynamoDB layer shared by the engines: errors
// that name their table, key schemas and exact key encoding, canonical
// numbers, the capacity limiter and the batch writer. Which errors are
// worth retrying, and the retry loop itself, are package retry's.
package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"
)

// IsNotFound reports whether err says the table (or stream) does not exist.
func IsNotFound(err error) bool {
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return true
	}
	var srnf *streamtypes.ResourceNotFoundException
	return errors.As(err, &srnf)
}

// TableError is a failure that concerns one table. Lost is true when the
// table disappeared during the run (exit 3); a table missing before any
// work is reported by Describe as a usage error instead.
type TableError struct {
	Table string
	Op    string
	Err   error
}

func (e *TableError) Error() string {
	if IsNotFound(e.Err) {
		return fmt.Sprintf("table %s no longer exists (%s failed); the run stopped", e.Table, e.Op)
	}
	return fmt.Sprintf("%s on table %s: %v", e.Op, e.Table, Describe(e.Err))
}

func (e *TableError) Unwrap() error { return e.Err }

// Describe shortens an SDK error to its code and message, leaving out the
// request plumbing ("operation error DynamoDB: Scan, https response error
// StatusCode: 400, RequestID: …").
func Describe(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if ae.ErrorMessage() == "" {
			return ae.ErrorCode()
		}
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}

// NotFoundError is a table or stream missing before any work started: a
// usage error (exit 2).
type NotFoundError struct {
	Table string
	Hint  string
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("table %s does not exist", e.Table)
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

// DescribeAPI is the part of the DynamoDB client DescribeTable needs.
type DescribeAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// DescribeTable describes a table before any work starts: a missing table
// is a *NotFoundError, other failures a *TableError.
func DescribeTable(ctx context.Context, c DescribeAPI, table, hint string) (*types.TableDescription, error) {
	out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		if IsNotFound(err) {
			return nil, &NotFoundError{Table: table, Hint: hint}
		}
		return nil, &TableError{Table: table, Op: "DescribeTable", Err: err}
	}
	return out.Table, nil
}
