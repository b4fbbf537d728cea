package transform

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Spec is what a command or a plan entry asks for: a filter, a transform,
// both or neither.
type Spec struct {
	// Filter is a CEL expression of type bool; "" keeps every item.
	Filter string
	// Transform is nil when the items are written as they are read.
	Transform *Transform
}

// Transform is the content of a --transform file, or of a plan entry's
// transform key. Its steps run in a fixed order whatever the order of
// the keys: the set expressions are evaluated on the input item, then
// the drop patterns remove attributes, then rename renames, then the
// results of set are assigned.
type Transform struct {
	// Set maps an attribute name to a CEL expression evaluated on the
	// input item.
	Set map[string]string
	// Drop lists attribute-name patterns ('*' any run, '?' one character,
	// '\' escapes).
	Drop []string
	// Rename maps an old attribute name to its new one.
	Rename map[string]string

	// lines holds where each entry was in the YAML ("set\x00name",
	// "drop\x00i", "rename\x00name"), to point errors at it.
	lines map[string]int
}

// ParseTransform reads a transform document: a YAML mapping with the
// optional keys set, drop and rename. Unknown keys, duplicate names and
// values of the wrong shape are errors (a *CompileError with the line).
// An empty document is an empty transform.
func ParseTransform(data []byte) (*Transform, error) {
	t := &Transform{}
	if len(bytes.TrimSpace(data)) == 0 {
		return t, nil
	}
	if err := yaml.Unmarshal(data, t); err != nil {
		var ce *CompileError
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, &CompileError{Where: "transform", Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	return t, nil
}

// UnmarshalYAML decodes a transform strictly, so that a plan embedding a
// Transform gets the same checks as ParseTransform.
func (t *Transform) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return yamlError(n, "a transform is a mapping with the keys set, drop and rename")
	}
	t.lines = map[string]int{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return yamlError(k, fmt.Sprintf("key %q appears twice", k.Value))
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "set":
			t.Set, err = t.stringMap("set", v)
		case "rename":
			t.Rename, err = t.stringMap("rename", v)
		case "drop":
			err = t.dropList(v)
		default:
			err = yamlError(k, fmt.Sprintf("unknown key %q (a transform has set, drop and rename)", k.Value))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *Transform) stringMap(key string, n *yaml.Node) (map[string]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, yamlError(n, key+" must be a mapping of attribute names")
	}
	m := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			return nil, yamlError(k, fmt.Sprintf("%s: each entry must be a name and a single value", key))
		}
		if _, dup := m[k.Value]; dup {
			return nil, yamlError(k, fmt.Sprintf("%s: %q appears twice", key, k.Value))
		}
		m[k.Value] = v.Value
		t.lines[key+"\x00"+k.Value] = k.Line
	}
	return m, nil
}

func (t *Transform) dropList(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return yamlError(n, `drop must be a list of patterns, e.g. ["tmp*"]`)
	}
	for i, e := range n.Content {
		if e.Kind != yaml.ScalarNode {
			return yamlError(e, "drop: each pattern must be a string")
		}
		t.Drop = append(t.Drop, e.Value)
		t.lines[fmt.Sprintf("drop\x00%d", i)] = e.Line
	}
	return nil
}

func (t *Transform) line(key string) int {
	if t == nil {
		return 0
	}
	return t.lines[key]
}

func yamlError(n *yaml.Node, msg string) error {
	return &CompileError{Where: "transform", SourceLine: n.Line, Msg: msg}
}
