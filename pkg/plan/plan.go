// Package plan reads, builds and validates ddbsync plans: the list of
// input → output table pairs a run works on, with per-entry backfill and
// stream settings. The YAML format is the one of the original ddb-sync,
// extended with profile, endpoint_url, external_id and mfa_serial per table.
package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ddbsync/ddbsync/pkg/transform"
)

// Plan is a whole run: one or more entries, and optionally the DynamoDB
// table that holds checkpoints and leases for several workers.
type Plan struct {
	CheckpointTable *Table  `yaml:"checkpoint_table,omitempty"`
	Entries         []Entry `yaml:"plan"`
	// Source names where the plan came from (the file name, or
	// "(standard input)"); empty for a plan built from flags. Validation
	// errors name it.
	Source string `yaml:"-"`
}

// Entry is one input → output table pair.
type Entry struct {
	Input    Table    `yaml:"input"`
	Output   Table    `yaml:"output"`
	Stream   Stream   `yaml:"stream"`
	Backfill Backfill `yaml:"backfill"`
	// Filter is a CEL expression of type bool: only the items for which
	// it is true are copied ("": every item). See docs/transform.md.
	Filter string `yaml:"filter,omitempty"`
	// Transform reshapes the items on their way to the output (set, drop,
	// rename), decoded strictly; nil: items are written as read.
	Transform *transform.Transform `yaml:"transform,omitempty"`
}

// HasProgram reports whether the entry filters or transforms its items.
func (e Entry) HasProgram() bool {
	return strings.TrimSpace(e.Filter) != "" || e.Transform != nil
}

// Program compiles the entry's filter and transform: nil when it has
// neither (items are copied as read). Validate compiles it once already,
// so an error here is found before any work; it is a *transform.CompileError.
func (e Entry) Program() (*transform.Program, error) {
	if !e.HasProgram() {
		return nil, nil
	}
	return transform.Compile(transform.Spec{Filter: e.Filter, Transform: e.Transform})
}

// Table names a DynamoDB table and how to reach it.
type Table struct {
	Table       string `yaml:"table"`
	TableName   string `yaml:"table_name,omitempty"` // alias for table, as in the original README
	Region      string `yaml:"region,omitempty"`
	RoleARN     string `yaml:"role_arn,omitempty"`
	ExternalID  string `yaml:"external_id,omitempty"`
	Profile     string `yaml:"profile,omitempty"`
	EndpointURL string `yaml:"endpoint_url,omitempty"`
	MFASerial   string `yaml:"mfa_serial,omitempty"`
}

// Stream holds the stream settings of an entry.
type Stream struct {
	Disabled bool `yaml:"disabled"`
}

// Backfill holds the backfill settings of an entry.
type Backfill struct {
	Disabled bool `yaml:"disabled"`
	// Segments is a comma-separated list of the scan segments this worker
	// copies ("0,1,2"); empty means all of them.
	Segments      string  `yaml:"segments,omitempty"`
	TotalSegments int     `yaml:"total_segments,omitempty"`
	MaxWCU        float64 `yaml:"max_wcu,omitempty"`
	MaxRCU        float64 `yaml:"max_rcu,omitempty"`
}

// String names a table for logs: "region:table", or "table" when the
// region comes from the environment.
func (t Table) String() string {
	if t.Region == "" {
		return t.Table
	}
	return t.Region + ":" + t.Table
}

// Identity is what makes two table references the same table: name,
// region, the account implied by role or profile, and the endpoint.
func (t Table) Identity() string {
	return strings.Join([]string{t.Table, t.Region, t.RoleARN, t.Profile, t.EndpointURL}, "\x00")
}

// ID is a short stable identifier of the entry, used to key checkpoints.
// It changes when either side names another table, region, account or
// endpoint, so that state of one plan is never applied to another.
func (e Entry) ID() string {
	h := sha256.Sum256([]byte(tableKey(e.Input) + "\x01" + tableKey(e.Output)))
	return e.Input.Table + "-" + e.Output.Table + "-" + hex.EncodeToString(h[:6])
}

// tableKey leaves the profile and role out: the same table reached through
// other credentials is still the same table.
func tableKey(t Table) string {
	return strings.Join([]string{t.Table, t.Region, t.EndpointURL}, "\x00")
}

// Description is the log prefix of the entry: "[input] ⇨ [output]".
func (e Entry) Description() string {
	return fmt.Sprintf("[%s] ⇨ [%s]", e.Input.Table, e.Output.Table)
}

// SegmentList parses Backfill.Segments. An empty string gives nil (all
// segments).
func (b Backfill) SegmentList() ([]int, error) {
	return ParseSegments(b.Segments)
}

// ParseSegments parses "0,1,2" (spaces allowed) into sorted, distinct
// segment numbers.
func ParseSegments(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	seen := map[int]bool{}
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("segment %q is not a whole number ≥ 0 (expected a list such as \"0,1,2\")", part)
		}
		if seen[n] {
			return nil, fmt.Errorf("segment %d is listed twice", n)
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}

// Load reads a plan file; "-" reads standard input.
func Load(path string, stdin io.Reader) (*Plan, error) {
	var data []byte
	var err error
	name := path
	if path == "-" {
		name = "(standard input)"
		if stdin == nil {
			return nil, &Error{Msg: "the plan is to be read from standard input (\"-\"), but there is none"}
		}
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &Error{Msg: fmt.Sprintf("cannot read plan file %s: %v", name, err)}
	}
	return Parse(data, name)
}

// Parse decodes plan YAML strictly: unknown keys, values of the wrong type
// and malformed YAML are errors naming the line. name is the file name
// used in messages and kept in Plan.Source.
func Parse(data []byte, name string) (*Plan, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Plan
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Msg: fmt.Sprintf("plan file %s is empty: it needs a \"plan:\" list with at least one entry (see docs/plan.md)", name)}
		}
		var ce *transform.CompileError
		if errors.As(err, &ce) {
			// A plan entry's transform: strict decoding names the line.
			return nil, &Error{Msg: fmt.Sprintf("plan file %s: %s", name, ce)}
		}
		return nil, &Error{Msg: fmt.Sprintf("plan file %s: %s", name, cleanYAMLError(err))}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := ""
		if err == nil {
			line = fmt.Sprintf(" (line %d)", extra.Line)
		}
		return nil, &Error{Msg: fmt.Sprintf("plan file %s holds more than one YAML document%s: put every entry in one \"plan:\" list", name, line)}
	}
	p.Source = name
	tables := []*Table{}
	for i := range p.Entries {
		tables = append(tables, &p.Entries[i].Input, &p.Entries[i].Output)
	}
	if p.CheckpointTable != nil {
		tables = append(tables, p.CheckpointTable)
	}
	for j, t := range tables {
		if t.TableName != "" && t.Table != "" && t.TableName != t.Table {
			where := "checkpoint_table"
			if j < 2*len(p.Entries) {
				where = fmt.Sprintf("plan entry %d %s", j/2+1, []string{"input", "output"}[j%2])
			}
			return nil, &Error{Msg: fmt.Sprintf("plan file %s: %s sets both table (%q) and table_name (%q); keep one of them", name, where, t.Table, t.TableName)}
		}
		if t.Table == "" {
			t.Table = t.TableName
		}
		t.TableName = ""
	}
	return &p, nil
}

// yamlParserContext maps the YAML parser errors that carry the line of
// their enclosing block to what that block is.
var yamlParserContext = map[string]string{
	"did not find expected '-' indicator": "list",
	"did not find expected key":           "mapping",
	"did not find expected ',' or '}'":    "{...} mapping",
	"did not find expected ',' or ']'":    "[...] list",
	"did not find expected node content":  "value",
}

// yamlKeys lists the keys allowed in each part of a plan, for messages.
var yamlKeys = map[string]struct{ where, keys string }{
	"Plan":     {"at the top level", "plan, checkpoint_table"},
	"Entry":    {"in a plan entry", "input, output, stream, backfill, filter, transform"},
	"Table":    {"in a table", "table (or table_name), region, role_arn, external_id, profile, endpoint_url, mfa_serial"},
	"Stream":   {"under stream", "disabled"},
	"Backfill": {"under backfill", "disabled, segments, total_segments, max_wcu, max_rcu"},
}

// yamlTypes names the Go types of a plan the way a user reads them.
var yamlTypes = map[string]string{
	"[]plan.Entry":  `a list of entries, each starting with "- input:"`,
	"plan.Plan":     `a mapping with a "plan:" list`,
	"plan.Entry":    "a mapping with input, output, stream, backfill, filter and transform",
	"plan.Table":    "a mapping such as {table: NAME, region: REGION}",
	"*plan.Table":   "a mapping such as {table: NAME, region: REGION}",
	"plan.Stream":   "a mapping such as {disabled: true}",
	"plan.Backfill": "a mapping such as {segments: \"0,1\", total_segments: 4}",
	"int":           "a whole number",
	"bool":          "true or false",
	"float64":       "a number",
	"string":        `a string (for segments, a quoted list such as "0,1,2")`,
}

var (
	reUnknownKey = regexp.MustCompile(`^line (\d+): field (.+) not found in type plan\.(\w+)$`)
	reWrongType  = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) (?:`(.*)` )?into (.+)$")
)

// cleanYAMLError rewrites a YAML decoding error for the user: line
// number, what is wrong and what is allowed.
func cleanYAMLError(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		// A syntax error: "yaml: line 3: did not find expected key".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := regexp.MustCompile(`^line (\d+): (.*)$`).FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			hint := ""
			if strings.Contains(m[2], "cannot start any token") {
				hint = " (YAML is indented with spaces, not tabs)"
			}
			if block, ok := yamlParserContext[m[2]]; ok {
				// yaml v3 reports these parser errors with the zero-based
				// line of the enclosing block: name the block instead.
				line++
				hint = " in the " + block + " that starts on line " + strconv.Itoa(line) + "; check the brackets and the indentation of the lines below it"
			}
			return fmt.Sprintf("line %d: malformed YAML: %s%s", line, m[2], hint)
		}
		return "malformed YAML: " + msg
	}
	var out []string
	for _, e := range te.Errors {
		if m := reUnknownKey.FindStringSubmatch(e); m != nil {
			k := yamlKeys[m[3]]
			if _, err := strconv.Atoi(m[2]); err == nil && m[3] == "Backfill" {
				// {segments: 0,1,2} in a flow mapping splits at the commas.
				out = append(out, fmt.Sprintf("line %s: unknown key %q under backfill: quote the segments list, as in segments: \"0,1,2\"", m[1], m[2]))
				continue
			}
			msg := fmt.Sprintf("line %s: unknown key %q %s", m[1], m[2], k.where)
			if s := suggest(m[2], strings.Split(strings.ReplaceAll(k.keys, " (or table_name)", ""), ", ")); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			out = append(out, msg+"; allowed: "+k.keys)
			continue
		}
		if m := reWrongType.FindStringSubmatch(e); m != nil {
			want := yamlTypes[m[4]]
			if want == "" {
				want = m[4]
			}
			got := map[string]string{"map": "a mapping", "seq": "a list", "str": "a string", "int": "a number", "float": "a number", "bool": "true/false", "null": "empty"}[m[2]]
			if got == "" {
				got = m[2]
			}
			if m[3] != "" {
				got = fmt.Sprintf("%q", m[3])
			}
			out = append(out, fmt.Sprintf("line %s: expected %s, found %s", m[1], want, got))
			continue
		}
		out = append(out, e)
	}
	return strings.Join(out, "; ")
}

// suggest returns the allowed key closest to key when it is a likely typo.
func suggest(key string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if d := editDistance(strings.ToLower(key), a); d < bestD {
			best, bestD = a, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Error is a plan or usage error: the run must not start. The CLI maps it
// to exit code 2.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }
