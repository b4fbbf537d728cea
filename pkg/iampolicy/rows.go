package iampolicy

import (
	"strings"
)

// Row is one line of the permission tables in README.md and docs/iam.md.
type Row struct {
	Command   string
	Side      string // input, output, master, slave, checkpoint, role
	Resource  string // table, stream, role
	Condition string // "always", or the flag that adds the actions
	Actions   []string
}

type variant struct {
	cond string
	set  func(*Flags)
}

// PermissionRows lists, per command and side, the actions always needed
// and those each flag adds. It is built from SideActions, so the
// documentation cannot drift from the policies the command prints.
func PermissionRows() []Row {
	base := Flags{StreamViewType: "NEW_IMAGE"}
	viewType := variant{"stream view type KEYS_ONLY or OLD_IMAGE, or `--stream-view-type` not given", func(f *Flags) { f.StreamViewType = "" }}
	skip := variant{"`--skip-expired`", func(f *Flags) { f.SkipExpired = true }}
	create := variant{"`--create-output-table`", func(f *Flags) { f.CreateOutputTable = true }}
	sides := map[string][]struct {
		side     string
		variants []variant
	}{
		Backfill: {{SideInput, []variant{skip, create}}, {SideOutput, []variant{create}}},
		Stream:   {{SideInput, []variant{viewType}}, {SideOutput, nil}},
		Sync:     {{SideInput, []variant{skip, viewType, create}}, {SideOutput, []variant{create}}},
		Diff: {{SideMaster, nil}, {SideSlave, []variant{
			{"`--write-missing` or `--write-differing`", func(f *Flags) { f.WriteMissing = true }},
			{"`--scan-for-extra`", func(f *Flags) { f.ScanForExtra = true }},
			{"`--delete-extra`", func(f *Flags) { f.DeleteExtra = true }},
		}}},
	}
	var rows []Row
	for _, cmd := range Commands {
		for _, s := range sides[cmd] {
			b := SideActions(cmd, s.side, true, true, base)
			rows = append(rows, Row{cmd, s.side, "table", "always", b.Table})
			if len(b.Stream) > 0 {
				rows = append(rows, Row{cmd, s.side, "stream", "always", b.Stream})
			}
			for _, v := range s.variants {
				f := base
				v.set(&f)
				a := SideActions(cmd, s.side, true, true, f)
				if d := minus(a.Table, b.Table); len(d) > 0 {
					rows = append(rows, Row{cmd, s.side, "table", v.cond, d})
				}
				if d := minus(a.Stream, b.Stream); len(d) > 0 {
					rows = append(rows, Row{cmd, s.side, "stream", v.cond, d})
				}
			}
		}
	}
	rows = append(rows,
		Row{"any", SideCheckpoint, "table", "the plan has `checkpoint_table`", SideActions("", SideCheckpoint, false, false, Flags{}).Table},
		Row{"any", "role", "role", "a table has `role_arn`", []string{"sts:AssumeRole"}},
	)
	return rows
}

func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, v := range b {
		in[v] = true
	}
	var out []string
	for _, v := range a {
		if !in[v] {
			out = append(out, v)
		}
	}
	return out
}

// MarkdownTable renders rows as the Markdown table of the docs.
func MarkdownTable(rows []Row) string {
	var b strings.Builder
	b.WriteString("| command | side | resource | needed | actions |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		acts := make([]string, len(r.Actions))
		for i, a := range r.Actions {
			acts[i] = "`" + a + "`"
		}
		b.WriteString("| " + strings.Join([]string{r.Command, r.Side, r.Resource, r.Condition, strings.Join(acts, ", ")}, " | ") + " |\n")
	}
	return b.String()
}
