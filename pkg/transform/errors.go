package transform

import (
	"fmt"
	"strings"
)

// CompileError is a filter or transform that cannot be used: a YAML
// error in the transform, a CEL syntax or type error, a bad glob or
// rename. It is found before any item is read; the command maps it to
// exit status 2.
type CompileError struct {
	// Where names the part of the spec: "filter", "set id2", "drop[0]",
	// "rename qty", or "transform" for the YAML document itself.
	Where string
	// Expr is the expression or pattern at fault ("" for YAML errors).
	Expr string
	// Line and Column locate the error inside Expr, both from 1 (0 when
	// the error has no position).
	Line, Column int
	// SourceLine is the line of the entry in the transform file, when the
	// spec was read from YAML (0 otherwise).
	SourceLine int
	// Msg says what is wrong.
	Msg string
}

func (e *CompileError) Error() string {
	var b strings.Builder
	switch {
	case e.SourceLine > 0 && e.Where == "transform":
		fmt.Fprintf(&b, "transform line %d", e.SourceLine)
	case e.SourceLine > 0:
		fmt.Fprintf(&b, "transform line %d: %s", e.SourceLine, e.Where)
	default:
		b.WriteString(e.Where)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " %d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Expr != "" {
		fmt.Fprintf(&b, " (in %q)", e.Expr)
	}
	return b.String()
}

// ItemError is one item a filter or transform could not process: an
// evaluation error (a missing attribute, a wrong type), a result with no
// DynamoDB form, or an output key that is missing or of the wrong type.
// It fails that item only; the caller logs it with the item's key and
// counts it.
type ItemError struct {
	// Where is "filter", "set", "key" (CheckKeys) or "item" (an input
	// attribute that cannot be read, such as a malformed number).
	Where string
	// Attr is the attribute concerned: the target of a set, the key
	// attribute, or the input attribute ("" for the filter).
	Attr string
	// Expr is the expression that failed, if any.
	Expr string
	Err  error
}

func (e *ItemError) Error() string {
	var b strings.Builder
	b.WriteString(e.Where)
	if e.Attr != "" {
		b.WriteString(" ")
		b.WriteString(e.Attr)
	}
	if e.Expr != "" {
		fmt.Fprintf(&b, " (%s)", e.Expr)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ItemError) Unwrap() error { return e.Err }
