package diff

import (
	"bytes"
	"path"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
)

// Matcher decides which attributes are left out of comparisons: exact
// names and glob patterns (path.Match syntax, e.g. "aws:rep:*").
type Matcher struct {
	exact map[string]bool
	globs []string
}

// NewMatcher builds a Matcher. It fails on a malformed glob.
func NewMatcher(patterns []string) (*Matcher, error) {
	m := &Matcher{exact: map[string]bool{}}
	for _, p := range patterns {
		if !strings.ContainsAny(p, `*?[\`) {
			m.exact[p] = true
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, err
		}
		m.globs = append(m.globs, p)
	}
	return m, nil
}

// Ignored reports whether the attribute name is left out. A nil Matcher
// ignores nothing.
func (m *Matcher) Ignored(name string) bool {
	if m == nil {
		return false
	}
	if m.exact[name] {
		return true
	}
	for _, g := range m.globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// Empty reports whether the matcher ignores nothing.
func (m *Matcher) Empty() bool { return m == nil || (len(m.exact) == 0 && len(m.globs) == 0) }

// Compare returns the sorted names of the top-level attributes in which
// the master and slave items differ, leaving out ignored attributes. Nil
// means the items are equal. Equality is semantic: attribute order never
// matters, numbers compare by exact decimal value, sets compare as sets,
// maps and lists deeply.
func Compare(master, slave map[string]types.AttributeValue, ignore *Matcher) []string {
	var diffs []string
	for name, mv := range master {
		if ignore.Ignored(name) {
			continue
		}
		sv, ok := slave[name]
		if !ok || !Equal(mv, sv) {
			diffs = append(diffs, name)
		}
	}
	for name := range slave {
		if _, ok := master[name]; ok || ignore.Ignored(name) {
			continue
		}
		diffs = append(diffs, name)
	}
	sort.Strings(diffs)
	return diffs
}

// Equal reports whether two attribute values are semantically equal.
func Equal(a, b types.AttributeValue) bool {
	switch x := a.(type) {
	case *types.AttributeValueMemberS:
		y, ok := b.(*types.AttributeValueMemberS)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberN:
		y, ok := b.(*types.AttributeValueMemberN)
		return ok && numEqual(x.Value, y.Value)
	case *types.AttributeValueMemberB:
		y, ok := b.(*types.AttributeValueMemberB)
		return ok && bytes.Equal(x.Value, y.Value)
	case *types.AttributeValueMemberBOOL:
		y, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberNULL:
		y, ok := b.(*types.AttributeValueMemberNULL)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberSS:
		y, ok := b.(*types.AttributeValueMemberSS)
		return ok && setEqual(x.Value, y.Value, func(s string) string { return s })
	case *types.AttributeValueMemberNS:
		y, ok := b.(*types.AttributeValueMemberNS)
		return ok && setEqual(x.Value, y.Value, dynamo.CanonicalNumber)
	case *types.AttributeValueMemberBS:
		y, ok := b.(*types.AttributeValueMemberBS)
		return ok && setEqual(x.Value, y.Value, func(b []byte) string { return string(b) })
	case *types.AttributeValueMemberL:
		y, ok := b.(*types.AttributeValueMemberL)
		if !ok || len(x.Value) != len(y.Value) {
			return false
		}
		for i := range x.Value {
			if !Equal(x.Value[i], y.Value[i]) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberM:
		y, ok := b.(*types.AttributeValueMemberM)
		if !ok || len(x.Value) != len(y.Value) {
			return false
		}
		for k, xv := range x.Value {
			yv, ok := y.Value[k]
			if !ok || !Equal(xv, yv) {
				return false
			}
		}
		return true
	}
	// Unknown union members (a newer SDK): compare by type only is not
	// safe, so call them different.
	return false
}

func numEqual(a, b string) bool {
	return a == b || dynamo.CanonicalNumber(a) == dynamo.CanonicalNumber(b)
}

// setEqual compares two sets given as slices, by the canonical form of
// their elements; order and duplicates do not matter.
func setEqual[T any](a, b []T, canon func(T) string) bool {
	if len(a) == len(b) {
		same := true
		for i := range a {
			if canon(a[i]) != canon(b[i]) {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	as := make(map[string]struct{}, len(a))
	for _, v := range a {
		as[canon(v)] = struct{}{}
	}
	bs := make(map[string]struct{}, len(b))
	for _, v := range b {
		c := canon(v)
		if _, ok := as[c]; !ok {
			return false
		}
		bs[c] = struct{}{}
	}
	return len(as) == len(bs)
}
