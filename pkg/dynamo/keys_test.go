package dynamo

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestKeyStringIsExact(t *testing.T) {
	k := KeySchema{Hash: "h", HashType: "B", Range: "r", RangeType: "N"}
	item := func(h []byte, r string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			"h": &types.AttributeValueMemberB{Value: h},
			"r": &types.AttributeValueMemberN{Value: r},
			"x": &types.AttributeValueMemberS{Value: "ignored"},
		}
	}
	a := k.KeyString(item([]byte{0, 1, 2}, "10036651427894288408"))
	if a != k.KeyString(item([]byte{0, 1, 2}, "10036651427894288408")) {
		t.Fatal("equal keys give different strings")
	}
	distinct := []map[string]types.AttributeValue{
		item([]byte{0, 1, 2}, "10036651427894288409"), // beyond 2^53: exact
		item([]byte{0, 1}, "10036651427894288408"),
		item([]byte{0, 1, 2, 0}, "10036651427894288408"),
		item([]byte{}, "10036651427894288408"),
	}
	for _, d := range distinct {
		if k.KeyString(d) == a {
			t.Errorf("distinct key %v encodes like the first", d)
		}
	}
	// A string key and a binary key with the same bytes differ.
	s := KeySchema{Hash: "h", HashType: "S"}
	if s.KeyString(map[string]types.AttributeValue{"h": &types.AttributeValueMemberS{Value: "ab"}}) ==
		s.KeyString(map[string]types.AttributeValue{"h": &types.AttributeValueMemberB{Value: []byte("ab")}}) {
		t.Error("S and B keys with the same bytes encode alike")
	}
	// The boundary between hash and range cannot be shifted.
	if k2 := (KeySchema{Hash: "h", Range: "r"}); k2.KeyString(map[string]types.AttributeValue{
		"h": &types.AttributeValueMemberS{Value: "a\x00"}, "r": &types.AttributeValueMemberS{Value: "b"}}) ==
		k2.KeyString(map[string]types.AttributeValue{
			"h": &types.AttributeValueMemberS{Value: "a"}, "r": &types.AttributeValueMemberS{Value: "\x00b"}}) {
		t.Error("hash/range boundary is ambiguous")
	}
}

func TestKeySchemaOfAndCheck(t *testing.T) {
	desc := &types.TableDescription{
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: "S"},
			{AttributeName: aws.String("sk"), AttributeType: "N"},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: "HASH"},
			{AttributeName: aws.String("sk"), KeyType: "RANGE"},
		},
	}
	k := KeySchemaOf(desc)
	if k.Hash != "pk" || k.HashType != "S" || k.Range != "sk" || k.RangeType != "N" {
		t.Fatalf("KeySchemaOf = %+v", k)
	}
	if err := CheckSameKeys("a", k, "b", k); err != nil {
		t.Fatal(err)
	}
	other := k
	other.RangeType = "S"
	if err := CheckSameKeys("a", k, "b", other); err == nil {
		t.Fatal("different sort key types accepted")
	}
}
