package dynamo

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// KeySchema is a table's primary key: a partition key and an optional
// sort key, with their scalar types (S, N or B).
type KeySchema struct {
	Hash      string
	HashType  types.ScalarAttributeType
	Range     string
	RangeType types.ScalarAttributeType
}

// KeySchemaOf reads the primary key of a table description.
func KeySchemaOf(d *types.TableDescription) KeySchema {
	types := map[string]types.ScalarAttributeType{}
	for _, a := range d.AttributeDefinitions {
		types[*a.AttributeName] = a.AttributeType
	}
	var k KeySchema
	for _, e := range d.KeySchema {
		switch e.KeyType {
		case "HASH":
			k.Hash = *e.AttributeName
			k.HashType = types[k.Hash]
		case "RANGE":
			k.Range = *e.AttributeName
			k.RangeType = types[k.Range]
		}
	}
	return k
}

// Names are the key attribute names, partition key first.
func (k KeySchema) Names() []string {
	if k.Range == "" {
		return []string{k.Hash}
	}
	return []string{k.Hash, k.Range}
}

func (k KeySchema) String() string {
	s := fmt.Sprintf("%s (%s, partition key)", k.Hash, k.HashType)
	if k.Range != "" {
		s += fmt.Sprintf(" + %s (%s, sort key)", k.Range, k.RangeType)
	}
	return s
}

// Key returns the key attributes of an item.
func (k KeySchema) Key(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	key := make(map[string]types.AttributeValue, 2)
	key[k.Hash] = item[k.Hash]
	if k.Range != "" {
		key[k.Range] = item[k.Range]
	}
	return key
}

// CheckSameKeys returns a usage-level error when two tables do not share
// one primary key (names and types).
func CheckSameKeys(inName string, in KeySchema, outName string, out KeySchema) error {
	if in == out {
		return nil
	}
	return fmt.Errorf("key schemas differ: %s has %s but %s has %s; items cannot be copied between them", inName, in, outName, out)
}

// KeyString encodes the key attributes of item exactly (type and raw
// value) as a string usable as a map key: two items have the same
// KeyString if and only if they have the same primary key. Number keys are
// compared by their text as DynamoDB returns it (DynamoDB returns key
// numbers in a canonical form).
func (k KeySchema) KeyString(item map[string]types.AttributeValue) string {
	var b strings.Builder
	appendScalar(&b, item[k.Hash])
	if k.Range != "" {
		b.WriteByte(0)
		appendScalar(&b, item[k.Range])
	}
	return b.String()
}

func appendScalar(b *strings.Builder, v types.AttributeValue) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		b.WriteByte('S')
		writeLen(b, len(v.Value))
		b.WriteString(v.Value)
	case *types.AttributeValueMemberN:
		b.WriteByte('N')
		n := CanonicalNumber(v.Value)
		writeLen(b, len(n))
		b.WriteString(n)
	case *types.AttributeValueMemberB:
		b.WriteByte('B')
		writeLen(b, len(v.Value))
		b.Write(v.Value)
	default:
		b.WriteByte('?')
	}
}

func writeLen(b *strings.Builder, n int) {
	var buf [binary.MaxVarintLen64]byte
	b.Write(buf[:binary.PutUvarint(buf[:], uint64(n))])
}

var seed = maphash.MakeSeed()

// KeyHash hashes the key of an item, for partitioning work by key.
func (k KeySchema) KeyHash(item map[string]types.AttributeValue) uint64 {
	return maphash.String(seed, k.KeyString(item))
}

// FormatKey renders a key for humans and reports: {"id":"abc","n":42}
// style, with binary values in base64.
func (k KeySchema) FormatKey(item map[string]types.AttributeValue) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range k.Names() {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:", name)
		switch v := item[name].(type) {
		case *types.AttributeValueMemberS:
			fmt.Fprintf(&b, "%q", v.Value)
		case *types.AttributeValueMemberN:
			b.WriteString(v.Value)
		case *types.AttributeValueMemberB:
			fmt.Fprintf(&b, "%q", "b64:"+base64.StdEncoding.EncodeToString(v.Value))
		default:
			b.WriteString("null")
		}
	}
	b.WriteByte('}')
	return b.String()
}
