package transform

import (
	"fmt"
	"strconv"

	celtypes "cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// toCEL converts one attribute value: S string, N int or double
// (numberToCEL), B bytes, BOOL bool, NULL null, L list, M map, and the
// sets SS, NS and BS lists of their elements, in the order DynamoDB
// returned them (which is no order a program may rely on).
func toCEL(av types.AttributeValue) (ref.Val, error) {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return celtypes.String(v.Value), nil
	case *types.AttributeValueMemberN:
		return numberToCEL(v.Value)
	case *types.AttributeValueMemberB:
		return celtypes.Bytes(v.Value), nil
	case *types.AttributeValueMemberBOOL:
		return celtypes.Bool(v.Value), nil
	case *types.AttributeValueMemberNULL:
		return celtypes.NullValue, nil
	case *types.AttributeValueMemberL:
		elems := make([]ref.Val, len(v.Value))
		for i, e := range v.Value {
			c, err := toCEL(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			elems[i] = c
		}
		return celtypes.NewRefValList(celtypes.DefaultTypeAdapter, elems), nil
	case *types.AttributeValueMemberM:
		// Converted attribute by attribute when read, like the item.
		return &lazyMap{m: v.Value}, nil
	case *types.AttributeValueMemberSS:
		elems := make([]ref.Val, len(v.Value))
		for i, e := range v.Value {
			elems[i] = celtypes.String(e)
		}
		return celtypes.NewRefValList(celtypes.DefaultTypeAdapter, elems), nil
	case *types.AttributeValueMemberNS:
		elems := make([]ref.Val, len(v.Value))
		for i, e := range v.Value {
			c, err := numberToCEL(e)
			if err != nil {
				return nil, err
			}
			elems[i] = c
		}
		return celtypes.NewRefValList(celtypes.DefaultTypeAdapter, elems), nil
	case *types.AttributeValueMemberBS:
		elems := make([]ref.Val, len(v.Value))
		for i, e := range v.Value {
			elems[i] = celtypes.Bytes(e)
		}
		return celtypes.NewRefValList(celtypes.DefaultTypeAdapter, elems), nil
	case nil:
		return nil, fmt.Errorf("missing value")
	default:
		return nil, fmt.Errorf("unsupported attribute value %T", av)
	}
}

// fromCEL converts the result of an expression back to an attribute value:
// string S, int and uint N (exact), double N (formatDouble; NaN and
// infinities are errors), bytes B, bool BOOL, null NULL, list L (never a
// set), map M (string keys only). Timestamps, durations, types and
// optionals have no attribute form and are errors.
func fromCEL(v ref.Val) (types.AttributeValue, error) {
	switch c := v.(type) {
	case celtypes.String:
		return &types.AttributeValueMemberS{Value: string(c)}, nil
	case celtypes.Int:
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(int64(c), 10)}, nil
	case celtypes.Uint:
		return &types.AttributeValueMemberN{Value: strconv.FormatUint(uint64(c), 10)}, nil
	case celtypes.Double:
		s, err := formatDouble(float64(c))
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberN{Value: s}, nil
	case celtypes.Bytes:
		return &types.AttributeValueMemberB{Value: []byte(c)}, nil
	case celtypes.Bool:
		return &types.AttributeValueMemberBOOL{Value: bool(c)}, nil
	case celtypes.Null:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case *celtypes.Err:
		return nil, c
	case traits.Lister:
		out := []types.AttributeValue{}
		i := 0
		for it := c.Iterator(); it.HasNext() == celtypes.True; i++ {
			e, err := fromCEL(it.Next())
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out = append(out, e)
		}
		return &types.AttributeValueMemberL{Value: out}, nil
	case traits.Mapper:
		out := map[string]types.AttributeValue{}
		for it := c.Iterator(); it.HasNext() == celtypes.True; {
			k := it.Next()
			ks, ok := k.(celtypes.String)
			if !ok {
				return nil, fmt.Errorf("a map stored as an attribute must have string keys, not %s", k.Type().TypeName())
			}
			ev, _ := c.Find(k)
			e, err := fromCEL(ev)
			if err != nil {
				return nil, fmt.Errorf(".%s: %w", string(ks), err)
			}
			out[string(ks)] = e
		}
		return &types.AttributeValueMemberM{Value: out}, nil
	default:
		return nil, fmt.Errorf("a %s value has no DynamoDB form (convert it, e.g. with string())", v.Type().TypeName())
	}
}
