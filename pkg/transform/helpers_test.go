package transform

import (
	"testing"

	celtypes "cel.dev/cel-go/common/types"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func S(s string) types.AttributeValue  { return &types.AttributeValueMemberS{Value: s} }
func N(s string) types.AttributeValue  { return &types.AttributeValueMemberN{Value: s} }
func B(b string) types.AttributeValue  { return &types.AttributeValueMemberB{Value: []byte(b)} }
func BOOL(b bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: b} }
func NULL() types.AttributeValue       { return &types.AttributeValueMemberNULL{Value: true} }
func L(vs ...types.AttributeValue) types.AttributeValue {
	if vs == nil {
		vs = []types.AttributeValue{}
	}
	return &types.AttributeValueMemberL{Value: vs}
}
func M(m map[string]types.AttributeValue) types.AttributeValue {
	return &types.AttributeValueMemberM{Value: m}
}

type item = map[string]types.AttributeValue

// mustCompile compiles a spec whose transform is given as YAML ("" for
// none).
func mustCompile(t *testing.T, filter, transformYAML string) *Program {
	t.Helper()
	spec := Spec{Filter: filter}
	if transformYAML != "" {
		tr, err := ParseTransform([]byte(transformYAML))
		if err != nil {
			t.Fatalf("ParseTransform: %v", err)
		}
		spec.Transform = tr
	}
	p, err := Compile(spec)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func celInt(n int64) celtypes.Int { return celtypes.Int(n) }
