package transform

import (
	"fmt"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// KeySchema is the primary key of the output table: a partition key and an
// optional sort key, with their scalar types (S, N or B).
type KeySchema struct {
	Hash      string
	HashType  types.ScalarAttributeType
	Range     string
	RangeType types.ScalarAttributeType
}

// Names are the key attribute names, partition key first.
func (k KeySchema) Names() []string {
	if k.Range == "" {
		return []string{k.Hash}
	}
	return []string{k.Hash, k.Range}
}

// DynamoDB's limits on key values: a partition key of at most 2048 bytes,
// a sort key of at most 1024.
const (
	maxHashKeyBytes  = 2048
	maxRangeKeyBytes = 1024
)

// CheckKeys checks that an output item carries every key attribute of the
// output table with the right type and a value DynamoDB accepts for a key
// (not empty, within the size limits, a valid number). A violation is an
// *ItemError naming the attribute: the item fails, the run goes on.
func CheckKeys(item map[string]types.AttributeValue, keys KeySchema) error {
	if err := checkKey(item, keys.Hash, keys.HashType, maxHashKeyBytes); err != nil {
		return err
	}
	if keys.Range != "" {
		return checkKey(item, keys.Range, keys.RangeType, maxRangeKeyBytes)
	}
	return nil
}

func checkKey(item map[string]types.AttributeValue, name string, want types.ScalarAttributeType, maxBytes int) error {
	fail := func(format string, args ...any) error {
		return &ItemError{Where: "key", Attr: name, Err: fmt.Errorf(format, args...)}
	}
	av, ok := item[name]
	if !ok {
		return fail("the output item has no key attribute %s", name)
	}
	got := typeName(av)
	if got != string(want) {
		return fail("the key attribute is of type %s, the output table wants %s", got, want)
	}
	size := 0
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		size = len(v.Value)
	case *types.AttributeValueMemberB:
		size = len(v.Value)
	case *types.AttributeValueMemberN:
		if _, err := parseDecimal(v.Value); err != nil {
			return fail("invalid number %q", v.Value)
		}
		return nil
	}
	if size == 0 {
		return fail("a key attribute cannot be empty")
	}
	if size > maxBytes {
		return fail("the key value has %d bytes, more than DynamoDB's %d", size, maxBytes)
	}
	return nil
}

// typeName is the DynamoDB type of an attribute value: S, N, B, BOOL,
// NULL, L, M, SS, NS or BS.
func typeName(av types.AttributeValue) string {
	switch av.(type) {
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberBOOL:
		return "BOOL"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberL:
		return "L"
	case *types.AttributeValueMemberM:
		return "M"
	case *types.AttributeValueMemberSS:
		return "SS"
	case *types.AttributeValueMemberNS:
		return "NS"
	case *types.AttributeValueMemberBS:
		return "BS"
	}
	return fmt.Sprintf("%T", av)
}

// OutputKey computes only the key attributes of the output item an input
// item maps to, and checks them like CheckKeys. It ignores the filter and
// evaluates only the set expressions of key attributes, so it works on an
// image that holds nothing but keys when the output key depends only on
// them (KeyDependsOnlyOn): what the stream needs to delete the output item
// of a REMOVE, or of a change that leaves the filter.
func (p *Program) OutputKey(item map[string]types.AttributeValue, keys KeySchema) (map[string]types.AttributeValue, error) {
	in := newInput(item)
	key := make(map[string]types.AttributeValue, 2)
	for _, name := range keys.Names() {
		av, ok, err := p.outputAttr(in, name)
		if err != nil {
			return nil, err
		}
		if ok {
			key[name] = av
		}
	}
	if err := CheckKeys(key, keys); err != nil {
		return nil, err
	}
	return key, nil
}

// CheckOutputKey is the check at start: it refuses (with a *CompileError)
// a transform that can never produce a key attribute of the output table,
// because it drops it or renames it away and nothing else sets it.
func (p *Program) CheckOutputKey(keys KeySchema) error {
	if !p.transform {
		return nil
	}
	for _, name := range keys.Names() {
		if _, ok := p.setByName[name]; ok {
			continue
		}
		if old, ok := p.renameInto[name]; ok && !p.dropped(old) {
			continue
		}
		if to, ok := p.rename[name]; ok {
			return &CompileError{Where: "rename " + name, Msg: fmt.Sprintf("%s is a key attribute of the output table, and the transform renames it to %s without setting it", name, to)}
		}
		if p.dropped(name) {
			return &CompileError{Where: "drop", Msg: fmt.Sprintf("%s is a key attribute of the output table, and the transform drops it without setting it", name)}
		}
	}
	return nil
}

// KeyDependsOnlyOn reports whether the output key attributes are computed
// from the input key attributes alone: passed through, renamed from one,
// or set by an expression that reads no other attribute of item (has()
// included). When it is false, the stream needs old images to delete the
// output item of a REMOVE: NEW_AND_OLD_IMAGES or OLD_IMAGE.
//
// The answer is conservative: an expression that uses item as a whole
// (size(item), item[name] with a computed name, a macro over item) counts
// as reading every attribute.
func (p *Program) KeyDependsOnlyOn(inputKeyNames, outputKeyNames []string) bool {
	allowed := make(map[string]bool, len(inputKeyNames))
	for _, n := range inputKeyNames {
		allowed[n] = true
	}
	for _, name := range outputKeyNames {
		if !p.keyAttrDependsOnly(name, allowed) {
			return false
		}
	}
	return true
}

func (p *Program) keyAttrDependsOnly(name string, allowed map[string]bool) bool {
	if !p.transform {
		return allowed[name]
	}
	if e, ok := p.setByName[name]; ok {
		if e.copyPath != nil {
			return allowed[e.copyPath[0]]
		}
		return readsOnly(e.ast.NativeRep().Expr(), allowed)
	}
	if old, ok := p.renameInto[name]; ok && !p.dropped(old) {
		// An input key attribute is never absent, so the value is always
		// the renamed one.
		return allowed[old]
	}
	if _, renamed := p.rename[name]; renamed || p.dropped(name) {
		return false
	}
	return allowed[name]
}

// readsOnly reports whether every use of the variable item in e selects
// one of the allowed attributes by a constant name.
func readsOnly(e celast.Expr, allowed map[string]bool) bool {
	switch e.Kind() {
	case celast.IdentKind:
		return e.AsIdent() != "item"
	case celast.LiteralKind:
		return true
	case celast.SelectKind:
		s := e.AsSelect()
		if isItem(s.Operand()) {
			return allowed[s.FieldName()]
		}
		return readsOnly(s.Operand(), allowed)
	case celast.CallKind:
		c := e.AsCall()
		args := c.Args()
		switch c.FunctionName() {
		case operators.Index, operators.OptIndex, operators.OptSelect:
			if len(args) == 2 && isItem(args[0]) {
				name, ok := stringLiteral(args[1])
				return ok && allowed[name]
			}
		}
		if c.IsMemberFunction() && !readsOnly(c.Target(), allowed) {
			return false
		}
		for _, a := range args {
			if !readsOnly(a, allowed) {
				return false
			}
		}
		return true
	case celast.ListKind:
		for _, el := range e.AsList().Elements() {
			if !readsOnly(el, allowed) {
				return false
			}
		}
		return true
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			if !readsOnly(me.Key(), allowed) || !readsOnly(me.Value(), allowed) {
				return false
			}
		}
		return true
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			if !readsOnly(f.AsStructField().Value(), allowed) {
				return false
			}
		}
		return true
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		for _, sub := range []celast.Expr{c.IterRange(), c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result()} {
			if !readsOnly(sub, allowed) {
				return false
			}
		}
		return true
	}
	return false
}

func isItem(e celast.Expr) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == "item"
}
