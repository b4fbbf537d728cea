// Package dynamo is the DynamoDB layer shared by the engines: error
// classification, key schemas and exact key encoding, the capacity
// limiter and the batch writer.
package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"
)

var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"LimitExceededException":                 true,
	"Throttling":                             true,
	"TooManyRequestsException":               true,
}

// IsThrottle reports whether err is DynamoDB (or Streams) throttling.
func IsThrottle(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && throttleCodes[ae.ErrorCode()] {
		return true
	}
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

// IsRetryable reports whether err is worth trying again later: throttling,
// a 5xx or a broken connection, but not a cancelled context.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if IsThrottle(err) {
		return true
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

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
