package transform

import (
	"fmt"
	"reflect"

	celtypes "cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// lazyMap is an item (or a map attribute) as CEL sees it, converted one
// attribute at a time when an expression reads it: a filter that reads
// two attributes of a forty-attribute item converts two. Operations that
// need the whole map (iteration, equality, conversion) convert it once.
// A lazyMap belongs to one evaluation of one item: it is not safe for
// concurrent use.
type lazyMap struct {
	m map[string]types.AttributeValue
	// bad is the first attribute that could not be converted (a
	// malformed number, which DynamoDB never returns), reported as the
	// item's error rather than the expression's.
	bad *ItemError
	// top is true for the item itself (bad then names the attribute).
	top  bool
	full ref.Val
}

var (
	_ ref.Val       = (*lazyMap)(nil)
	_ traits.Mapper = (*lazyMap)(nil)
)

// Find implements traits.Mapper: the attribute named by key, converted.
func (l *lazyMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(celtypes.String)
	if !ok {
		return nil, false
	}
	av, ok := l.m[string(k)]
	if !ok {
		return nil, false
	}
	v, err := toCEL(av)
	if err != nil {
		if l.top && l.bad == nil {
			l.bad = &ItemError{Where: "item", Attr: string(k), Err: err}
		}
		return celtypes.WrapErr(fmt.Errorf("%s: %w", string(k), err)), true
	}
	return v, true
}

// Get implements traits.Indexer.
func (l *lazyMap) Get(key ref.Val) ref.Val {
	v, found := l.Find(key)
	if !found {
		return celtypes.NewErr("no such key: %v", key)
	}
	return v
}

// Contains implements traits.Container.
func (l *lazyMap) Contains(key ref.Val) ref.Val {
	k, ok := key.(celtypes.String)
	if !ok {
		return celtypes.False
	}
	_, found := l.m[string(k)]
	return celtypes.Bool(found)
}

// Size implements traits.Sizer.
func (l *lazyMap) Size() ref.Val { return celtypes.Int(len(l.m)) }

// whole converts every attribute, once.
func (l *lazyMap) whole() ref.Val {
	if l.full == nil {
		m := make(map[ref.Val]ref.Val, len(l.m))
		for name, av := range l.m {
			v, err := toCEL(av)
			if err != nil {
				if l.top && l.bad == nil {
					l.bad = &ItemError{Where: "item", Attr: name, Err: err}
				}
				l.full = celtypes.WrapErr(fmt.Errorf("%s: %w", name, err))
				return l.full
			}
			m[celtypes.String(name)] = v
		}
		l.full = celtypes.NewRefValMap(celtypes.DefaultTypeAdapter, m)
	}
	return l.full
}

// Iterator implements traits.Iterable.
func (l *lazyMap) Iterator() traits.Iterator {
	if m, ok := l.whole().(traits.Mapper); ok {
		return m.Iterator()
	}
	return celtypes.NewStringList(celtypes.DefaultTypeAdapter, nil).Iterator()
}

// ConvertToNative implements ref.Val.
func (l *lazyMap) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return l.whole().ConvertToNative(typeDesc)
}

// ConvertToType implements ref.Val.
func (l *lazyMap) ConvertToType(typeVal ref.Type) ref.Val {
	switch typeVal {
	case celtypes.MapType:
		return l
	case celtypes.TypeType:
		return celtypes.MapType
	}
	return l.whole().ConvertToType(typeVal)
}

// Equal implements ref.Val.
func (l *lazyMap) Equal(other ref.Val) ref.Val { return l.whole().Equal(other) }

// Type implements ref.Val.
func (l *lazyMap) Type() ref.Type { return celtypes.MapType }

// Value implements ref.Val.
func (l *lazyMap) Value() any { return l.m }

// ResolveName implements interpreter.Activation for the input item: the
// one variable, item.
func (in *input) ResolveName(name string) (any, bool) {
	if name == "item" {
		return &in.lazy, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (in *input) Parent() interpreter.Activation { return nil }
