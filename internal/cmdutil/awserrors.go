package cmdutil

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
)

// AWSErrorKind says what went wrong with AWS in terms a user can act on.
type AWSErrorKind int

// The AWS failures ddbsync explains instead of printing the SDK's chain.
const (
	NoCredentials      AWSErrorKind = iota + 1 // the default chain found nothing
	SSOExpired                                 // the profile's SSO session expired or was never started
	RoleNotAssumed                             // AssumeRole was refused
	InvalidCredentials                         // AWS rejected the keys (unknown, wrong secret, expired session)
	AccessDenied                               // the identity may not call an action on a table
)

// AWSError is an AWS failure explained: what is wrong and what to do.
// Its message names no credential; the SDK's own error stays in Err for
// --log-level debug.
type AWSError struct {
	Kind   AWSErrorKind
	Table  string // the table concerned, when known
	Action string // the IAM action refused (AccessDenied), e.g. dynamodb:DescribeTable
	Detail string // AWS's own message (AccessDenied, AssumeRole)
	// Preflight: met while describing the tables before any work, so
	// nothing was read or written (exit 2).
	Preflight bool
	// Command is the ddbsync command that failed, for the iam-policy hint.
	Command string
	Err     error
}

func (e *AWSError) Error() string {
	on := ""
	if e.Table != "" {
		on = " for table " + e.Table
	}
	switch e.Kind {
	case NoCredentials:
		return "no AWS credentials found" + on + " (tried the environment variables, the profile in ~/.aws/config and ~/.aws/credentials, SSO, and an EC2/ECS instance role).\n" +
			"Run `aws configure` or `aws sso login`, set AWS_PROFILE to a profile with credentials, or pass --endpoint-url to use DynamoDB Local."
	case SSOExpired:
		return "the AWS SSO session" + on + " has expired or was never started.\n" +
			"Run `aws sso login` (with --profile NAME for the profile in use), then run ddbsync again."
	case RoleNotAssumed:
		msg := "cannot assume the IAM role" + on
		if e.Detail != "" {
			msg += ": " + e.Detail
		}
		return msg + ".\nCheck that the role's trust policy allows the identity you run as (`aws sts get-caller-identity`), and the external ID and MFA settings of the role."
	case InvalidCredentials:
		msg := "AWS rejected the credentials in use" + on
		if e.Detail != "" {
			msg += ": " + e.Detail
		}
		return msg + ".\nCheck `aws sts get-caller-identity`; refresh expired session credentials, or pick another profile with AWS_PROFILE or --input-profile/--output-profile."
	case AccessDenied:
		action := e.Action
		if action == "" {
			action = "the request"
		}
		msg := fmt.Sprintf("access denied: %s%s is not allowed", action, strings.Replace(on, " for ", " on ", 1))
		if e.Detail != "" {
			msg += " (" + e.Detail + ")"
		}
		cmd := e.Command
		if cmd == "" {
			cmd = "COMMAND"
		}
		return msg + fmt.Sprintf(".\n`ddbsync iam-policy %s` with the same table flags prints the IAM policy this run needs.", cmd)
	}
	return e.Err.Error()
}

func (e *AWSError) Unwrap() error { return e.Err }

// ExplainAWS returns err as an *AWSError when it is one of the AWS
// failures a user can fix (no credentials, an expired SSO session, a role
// that cannot be assumed, rejected keys, access denied), and err itself
// otherwise. command is the ddbsync command that ran.
func ExplainAWS(err error, command string) error {
	if err == nil {
		return nil
	}
	var already *AWSError
	if errors.As(err, &already) {
		return err
	}
	e := &AWSError{Err: err, Command: command}
	var te *dynamo.TableError
	if errors.As(err, &te) {
		e.Table = te.Table
		e.Preflight = te.Op == "DescribeTable"
	}
	var ae smithy.APIError
	hasAPI := errors.As(err, &ae)
	switch {
	case creds.IsSSOExpired(err):
		e.Kind = SSOExpired
	case creds.IsNoCredentials(err):
		e.Kind = NoCredentials
		// The chain is resolved by the first request of a client, and every
		// command describes its tables before anything else.
		e.Preflight = true
	default:
		if code, msg, ok := creds.RoleFailure(err); ok {
			e.Kind = RoleNotAssumed
			e.Detail = strings.TrimPrefix(code+": "+msg, ": ")
			break
		}
		if !hasAPI {
			return err
		}
		switch ae.ErrorCode() {
		case "AccessDeniedException", "AccessDenied":
			e.Kind = AccessDenied
			e.Detail = ae.ErrorMessage()
			var oe *smithy.OperationError
			if errors.As(err, &oe) && oe.Operation() != "" {
				e.Action = "dynamodb:" + oe.Operation()
			}
		case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch":
			e.Kind = InvalidCredentials
			e.Detail = ae.ErrorCode() + ": " + ae.ErrorMessage()
		default:
			return err
		}
	}
	return e
}
