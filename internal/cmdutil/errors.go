// Package cmdutil holds what every command shares: the factory of
// dependencies, the plan and table flags, and the errors that decide the
// exit code.
package cmdutil

import (
	"context"
	"errors"
	"fmt"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// Exit codes, documented in README.md.
const (
	ExitOK          = 0 // success; diff: in sync, or every difference repaired
	ExitDifferences = 1 // diff found differences that remain
	ExitUsage       = 2 // invalid usage or configuration; nothing read or written
	ExitRuntime     = 3 // runtime failure
	ExitInterrupted = 130
)

// FlagError is a usage error about flags; the usage is printed with it.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// UsageError is invalid configuration found before any work: exit 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef builds a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitError carries an explicit exit code. A nil Err prints nothing (the
// command already reported what happened), like diff's "differences
// remain" exit 1.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode maps an error to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var awe *AWSError
	if errors.As(err, &awe) {
		if awe.Preflight {
			return ExitUsage
		}
		return ExitRuntime
	}
	var fe *FlagError
	var ue *UsageError
	var pe *plan.Error
	var nf *dynamo.NotFoundError
	if errors.As(err, &fe) || errors.As(err, &ue) || errors.As(err, &pe) || errors.As(err, &nf) {
		return ExitUsage
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	return ExitRuntime
}

// IsSilent reports whether err should print no message.
func IsSilent(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && ee.Err == nil
}
