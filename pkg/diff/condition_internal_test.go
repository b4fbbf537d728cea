package diff

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestConditionNamesAreExact: a repair's condition names every attribute
// by a placeholder for its whole name, whatever characters it holds (the
// SDK's expression builder would read "a[1]" as an index into a list a,
// and "a.b" as a path).
func TestConditionNamesAreExact(t *testing.T) {
	it := item{
		"a[1]": &types.AttributeValueMemberS{Value: "x"},
		"a.b":  &types.AttributeValueMemberN{Value: "1"},
		"#c":   &types.AttributeValueMemberNULL{Value: true},
	}
	c, err := itemCondition(it)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for ph, name := range c.names {
		if !strings.HasPrefix(ph, "#a") || !strings.Contains(c.expr, ph) {
			t.Errorf("placeholder %q for %q is not in %q", ph, name, c.expr)
		}
		got[name] = true
	}
	for name := range it {
		if !got[name] {
			t.Errorf("attribute %q is not named exactly; names %v", name, c.names)
		}
	}
	if strings.ContainsAny(c.expr, "[.") {
		t.Errorf("the expression %q holds a path or an index", c.expr)
	}
}
