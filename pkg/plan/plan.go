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
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Plan is a whole run: one or more entries, and optionally the DynamoDB
// table that holds checkpoints and leases for several workers.
type Plan struct {
	CheckpointTable *Table  `yaml:"checkpoint_table,omitempty"`
	Entries         []Entry `yaml:"plan"`
}

// Entry is one input → output table pair.
type Entry struct {
	Input    Table    `yaml:"input"`
	Output   Table    `yaml:"output"`
	Stream   Stream   `yaml:"stream"`
	Backfill Backfill `yaml:"backfill"`
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
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("cannot read plan file %s: %v", path, errors.Unwrap(err))}
	}
	return Parse(data, path)
}

// Parse decodes plan YAML strictly: unknown keys are errors with their
// line number.
func Parse(data []byte, name string) (*Plan, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Plan
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Msg: fmt.Sprintf("plan file %s is empty: it needs a \"plan:\" list with at least one entry", name)}
		}
		return nil, &Error{Msg: fmt.Sprintf("plan file %s: %s", name, cleanYAMLError(err))}
	}
	for i := range p.Entries {
		for _, t := range []*Table{&p.Entries[i].Input, &p.Entries[i].Output} {
			if t.TableName != "" && t.Table != "" && t.TableName != t.Table {
				return nil, &Error{Msg: fmt.Sprintf("plan file %s: plan entry %d sets both table (%q) and table_name (%q); use table", name, i+1, t.Table, t.TableName)}
			}
			if t.Table == "" {
				t.Table = t.TableName
			}
			t.TableName = ""
		}
	}
	return &p, nil
}

func cleanYAMLError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	msg = strings.ReplaceAll(msg, "in type plan.Table", "(allowed: table, region, role_arn, external_id, profile, endpoint_url, mfa_serial)")
	msg = strings.ReplaceAll(msg, "in type plan.Entry", "(allowed: input, output, stream, backfill)")
	msg = strings.ReplaceAll(msg, "in type plan.Backfill", "(allowed: disabled, segments, total_segments, max_wcu, max_rcu)")
	msg = strings.ReplaceAll(msg, "in type plan.Stream", "(allowed: disabled)")
	msg = strings.ReplaceAll(msg, "in type plan.Plan", "(allowed: plan, checkpoint_table)")
	return msg
}

// Error is a plan or usage error: the run must not start. The CLI maps it
// to exit code 2.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }
