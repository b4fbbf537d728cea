package diff

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
)

// FormatKeyJSON renders key attributes (scalars: S, N, B) as DynamoDB
// JSON, {"pk":{"S":"abc"},"sk":{"N":"42"}}, names sorted. It is exact
// (binary in base64, numbers as text) and is what --starting-key takes
// and the report writes.
func FormatKeyJSON(key map[string]types.AttributeValue) string {
	names := make([]string, 0, len(key))
	for n := range key {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		nb, _ := json.Marshal(n)
		b.Write(nb)
		b.WriteByte(':')
		var typ, val string
		switch v := key[n].(type) {
		case *types.AttributeValueMemberS:
			typ, val = "S", v.Value
		case *types.AttributeValueMemberN:
			typ, val = "N", v.Value
		case *types.AttributeValueMemberB:
			typ, val = "B", base64.StdEncoding.EncodeToString(v.Value)
		default:
			b.WriteString("null")
			continue
		}
		vb, _ := json.Marshal(val)
		fmt.Fprintf(&b, `{"%s":%s}`, typ, vb)
	}
	b.WriteByte('}')
	return b.String()
}

// keyJSON is FormatKeyJSON as a json.RawMessage, for reports.
func keyJSON(key map[string]types.AttributeValue) json.RawMessage {
	return json.RawMessage(FormatKeyJSON(key))
}

// ParseKeyJSON parses a key in DynamoDB JSON, as FormatKeyJSON writes it:
// {"pk":{"S":"abc"}}, {"id":{"N":"10036651427894288409"}} or
// {"id":{"B":"AAEC"}} (base64).
func ParseKeyJSON(s string) (map[string]types.AttributeValue, error) {
	var raw map[string]map[string]string
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not a key in DynamoDB JSON (expected e.g. {\"pk\":{\"S\":\"abc\"},\"sk\":{\"N\":\"42\"}}): %v", err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("the key is empty: expected e.g. {\"pk\":{\"S\":\"abc\"}}")
	}
	key := make(map[string]types.AttributeValue, len(raw))
	for name, tv := range raw {
		if len(tv) != 1 {
			return nil, fmt.Errorf("attribute %q: expected exactly one of {\"S\":…}, {\"N\":…} or {\"B\":…}", name)
		}
		for typ, val := range tv {
			switch typ {
			case "S":
				key[name] = &types.AttributeValueMemberS{Value: val}
			case "N":
				if _, ok := new(big.Rat).SetString(val); !ok {
					return nil, fmt.Errorf("attribute %q: %q is not a number", name, val)
				}
				key[name] = &types.AttributeValueMemberN{Value: val}
			case "B":
				b, err := base64.StdEncoding.DecodeString(val)
				if err != nil {
					return nil, fmt.Errorf("attribute %q: binary value is not base64: %v", name, err)
				}
				key[name] = &types.AttributeValueMemberB{Value: b}
			default:
				return nil, fmt.Errorf("attribute %q: type %q is not a key type (S, N or B)", name, typ)
			}
		}
	}
	return key, nil
}

// checkKey verifies that key holds exactly the key attributes of ks, with
// their types.
func checkKey(key map[string]types.AttributeValue, ks dynamo.KeySchema) error {
	want := map[string]types.ScalarAttributeType{ks.Hash: ks.HashType}
	if ks.Range != "" {
		want[ks.Range] = ks.RangeType
	}
	if len(key) != len(want) {
		return fmt.Errorf("it must name exactly the table's key attributes: %s", ks)
	}
	for name, typ := range want {
		v, ok := key[name]
		if !ok {
			return fmt.Errorf("it lacks key attribute %q; the table's key is %s", name, ks)
		}
		var got types.ScalarAttributeType
		switch v.(type) {
		case *types.AttributeValueMemberS:
			got = types.ScalarAttributeTypeS
		case *types.AttributeValueMemberN:
			got = types.ScalarAttributeTypeN
		case *types.AttributeValueMemberB:
			got = types.ScalarAttributeTypeB
		}
		if got != typ {
			return fmt.Errorf("key attribute %q is of type %s, not %s", name, typ, got)
		}
	}
	return nil
}
