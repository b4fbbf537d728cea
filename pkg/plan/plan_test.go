package plan

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// load parses, normalises and validates like the CLI does.
func load(t *testing.T, yml string, mode Mode) (*Plan, error) {
	t.Helper()
	p, err := Parse([]byte(yml), "plan.yml")
	if err != nil {
		return nil, err
	}
	p.Normalize()
	return p, p.Validate(mode)
}

const entryAB = "plan:\n  - input: {table: aaa, region: us-east-1}\n    output: {table: bbb}\n"

func TestBadPlans(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		mode Mode
		want []string // all must appear in the message
	}{
		{"unknown key in table", "plan:\n  - input: {table: aaa, region: us-east-1}\n    output: {tabel: bbb}\n", ModeBackfill,
			[]string{"plan file plan.yml", "line 3", `unknown key "tabel" in a table`, `did you mean "table"?`, "allowed: table (or table_name), region, role_arn"}},
		{"unknown key in entry", "plan:\n  - input: {table: aaa}\n    ouptut: {table: bbb}\n", ModeBackfill,
			[]string{"line 3", `unknown key "ouptut" in a plan entry`, `did you mean "output"?`, "allowed: input, output, stream, backfill"}},
		{"unknown key in backfill", entryAB + "    backfill: {segmnets: \"0\"}\n", ModeBackfill,
			[]string{"line 4", `unknown key "segmnets" under backfill`, "allowed: disabled, segments, total_segments"}},
		{"unknown key in stream", entryAB + "    stream:\n      enabled: false\n", ModeStream,
			[]string{"line 5", `unknown key "enabled" under stream`, "allowed: disabled"}},
		{"unknown top-level key", "plans:\n  - input: {table: aaa}\n", ModeBackfill,
			[]string{"line 1", `unknown key "plans" at the top level`, `did you mean "plan"?`}},
		{"several unknown keys", "plan:\n  - input: {table: aaa, regoin: x}\n    output: {table: bbb, rolearn: y}\n", ModeBackfill,
			[]string{`line 2: unknown key "regoin"`, `line 3: unknown key "rolearn"`}},
		{"missing input table", "plan:\n  - input: {region: us-east-1}\n    output: {table: bbb}\n", ModeBackfill,
			[]string{"plan entry 1", "input.table is required"}},
		{"missing input table in second entry", entryAB + "  - input: {region: us-east-1}\n", ModeBackfill,
			[]string{"plan entry 2", "input.table is required"}},
		{"missing input section", "plan:\n  - output: {table: bbb}\n", ModeBackfill,
			[]string{"plan entry 1", "input.table is required"}},
		{"input equals output by default", "plan:\n  - input: {table: aaa, region: us-east-1}\n", ModeSync,
			[]string{"plan entry 1 ([aaa] ⇨ [aaa])", "input and output are the same table (us-east-1:aaa)", "name another output table, region, account or endpoint"}},
		{"input equals output spelled out", "plan:\n  - input: {table: aaa, region: eu-west-1, role_arn: 'arn:aws:iam::1:role/r', endpoint_url: 'http://h:8000'}\n    output: {table: aaa, region: eu-west-1, role_arn: 'arn:aws:iam::1:role/r', endpoint_url: 'http://h:8000'}\n", ModeBackfill,
			[]string{"input and output are the same table"}},
		{"two entries write one table", entryAB + "  - input: {table: ccc, region: us-east-1}\n    output: {table: bbb}\n", ModeBackfill,
			[]string{"plan entry 2", "output table us-east-1:bbb is already the output of plan entry 1"}},
		{"segment out of range", entryAB + "    backfill: {segments: \"0,1,5\", total_segments: 4}\n", ModeBackfill,
			[]string{"plan entry 1 ([aaa] ⇨ [bbb])", "backfill segment 5 is out of range", "segments are 0 to 3"}},
		{"segments without total", entryAB + "    backfill: {segments: \"0,1\"}\n", ModeBackfill,
			[]string{`backfill.segments is set ("0,1") without backfill.total_segments`}},
		{"unquoted segments in a flow mapping", entryAB + "    backfill: {segments: 0,1,2, total_segments: 4}\n", ModeBackfill,
			[]string{`line 4: unknown key "1" under backfill: quote the segments list, as in segments: "0,1,2"`}},
		{"segments as a list", entryAB + "    backfill: {segments: [0, 1], total_segments: 4}\n", ModeBackfill,
			[]string{`line 4: expected a string (for segments, a quoted list such as "0,1,2"), found a list`}},
		{"segments not numbers", entryAB + "    backfill: {segments: \"0,x\", total_segments: 4}\n", ModeBackfill,
			[]string{`backfill.segments: segment "x" is not a whole number`, `"0,1,2"`}},
		{"segment listed twice", entryAB + "    backfill: {segments: \"1,1\", total_segments: 4}\n", ModeBackfill,
			[]string{"segment 1 is listed twice"}},
		{"negative total segments", entryAB + "    backfill: {total_segments: -2}\n", ModeBackfill,
			[]string{"backfill.total_segments is -2", "allowed: 1 to 1000000"}},
		{"too many total segments", entryAB + "    backfill: {total_segments: 1000001}\n", ModeBackfill,
			[]string{"backfill.total_segments is 1000001"}},
		{"segments with streaming", entryAB + "    backfill: {segments: \"0,1\", total_segments: 4}\n", ModeSync,
			[]string{"backfill.segments splits the backfill across machines", "cannot be combined with streaming"}},
		{"total segments not a number", entryAB + "    backfill: {total_segments: 0x}\n", ModeBackfill,
			[]string{"line 4", `expected a whole number, found "0x"`}},
		{"disabled not a bool", entryAB + "    stream: {disabled: maybe}\n", ModeBackfill,
			[]string{"line 4", `expected true or false, found "maybe"`}},
		{"plan is a mapping", "plan:\n  input: {table: aaa}\n", ModeBackfill,
			[]string{"line 2", `expected a list of entries, each starting with "- input:", found a mapping`}},
		{"plan is a list at top", "- input: {table: aaa}\n", ModeBackfill,
			[]string{"line 1", `expected a mapping with a "plan:" list, found a list`}},
		{"table is a string", "plan:\n  - input: aaa\n", ModeBackfill,
			[]string{"line 2", "expected a mapping such as {table: NAME, region: REGION}"}},
		{"malformed flow mapping", "plan:\n  - input: {table: aaa\n", ModeBackfill,
			[]string{"plan file plan.yml: line 2: malformed YAML: did not find expected ',' or '}' in the {...} mapping that starts on line 2"}},
		{"malformed indentation", "plan:\n  - input: {table: aaa}\n   output: {table: bbb}\n", ModeBackfill,
			[]string{"line 2: malformed YAML: did not find expected '-' indicator in the list that starts on line 2; check the brackets and the indentation"}},
		{"malformed flow list", "plan:\n  - input: {table: aaa}\n    output: {table: bbb}\n    stream: [1\n\n", ModeBackfill,
			[]string{"line 4: malformed YAML: did not find expected ',' or ']' in the [...] list that starts on line 4"}},
		{"mapping value in wrong place", "plan:\n  - input: {table: aaa}\n    output: {table: bbb}\n    x: y: z\n", ModeBackfill,
			[]string{"line 4: malformed YAML: mapping values are not allowed in this context"}},
		{"tab indentation", "plan:\n\t- input: {table: aaa}\n", ModeBackfill,
			[]string{"line 2", "malformed YAML", "not tabs"}},
		{"empty plan list", "plan: []\n", ModeBackfill,
			[]string{"plan file plan.yml", "the plan is empty", `"plan:"`}},
		{"null plan", "plan:\n", ModeBackfill,
			[]string{"the plan is empty"}},
		{"empty file", "", ModeBackfill,
			[]string{"plan file plan.yml is empty", `"plan:" list`}},
		{"only comments", "# nothing yet\n\n", ModeBackfill,
			[]string{"plan file plan.yml is empty"}},
		{"two documents", entryAB + "---\nplan: []\n", ModeBackfill,
			[]string{"more than one YAML document", "line 4"}},
		{"table and table_name differ", "plan:\n  - input: {table: aaa, table_name: zzz}\n", ModeBackfill,
			[]string{"plan entry 1 input sets both table (\"aaa\") and table_name (\"zzz\")"}},
		{"bad table name", "plan:\n  - input: {table: a, region: us-east-1}\n    output: {table: bbb}\n", ModeBackfill,
			[]string{`input.table "a" is not a valid DynamoDB table name`, "3 to 255 characters"}},
		{"bad output table name", "plan:\n  - input: {table: aaa}\n    output: {table: 'b b b'}\n", ModeBackfill,
			[]string{`output.table "b b b" is not a valid DynamoDB table name`}},
		{"bad endpoint", "plan:\n  - input: {table: aaa, endpoint_url: 'localhost:8000'}\n    output: {table: bbb}\n", ModeBackfill,
			[]string{`input.endpoint_url "localhost:8000" is not an http:// or https:// URL`}},
		{"bad role arn", "plan:\n  - input: {table: aaa}\n    output: {table: bbb, role_arn: MyRole}\n", ModeBackfill,
			[]string{`output.role_arn "MyRole" is not an ARN`}},
		{"external id without role", "plan:\n  - input: {table: aaa, external_id: x}\n    output: {table: bbb}\n", ModeBackfill,
			[]string{"input.external_id is set without role_arn"}},
		{"mfa without role", "plan:\n  - input: {table: aaa}\n    output: {table: bbb, mfa_serial: 'arn:aws:iam::1:mfa/me'}\n", ModeBackfill,
			[]string{"output.mfa_serial is set without role_arn"}},
		{"negative max_wcu", entryAB + "    backfill: {max_wcu: -1}\n", ModeBackfill,
			[]string{"backfill.max_wcu is -1", "allowed: 0 (no limit)"}},
		{"negative max_rcu", entryAB + "    backfill: {max_rcu: -1}\n", ModeBackfill,
			[]string{"backfill.max_rcu is -1"}},
		{"nothing to do", entryAB + "    stream: {disabled: true}\n    backfill: {disabled: true}\n", ModeSync,
			[]string{"nothing to do: every plan entry has both backfill and stream disabled"}},
		{"checkpoint table without name", "checkpoint_table: {region: us-east-1}\n" + entryAB, ModeBackfill,
			[]string{"checkpoint_table.table is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yml, tt.mode)
			if err == nil {
				t.Fatalf("no error for:\n%s", tt.yml)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *plan.Error (exit 2): %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n  does not contain %q", err, w)
				}
			}
			for _, bad := range []string{"plan.Table", "plan.Entry", "[]plan", "!!", "yaml:", "unmarshal"} {
				if strings.Contains(err.Error(), bad) {
					t.Errorf("error %q leaks Go/YAML internals (%q)", err, bad)
				}
			}
		})
	}
}

// TestOriginalFormat: a plan of the original ddb-sync parses unchanged.
func TestOriginalFormat(t *testing.T) {
	yml := `plan:
  - input:
      table: source-table
      region: us-west-2
      role_arn: arn:aws:iam::111111111111:role/reader
    output:
      table: destination-table
      region: us-east-1
      role_arn: arn:aws:iam::222222222222:role/writer
    stream:
      disabled: true
    backfill:
      disabled: false
      segments: "0,1,2"
      total_segments: 8
  - input:
      table: other
      region: us-west-2
    output:
      table: other
      region: eu-west-1
    backfill:
      disabled: true
`
	p, err := load(t, yml, ModeSync)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{
		Input:    Table{Table: "source-table", Region: "us-west-2", RoleARN: "arn:aws:iam::111111111111:role/reader"},
		Output:   Table{Table: "destination-table", Region: "us-east-1", RoleARN: "arn:aws:iam::222222222222:role/writer"},
		Stream:   Stream{Disabled: true},
		Backfill: Backfill{Segments: "0,1,2", TotalSegments: 8},
	}, {
		Input:    Table{Table: "other", Region: "us-west-2"},
		Output:   Table{Table: "other", Region: "eu-west-1"},
		Backfill: Backfill{Disabled: true},
	}}
	if !reflect.DeepEqual(p.Entries, want) {
		t.Fatalf("entries:\n got %+v\nwant %+v", p.Entries, want)
	}
	segs, err := p.Entries[0].Backfill.SegmentList()
	if err != nil || !reflect.DeepEqual(segs, []int{0, 1, 2}) {
		t.Fatalf("SegmentList = %v, %v", segs, err)
	}
	if p.Source != "plan.yml" {
		t.Errorf("Source = %q", p.Source)
	}
}

func TestExtensionsAndAliases(t *testing.T) {
	yml := `checkpoint_table: {table_name: ckpt, region: us-east-1}
plan:
  - input:
      table_name: src
      region: us-east-1
      profile: prod
      endpoint_url: http://localhost:8000
    output:
      table_name: dst
      role_arn: arn:aws:iam::1:role/w
      external_id: ext
      mfa_serial: arn:aws:iam::1:mfa/me
    backfill: {max_wcu: 100, max_rcu: 50.5, segments: 0, total_segments: 1}
`
	p, err := load(t, yml, ModeBackfill)
	if err != nil {
		t.Fatal(err)
	}
	e := p.Entries[0]
	wantIn := Table{Table: "src", Region: "us-east-1", Profile: "prod", EndpointURL: "http://localhost:8000"}
	wantOut := Table{Table: "dst", Region: "us-east-1", RoleARN: "arn:aws:iam::1:role/w", ExternalID: "ext", MFASerial: "arn:aws:iam::1:mfa/me"}
	if e.Input != wantIn || e.Output != wantOut {
		t.Fatalf("got %+v / %+v", e.Input, e.Output)
	}
	if e.Backfill.MaxWCU != 100 || e.Backfill.MaxRCU != 50.5 || e.Backfill.Segments != "0" {
		t.Fatalf("backfill %+v", e.Backfill)
	}
	if p.CheckpointTable == nil || p.CheckpointTable.Table != "ckpt" {
		t.Fatalf("checkpoint table %+v", p.CheckpointTable)
	}
}

// TestDefaults: the output table and region default to the input's.
func TestDefaults(t *testing.T) {
	p, err := load(t, "plan:\n  - input: {table: ' aaa ', region: us-east-1}\n    output: {region: eu-west-1}\n  - input: {table: ccc, region: us-east-1}\n    output: {table: ddd}\n", ModeSync)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Entries[0].Output; got.Table != "aaa" || got.Region != "eu-west-1" {
		t.Errorf("entry 1 output = %+v; want table aaa (from input) in eu-west-1", got)
	}
	if got := p.Entries[1].Output; got.Table != "ddd" || got.Region != "us-east-1" {
		t.Errorf("entry 2 output = %+v; want ddd in us-east-1 (from input)", got)
	}
}

func TestSameTableOtherAccountOrEndpointIsFine(t *testing.T) {
	for _, out := range []string{
		"{region: eu-west-1}",
		"{role_arn: 'arn:aws:iam::2:role/w'}",
		"{profile: other}",
		"{endpoint_url: 'http://localhost:8000'}",
	} {
		if _, err := load(t, "plan:\n  - input: {table: aaa, region: us-east-1}\n    output: "+out+"\n", ModeSync); err != nil {
			t.Errorf("output %s: %v", out, err)
		}
	}
}

func TestDiffAllowsOneSlaveForSeveralMasters(t *testing.T) {
	yml := entryAB + "  - input: {table: ccc, region: us-east-1}\n    output: {table: bbb}\n"
	if _, err := load(t, yml, ModeDiff); err != nil {
		t.Fatal(err)
	}
}

func TestSegmentsWithStreamDisabledInSync(t *testing.T) {
	if _, err := load(t, entryAB+"    stream: {disabled: true}\n    backfill: {segments: \"2, 0\", total_segments: 4}\n", ModeSync); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	t.Run("stdin", func(t *testing.T) {
		p, err := Load("-", strings.NewReader(entryAB))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) != 1 || p.Entries[0].Input.Table != "aaa" || p.Source != "(standard input)" {
			t.Fatalf("got %+v", p)
		}
	})
	t.Run("empty stdin", func(t *testing.T) {
		_, err := Load("-", strings.NewReader(""))
		if err == nil || err.Error() != `plan file (standard input) is empty: it needs a "plan:" list with at least one entry (see docs/plan.md)` {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "p.yml")
		if err := os.WriteFile(path, []byte(entryAB), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := Load(path, nil)
		if err != nil || p.Entries[0].Output.Table != "bbb" {
			t.Fatalf("got %+v, %v", p, err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yml")
		_, err := Load(path, nil)
		var pe *Error
		if !errors.As(err, &pe) || err.Error() != "cannot read plan file "+path+": no such file or directory" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Load(dir, nil)
		if err == nil || !strings.Contains(err.Error(), "cannot read plan file "+dir+": is a directory") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestFlagPlanMessagesNameTheTables(t *testing.T) {
	p := &Plan{Entries: []Entry{{Input: Table{Table: "aaa"}, Backfill: Backfill{Segments: "3", TotalSegments: 2}}}}
	p.Normalize()
	p.Entries[0].Output.Table = "bbb"
	err := p.Validate(ModeBackfill)
	if err == nil || err.Error() != "[aaa] ⇨ [bbb]: backfill segment 3 is out of range; with total_segments 2 the segments are 0 to 1" {
		t.Fatalf("err = %v", err)
	}
	if err := (&Plan{}).Validate(ModeBackfill); err == nil || !strings.Contains(err.Error(), "the plan is empty") {
		t.Fatalf("empty plan: %v", err)
	}
}

func TestParseSegments(t *testing.T) {
	got, err := ParseSegments(" 3, 0 ,1")
	if err != nil || !reflect.DeepEqual(got, []int{0, 1, 3}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := ParseSegments(""); got != nil || err != nil {
		t.Fatalf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"-1", "1,,2", "a", "1.5"} {
		if _, err := ParseSegments(bad); err == nil {
			t.Errorf("ParseSegments(%q) accepted", bad)
		}
	}
}

func TestEntryIDAndDescription(t *testing.T) {
	e := Entry{Input: Table{Table: "src", Region: "us-east-1"}, Output: Table{Table: "dst", Region: "eu-west-1"}}
	if d := e.Description(); d != "[src] ⇨ [dst]" {
		t.Errorf("Description = %q", d)
	}
	id := e.ID()
	if !strings.HasPrefix(id, "src-dst-") || len(id) != len("src-dst-")+12 {
		t.Errorf("ID = %q", id)
	}
	same := e
	same.Input.RoleARN = "arn:aws:iam::1:role/r" // other credentials, same table
	if same.ID() != id {
		t.Errorf("ID changed with the role: %q vs %q", same.ID(), id)
	}
	other := e
	other.Output.Region = "eu-west-2"
	if other.ID() == id {
		t.Errorf("ID did not change with the output region")
	}
}

func TestFilterAndTransform(t *testing.T) {
	yml := entryAB + "    filter: 'item.tenant == \"acme\"'\n    transform:\n      set:\n        id2: '\"T#\" + item.pk'\n      drop: [\"tmp*\"]\n      rename: {qty: quantity}\n"
	p, err := load(t, yml, ModeSync)
	if err != nil {
		t.Fatal(err)
	}
	e := p.Entries[0]
	if e.Filter != `item.tenant == "acme"` || e.Transform == nil || e.Transform.Set["id2"] != `"T#" + item.pk` ||
		!reflect.DeepEqual(e.Transform.Drop, []string{"tmp*"}) || e.Transform.Rename["qty"] != "quantity" {
		t.Fatalf("entry = %+v, transform %+v", e, e.Transform)
	}
	prog, err := e.Program()
	if err != nil || prog == nil || !prog.HasFilter() || !prog.HasTransform() {
		t.Fatalf("Program() = %v, %v", prog, err)
	}
	if prog, err := (Entry{}).Program(); prog != nil || err != nil {
		t.Fatalf("an entry without filter or transform has the program %v, %v; want none", prog, err)
	}

	bad := []struct {
		name, yml string
		want      []string
	}{
		{"filter syntax", entryAB + "    filter: 'item.x =='\n", []string{"plan file plan.yml", "plan entry 1 ([aaa] ⇨ [bbb])", "filter 1:", "Syntax error", `(in "item.x ==")`}},
		{"filter not bool", entryAB + "    filter: 'item.x + 1'\n", []string{"plan entry 1", "filter", "bool"}},
		{"transform unknown key", entryAB + "    transform:\n      sett: {a: item.b}\n", []string{"plan file plan.yml", "transform line 5", `unknown key "sett"`}},
		{"transform set type error", entryAB + "    transform:\n      set:\n        a: 'item.b +'\n", []string{"plan entry 1", "set a", "Syntax error"}},
		{"transform not a mapping", entryAB + "    transform: [a]\n", []string{"transform line 4", "mapping with the keys set, drop and rename"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yml, ModeBackfill)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want a *plan.Error", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
