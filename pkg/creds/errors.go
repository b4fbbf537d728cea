package creds

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"
	"github.com/aws/smithy-go"
)

// Classifiers of the SDK's credential failures. They look through the
// whole chain of wrapped errors, since the SDK nests them deeply
// ("operation error DynamoDB: DescribeTable, get identity: get
// credentials: failed to refresh cached credentials, no EC2 IMDS role
// found, operation error ec2imds: GetMetadata, …").

// walk calls visit for err and every error it wraps, depth first, until
// visit returns true.
func walk(err error, visit func(error) bool) bool {
	for err != nil {
		if visit(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walk(e, visit) {
					return true
				}
			}
			return false
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return false
		}
	}
	return false
}

// operations returns the AWS operations in err's chain, outermost first.
func operations(err error) []*smithy.OperationError {
	var ops []*smithy.OperationError
	walk(err, func(e error) bool {
		if oe, ok := e.(*smithy.OperationError); ok {
			ops = append(ops, oe)
		}
		return false
	})
	return ops
}

// IsNoCredentials reports whether err says that the default credential
// chain found no credentials: it went through the environment, the
// shared files and SSO and ended at the instance role, which is not there
// (not on EC2 or ECS, IMDS disabled or unreachable).
func IsNoCredentials(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	for _, op := range operations(err) {
		if op.Service() == "ec2imds" {
			return true
		}
	}
	return walk(err, func(e error) bool {
		return strings.HasPrefix(e.Error(), "no EC2 IMDS role found")
	})
}

// IsSSOExpired reports whether err says that the SSO session of the
// profile has expired, was never started (`aws sso login`), or was
// refused by the SSO service.
func IsSSOExpired(err error) bool {
	if err == nil {
		return false
	}
	var ite *ssocreds.InvalidTokenError
	if errors.As(err, &ite) {
		return true
	}
	for _, op := range operations(err) {
		if op.Service() == "SSO" || op.Service() == "SSO OIDC" {
			var ae smithy.APIError
			if errors.As(op.Err, &ae) {
				switch ae.ErrorCode() {
				case "UnauthorizedException", "InvalidGrantException", "ExpiredTokenException", "AccessDeniedException":
					return true
				}
			}
		}
	}
	return walk(err, func(e error) bool {
		msg := e.Error()
		return strings.HasPrefix(msg, "refresh cached SSO token failed") ||
			strings.HasPrefix(msg, "cached SSO token is expired") ||
			strings.HasPrefix(msg, "failed to read cached SSO token file")
	})
}

// RoleFailure returns AWS's answer when err is a refused AssumeRole (or
// AssumeRoleWithWebIdentity): the error code and message, which name the
// caller and the role but no credential.
func RoleFailure(err error) (code, msg string, ok bool) {
	var rerr *roleError
	if errors.As(err, &rerr) {
		var ae smithy.APIError
		if errors.As(rerr.err, &ae) {
			return ae.ErrorCode(), ae.ErrorMessage(), true
		}
	}
	for _, op := range operations(err) {
		if op.Service() == "STS" && strings.HasPrefix(op.Operation(), "AssumeRole") {
			var ae smithy.APIError
			if errors.As(op.Err, &ae) {
				return ae.ErrorCode(), ae.ErrorMessage(), true
			}
			return "", op.Err.Error(), true
		}
	}
	return "", "", false
}

// localFallback answers with placeholder credentials when the default
// chain finds none, for clients of an explicit endpoint: DynamoDB Local
// and most DynamoDB-compatible servers check no signature, so a user
// trying ddbsync against one needs no AWS account. Credentials that are
// found are used as they are.
type localFallback struct{ next aws.CredentialsProvider }

// LocalCredentials are the placeholder credentials of an explicit
// endpoint when no real ones are found (letters only: DynamoDB Local
// refuses access key IDs with other characters).
var LocalCredentials = aws.Credentials{AccessKeyID: "ddbsynclocal", SecretAccessKey: "ddbsynclocal", Source: "ddbsync: placeholder for an explicit endpoint"}

func (l localFallback) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := l.next.Retrieve(ctx)
	if err != nil && IsNoCredentials(err) {
		return LocalCredentials, nil
	}
	return c, err
}
