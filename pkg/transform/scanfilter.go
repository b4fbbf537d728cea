package transform

import (
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	celtypes "cel.dev/cel-go/common/types"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
)

// maxExactNeighbour bounds the int literals ScanFilter passes on: below
// 2^52, two doubles within 1 of an integer k are the only ones that can
// round to k, so "between k-1 and k+1" keeps every number CEL could find
// equal to k.
const maxExactNeighbour = 1 << 52

// ScanFilter returns a condition for Scan's FilterExpression that keeps at
// least every item the filter keeps or fails on, so that DynamoDB sends
// fewer items over the network. It is never the filter itself: the scan
// still reads (and is billed for) the whole table, and every item that
// arrives must still go through Apply.
//
// It is built from the conjuncts of the filter (the operands of its
// top-level &&) that are equalities between a top-level attribute and a
// literal, or has() of a top-level attribute; other conjuncts are left
// to the client. ok is false when no conjunct qualifies.
//
//   - item.a == "x" (or true, or false) gives attribute_not_exists(a) OR
//     a = "x": an item without a fails the CEL filter (it is a failed
//     item, reported), so it must reach the client;
//   - item.a == 5 gives attribute_not_exists(a) OR a BETWEEN 4 AND 6,
//     because CEL compares a number with more digits than a double holds
//     through its nearest double (5.00000000000000000001 == 5 is true in
//     CEL, false in DynamoDB); ints of magnitude 2^52 or more are left out;
//   - has(item.a) gives attribute_exists(a).
func (p *Program) ScanFilter() (expression.ConditionBuilder, bool) {
	if p.filter == nil {
		return expression.ConditionBuilder{}, false
	}
	var conds []expression.ConditionBuilder
	for _, c := range conjuncts(p.filter.ast.NativeRep().Expr(), nil) {
		if cb, ok := pushable(c); ok {
			conds = append(conds, cb)
		}
	}
	switch len(conds) {
	case 0:
		return expression.ConditionBuilder{}, false
	case 1:
		return conds[0], true
	default:
		return expression.And(conds[0], conds[1], conds[2:]...), true
	}
}

// conjuncts flattens the top-level && of an expression.
func conjuncts(e celast.Expr, acc []celast.Expr) []celast.Expr {
	if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
		for _, a := range e.AsCall().Args() {
			acc = conjuncts(a, acc)
		}
		return acc
	}
	return append(acc, e)
}

func pushable(e celast.Expr) (expression.ConditionBuilder, bool) {
	switch e.Kind() {
	case celast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() && isItem(s.Operand()) && pushableName(s.FieldName()) {
			return expression.AttributeExists(expression.NameNoDotSplit(s.FieldName())), true
		}
	case celast.CallKind:
		c := e.AsCall()
		if c.FunctionName() != operators.Equals || len(c.Args()) != 2 {
			break
		}
		l, r := c.Args()[0], c.Args()[1]
		if _, ok := topLevelAttr(l); !ok {
			l, r = r, l
		}
		name, ok := topLevelAttr(l)
		if !ok || r.Kind() != celast.LiteralKind {
			break
		}
		n := expression.NameNoDotSplit(name)
		var cond expression.ConditionBuilder
		switch v := r.AsLiteral().(type) {
		case celtypes.String:
			cond = n.Equal(expression.Value(string(v)))
		case celtypes.Bool:
			cond = n.Equal(expression.Value(bool(v)))
		case celtypes.Int:
			k := int64(v)
			if k <= -maxExactNeighbour || k >= maxExactNeighbour {
				return expression.ConditionBuilder{}, false
			}
			cond = n.Between(expression.Value(k-1), expression.Value(k+1))
		default:
			return expression.ConditionBuilder{}, false
		}
		return expression.Or(expression.AttributeNotExists(n), cond), true
	}
	return expression.ConditionBuilder{}, false
}

// topLevelAttr recognises item.a and item["a"].
func topLevelAttr(e celast.Expr) (string, bool) {
	var name string
	switch e.Kind() {
	case celast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() || !isItem(s.Operand()) {
			return "", false
		}
		name = s.FieldName()
	case celast.CallKind:
		c := e.AsCall()
		if c.FunctionName() != operators.Index || len(c.Args()) != 2 || !isItem(c.Args()[0]) {
			return "", false
		}
		s, ok := stringLiteral(c.Args()[1])
		if !ok {
			return "", false
		}
		name = s
	default:
		return "", false
	}
	return name, pushableName(name)
}

// pushableName excludes names the expression builder would read as a
// path (it takes a trailing [n] as a list index).
func pushableName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "[]")
}
