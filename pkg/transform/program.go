package transform

import (
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	celtypes "cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Program is a compiled Spec. It is immutable, and safe for concurrent use
// by any number of goroutines.
type Program struct {
	filter *expr
	// sets are sorted by target name, so errors come in a stable order.
	sets      []*expr
	setByName map[string]*expr
	drop      []string
	// rename maps old → new; renameInto new → old.
	rename     map[string]string
	renameInto map[string]string
	// transform is false for a filter-only (or empty) spec: Apply then
	// returns the input map itself.
	transform bool
}

// expr is one compiled CEL expression.
type expr struct {
	where string // "filter" or "set"
	attr  string // the target of a set
	text  string
	ast   *cel.Ast
	prg   cel.Program
	// copyPath is set when the expression only selects an attribute
	// (item.a, item["a"], item.a.b): Apply then copies the attribute
	// value itself, so a copied number keeps its digits and a copied
	// set stays a set.
	copyPath []string
}

// newEnv is the CEL environment every expression is compiled in: one
// variable, item, a map from attribute names to values of any type; the
// optional syntax (item.?a.orValue(0)); the string and encoder extensions
// Kubernetes also offers; and comparisons between ints and doubles
// (item.qty > 1.5 with an integral qty).
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("item", cel.MapType(cel.StringType, cel.DynType)),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		ext.Strings(),
		ext.Encoders(),
	)
}

// Compile parses and type-checks every expression of a spec, checks the
// drop patterns and renames, and returns the program the engines apply to
// each item. All errors are *CompileError.
func Compile(spec Spec) (*Program, error) {
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("transform: CEL environment: %w", err)
	}
	p := &Program{setByName: map[string]*expr{}, rename: map[string]string{}, renameInto: map[string]string{}}
	if strings.TrimSpace(spec.Filter) != "" {
		e, err := compileExpr(env, "filter", "", spec.Filter, 0)
		if err != nil {
			return nil, err
		}
		if t := e.ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
			return nil, &CompileError{Where: "filter", Expr: spec.Filter, Msg: fmt.Sprintf("a filter must be a bool expression, this one is a %s", t)}
		}
		p.filter = e
	}
	t := spec.Transform
	if t == nil {
		return p, nil
	}
	p.transform = true
	for _, name := range sortedKeys(t.Set) {
		line := t.line("set\x00" + name)
		if name == "" {
			return nil, &CompileError{Where: "set", SourceLine: line, Msg: "empty attribute name"}
		}
		e, err := compileExpr(env, "set", name, t.Set[name], line)
		if err != nil {
			return nil, err
		}
		switch ot := e.ast.OutputType(); {
		case ot.IsExactType(cel.TimestampType), ot.IsExactType(cel.DurationType), ot.Kind() == celtypes.TypeKind:
			return nil, &CompileError{Where: "set " + name, Expr: e.text, SourceLine: line,
				Msg: fmt.Sprintf("a %s has no DynamoDB form: convert it, e.g. with string()", ot)}
		}
		p.sets = append(p.sets, e)
		p.setByName[name] = e
	}
	for i, pat := range t.Drop {
		if err := checkGlob(pat); err != nil {
			return nil, &CompileError{Where: fmt.Sprintf("drop[%d]", i), Expr: pat, SourceLine: t.line(fmt.Sprintf("drop\x00%d", i)), Msg: err.Error()}
		}
		p.drop = append(p.drop, pat)
	}
	for _, old := range sortedKeys(t.Rename) {
		to := t.Rename[old]
		line := t.line("rename\x00" + old)
		if old == "" || to == "" {
			return nil, &CompileError{Where: "rename " + old, SourceLine: line, Msg: "empty attribute name"}
		}
		if prev, dup := p.renameInto[to]; dup {
			return nil, &CompileError{Where: "rename " + old, SourceLine: line,
				Msg: fmt.Sprintf("%q and %q are both renamed to %q", prev, old, to)}
		}
		p.rename[old] = to
		p.renameInto[to] = old
	}
	return p, nil
}

// compileExpr compiles one expression, turning the first issue into a
// CompileError with its position.
func compileExpr(env *cel.Env, where, attr, text string, sourceLine int) (*expr, error) {
	label := where
	if attr != "" {
		label += " " + attr
	}
	if strings.TrimSpace(text) == "" {
		return nil, &CompileError{Where: label, SourceLine: sourceLine, Msg: "empty expression"}
	}
	ast, iss := env.Compile(text)
	if iss != nil && iss.Err() != nil {
		errs := iss.Errors()
		ce := &CompileError{Where: label, Expr: text, SourceLine: sourceLine, Msg: iss.Err().Error()}
		if len(errs) > 0 {
			first := errs[0]
			ce.Msg = first.Message
			if len(errs) > 1 {
				ce.Msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
			}
			if l := first.Location; l != nil && l.Line() > 0 {
				ce.Line, ce.Column = l.Line(), l.Column()+1
			}
		}
		return nil, ce
	}
	prg, err := env.Program(ast)
	if err != nil {
		return nil, &CompileError{Where: label, Expr: text, SourceLine: sourceLine, Msg: err.Error()}
	}
	e := &expr{where: where, attr: attr, text: text, ast: ast, prg: prg}
	e.copyPath = selectPath(ast.NativeRep().Expr())
	return e, nil
}

// selectPath returns the attribute path of an expression that only selects
// from item (item.a, item["a-b"], item.a.b), or nil.
func selectPath(e celast.Expr) []string {
	var rev []string
	for {
		switch e.Kind() {
		case celast.IdentKind:
			if e.AsIdent() != "item" || len(rev) == 0 {
				return nil
			}
			path := make([]string, len(rev))
			for i, name := range rev {
				path[len(rev)-1-i] = name
			}
			return path
		case celast.SelectKind:
			s := e.AsSelect()
			if s.IsTestOnly() {
				return nil
			}
			rev = append(rev, s.FieldName())
			e = s.Operand()
		case celast.CallKind:
			c := e.AsCall()
			if c.FunctionName() != operators.Index || len(c.Args()) != 2 {
				return nil
			}
			name, ok := stringLiteral(c.Args()[1])
			if !ok {
				return nil
			}
			rev = append(rev, name)
			e = c.Args()[0]
		default:
			return nil
		}
	}
}

func stringLiteral(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(celtypes.String)
	return string(s), ok
}

// input is one item being evaluated. It is the expressions' activation:
// they see the item as item, a lazyMap that converts the attributes they
// read, when they read them.
type input struct {
	item map[string]types.AttributeValue
	lazy lazyMap
}

func newInput(item map[string]types.AttributeValue) *input {
	return &input{item: item, lazy: lazyMap{m: item, top: true}}
}

// eval runs the expression on the item. For a set, a result of
// optional.none() is reported as absent (nil, nil).
func (e *expr) eval(in *input) (ref.Val, error) {
	v, _, err := e.prg.Eval(in)
	if in.lazy.bad != nil {
		return nil, in.lazy.bad
	}
	if err != nil {
		return nil, &ItemError{Where: e.where, Attr: e.attr, Expr: e.text, Err: err}
	}
	return v, nil
}

// value computes the attribute value a set assigns: nil when the
// expression gave optional.none() (the attribute is then absent).
func (e *expr) value(in *input) (types.AttributeValue, error) {
	if e.copyPath != nil {
		av, err := lookup(in.item, e.copyPath)
		if err != nil {
			return nil, &ItemError{Where: e.where, Attr: e.attr, Expr: e.text, Err: err}
		}
		return av, nil
	}
	v, err := e.eval(in)
	if err != nil {
		return nil, err
	}
	if o, ok := v.(*celtypes.Optional); ok {
		if !o.HasValue() {
			return nil, nil
		}
		v = o.GetValue()
	}
	av, err := fromCEL(v)
	if err != nil {
		return nil, &ItemError{Where: e.where, Attr: e.attr, Expr: e.text, Err: err}
	}
	return av, nil
}

// lookup follows an attribute path through maps, with CEL's messages for
// what is missing.
func lookup(item map[string]types.AttributeValue, path []string) (types.AttributeValue, error) {
	m := item
	for i, name := range path {
		av, ok := m[name]
		if !ok {
			return nil, fmt.Errorf("no such key: %s", name)
		}
		if i == len(path)-1 {
			return av, nil
		}
		next, ok := av.(*types.AttributeValueMemberM)
		if !ok {
			return nil, fmt.Errorf("item.%s is not a map", strings.Join(path[:i+1], "."))
		}
		m = next.Value
	}
	return nil, fmt.Errorf("empty path")
}

// Filter reports whether an item passes the filter (true when there is
// none). An evaluation error, or a result that is not a bool, is an
// *ItemError.
func (p *Program) Filter(item map[string]types.AttributeValue) (bool, error) {
	return p.filterItem(newInput(item))
}

func (p *Program) filterItem(in *input) (bool, error) {
	if p.filter == nil {
		return true, nil
	}
	v, err := p.filter.eval(in)
	if err != nil {
		return false, err
	}
	b, ok := v.(celtypes.Bool)
	if !ok {
		return false, &ItemError{Where: "filter", Expr: p.filter.text, Err: fmt.Errorf("the result is a %s, not a bool", v.Type().TypeName())}
	}
	return bool(b), nil
}

// HasFilter reports whether the spec has a filter.
func (p *Program) HasFilter() bool { return p.filter != nil }

// HasTransform reports whether the spec has a transform (possibly empty).
func (p *Program) HasTransform() bool { return p.transform }

// Apply filters an item and transforms it. keep is false when the filter
// rejects it (out is then nil). Without a transform, out is the input map
// itself; with one, out is a new map in which every attribute no step
// touched is the very same AttributeValue as in the input, so numbers keep
// their digits and sets stay sets. Neither map may be modified while the
// other is in use. An evaluation error is an *ItemError.
func (p *Program) Apply(item map[string]types.AttributeValue) (out map[string]types.AttributeValue, keep bool, err error) {
	in := newInput(item)
	keep, err = p.filterItem(in)
	if err != nil || !keep {
		return nil, false, err
	}
	if !p.transform {
		return item, true, nil
	}
	out, err = p.transformItem(in)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// Transform applies the transform alone, without the filter: what the
// stream needs to find the output item of a change the filter rejects.
func (p *Program) Transform(item map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	if !p.transform {
		return item, nil
	}
	return p.transformItem(newInput(item))
}

func (p *Program) transformItem(in *input) (map[string]types.AttributeValue, error) {
	// 1. set: every expression sees the input item.
	vals := make([]types.AttributeValue, len(p.sets))
	for i, e := range p.sets {
		v, err := e.value(in)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	out := make(map[string]types.AttributeValue, len(in.item)+len(p.sets))
	// 2. drop, and 3. rename, all renames at once (a→b, b→a swaps).
	for name, av := range in.item {
		if p.dropped(name) {
			continue
		}
		if _, renamed := p.rename[name]; renamed {
			continue
		}
		out[name] = av
	}
	for old, to := range p.rename {
		if av, ok := in.item[old]; ok && !p.dropped(old) {
			out[to] = av
		}
	}
	// 4. assign the results of set.
	for i, e := range p.sets {
		if vals[i] == nil {
			delete(out, e.attr)
		} else {
			out[e.attr] = vals[i]
		}
	}
	return out, nil
}

func (p *Program) dropped(name string) bool {
	for _, pat := range p.drop {
		if matchGlob(pat, name) {
			return true
		}
	}
	return false
}

// outputAttr computes one attribute of the transformed item, as
// transformItem would, without computing the others.
func (p *Program) outputAttr(in *input, name string) (types.AttributeValue, bool, error) {
	if !p.transform {
		av, ok := in.item[name]
		return av, ok, nil
	}
	if e, ok := p.setByName[name]; ok {
		av, err := e.value(in)
		return av, av != nil, err
	}
	if old, ok := p.renameInto[name]; ok && !p.dropped(old) {
		if av, ok := in.item[old]; ok {
			return av, true, nil
		}
	}
	if _, renamed := p.rename[name]; renamed || p.dropped(name) {
		return nil, false, nil
	}
	av, ok := in.item[name]
	return av, ok, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
