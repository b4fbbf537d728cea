// Package iampolicy builds the least-privilege IAM policy for one ddbsync
// run: the DynamoDB (and DynamoDB Streams) actions that command needs with
// the chosen flags, on exactly the tables of the plan. It makes no AWS
// calls; the command resolves regions and accounts first.
package iampolicy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Commands that take a policy.
const (
	Backfill = "backfill"
	Stream   = "stream"
	Sync     = "sync"
	Diff     = "diff"
)

// Commands lists the commands in help order.
var Commands = []string{Backfill, Stream, Sync, Diff}

// Sides of an entry.
const (
	SideInput      = "input"
	SideOutput     = "output"
	SideMaster     = "master"
	SideSlave      = "slave"
	SideCheckpoint = "checkpoint"
)

// Flags are the flags of the run that change which actions it needs.
type Flags struct {
	SkipExpired       bool // backfill, sync: --skip-expired
	CreateOutputTable bool // backfill, sync: --create-output-table
	// StreamViewType of the input tables' streams (stream, sync). KEYS_ONLY
	// and OLD_IMAGE streams carry no new image, so the stream reads the
	// item with GetItem; "" (unknown) counts as needing it.
	StreamViewType string

	WriteMissing   bool // diff
	WriteDiffering bool // diff
	DeleteExtra    bool // diff
	ScanForExtra   bool // diff
}

// Table is a resolved table: every field is known.
type Table struct {
	Name    string
	Region  string
	Account string
	RoleARN string // assumed for this table, if any
}

// Partition is the ARN partition of the table's region.
func (t Table) Partition() string {
	switch {
	case strings.HasPrefix(t.Region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(t.Region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// ARN is the table's ARN.
func (t Table) ARN() string {
	return fmt.Sprintf("arn:%s:dynamodb:%s:%s:table/%s", t.Partition(), t.Region, t.Account, t.Name)
}

// StreamARN is the pattern matching every stream of the table.
func (t Table) StreamARN() string { return t.ARN() + "/stream/*" }

// Entry is one input → output (or master → slave) pair.
type Entry struct {
	Input, Output Table
	// Backfill and Stream say which phases run (sync can disable either
	// per entry). Ignored by diff.
	Backfill, Stream bool
}

// Run is everything a policy depends on.
type Run struct {
	Command    string
	Entries    []Entry
	Checkpoint *Table // the plan's checkpoint_table, if any
	Flags      Flags
}

// Actions are the actions of one side.
type Actions struct {
	Table  []string // on the table ARN
	Stream []string // on the table's stream ARN pattern
}

// CheckpointActions are the actions on a plan's checkpoint_table: the
// checkpoint store (pkg/state DynamoStore: created when missing, items
// read, updated and deleted, listed with Query or Scan) and the leases of
// several workers (pkg/lease: conditional puts and updates).
var CheckpointActions = []string{
	"dynamodb:CreateTable", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem",
	"dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem",
}

// SideActions returns the actions one side of an entry needs for command
// with the given flags; backfill and stream say which phases run (sync).
func SideActions(command, side string, backfill, stream bool, f Flags) Actions {
	var a Actions
	add := func(dst *[]string, names ...string) {
		for _, n := range names {
			*dst = append(*dst, "dynamodb:"+n)
		}
	}
	switch command {
	case Backfill:
		stream = false
		backfill = true
	case Stream:
		backfill = false
		stream = true
	}
	switch side {
	case SideInput:
		if backfill || stream {
			add(&a.Table, "DescribeTable")
		}
		if backfill {
			add(&a.Table, "Scan")
			if f.SkipExpired {
				add(&a.Table, "DescribeTimeToLive")
			}
			if f.CreateOutputTable {
				// A created output table copies the input's TTL,
				// point-in-time recovery and tags.
				add(&a.Table, "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource")
			}
		}
		if command == Sync && backfill && stream {
			// Reconciling the output after the copy confirms each
			// absence from the input with a consistent BatchGetItem.
			add(&a.Table, "BatchGetItem")
		}
		if stream {
			if needsGetItem(f.StreamViewType) {
				add(&a.Table, "GetItem")
			}
			add(&a.Stream, "DescribeStream", "GetShardIterator", "GetRecords")
		}
	case SideOutput:
		if backfill || stream {
			add(&a.Table, "DescribeTable", "BatchWriteItem")
		}
		if backfill && f.CreateOutputTable {
			// CreateTable with the input's tags needs TagResource; TTL and
			// point-in-time recovery are set once the table is ACTIVE.
			add(&a.Table, "CreateTable", "TagResource", "UpdateTimeToLive", "UpdateContinuousBackups")
		}
		if command == Sync && backfill && stream {
			// sync reconciles an output that held items before the copy
			// (--delete-extra, or an earlier copy of the entry): it scans
			// the output and deletes, conditionally, what the input lacks.
			add(&a.Table, "Scan", "BatchGetItem", "DeleteItem")
		}
		// The stream applies puts and deletes with BatchWriteItem too.
	case SideMaster:
		// pkg/diff reads with Scan and BatchGetItem only (no GetItem).
		add(&a.Table, "DescribeTable", "Scan", "BatchGetItem")
	case SideSlave:
		// The merge method (the default) scans every slave; the lookup
		// reads slaves with BatchGetItem; both confirm with BatchGetItem.
		add(&a.Table, "DescribeTable", "BatchGetItem", "Scan")
		if f.WriteMissing || f.WriteDiffering {
			add(&a.Table, "PutItem")
		}
		if f.DeleteExtra {
			add(&a.Table, "DeleteItem", "Scan")
		} else if f.ScanForExtra {
			add(&a.Table, "Scan")
		}
	case SideCheckpoint:
		a.Table = append(a.Table, CheckpointActions...)
	}
	a.Table = sortUniq(a.Table)
	a.Stream = sortUniq(a.Stream)
	return a
}

func needsGetItem(viewType string) bool {
	switch strings.ToUpper(viewType) {
	case "NEW_IMAGE", "NEW_AND_OLD_IMAGES":
		return false
	}
	return true
}

// StreamViewTypes are the accepted Flags.StreamViewType values.
var StreamViewTypes = []string{"NEW_AND_OLD_IMAGES", "NEW_IMAGE", "OLD_IMAGE", "KEYS_ONLY"}

// Policy is an IAM policy document.
type Policy struct {
	Version   string
	Statement []Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid      string
	Effect   string
	Action   []string
	Resource []string
}

// JSON is the policy as indented JSON with a final newline.
func (p Policy) JSON() []byte {
	b, _ := json.MarshalIndent(p, "", "  ")
	return append(b, '\n')
}

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// ValidAccount reports whether s is a 12-digit AWS account ID.
func ValidAccount(s string) bool { return accountRE.MatchString(s) }

// Build returns the policy of a run: separate statements for the input
// (or master) side, the input streams, the output (or slave) side, the
// checkpoint table and the roles to assume. Entries that need the same
// actions share a statement.
func Build(r Run) (Policy, error) {
	known := false
	for _, c := range Commands {
		known = known || c == r.Command
	}
	if !known {
		return Policy{}, fmt.Errorf("command %q has no policy; allowed: %s", r.Command, strings.Join(Commands, ", "))
	}
	if len(r.Entries) == 0 {
		return Policy{}, fmt.Errorf("the run has no tables")
	}
	check := func(t Table) error {
		if t.Name == "" {
			return fmt.Errorf("a table has no name")
		}
		if !regionRE.MatchString(t.Region) {
			return fmt.Errorf("table %s: region %q is not an AWS region such as us-east-1", t.Name, t.Region)
		}
		if !ValidAccount(t.Account) {
			return fmt.Errorf("table %s: account %q is not a 12-digit AWS account ID", t.Name, t.Account)
		}
		return nil
	}
	readSide, writeSide := SideInput, SideOutput
	readSid, writeSid := "Input", "Output"
	if r.Command == Diff {
		readSide, writeSide = SideMaster, SideSlave
		readSid, writeSid = "Master", "Slaves"
	}
	var reads, streams, writes groups
	var roles []string
	for _, e := range r.Entries {
		for _, t := range []Table{e.Input, e.Output} {
			if err := check(t); err != nil {
				return Policy{}, err
			}
			if t.RoleARN != "" {
				roles = append(roles, t.RoleARN)
			}
		}
		in := SideActions(r.Command, readSide, e.Backfill, e.Stream, r.Flags)
		out := SideActions(r.Command, writeSide, e.Backfill, e.Stream, r.Flags)
		reads.add(in.Table, e.Input.ARN())
		streams.add(in.Stream, e.Input.StreamARN())
		writes.add(out.Table, e.Output.ARN())
	}
	var p Policy
	p.Version = "2012-10-17"
	p.Statement = append(p.Statement, reads.statements(readSid+"Tables")...)
	p.Statement = append(p.Statement, streams.statements(readSid+"Streams")...)
	p.Statement = append(p.Statement, writes.statements(writeSid+"Tables")...)
	if r.Checkpoint != nil {
		if err := check(*r.Checkpoint); err != nil {
			return Policy{}, fmt.Errorf("checkpoint_table: %w", err)
		}
		var cp groups
		cp.add(SideActions(r.Command, SideCheckpoint, false, false, r.Flags).Table, r.Checkpoint.ARN())
		p.Statement = append(p.Statement, cp.statements("CheckpointTable")...)
		if r.Checkpoint.RoleARN != "" {
			roles = append(roles, r.Checkpoint.RoleARN)
		}
	}
	if roles = sortUniq(roles); len(roles) > 0 {
		p.Statement = append(p.Statement, Statement{Sid: "AssumeRoles", Effect: "Allow", Action: []string{"sts:AssumeRole"}, Resource: roles})
	}
	return p, nil
}

// groups gathers resources by action set, in first-seen order.
type groups struct {
	keys []string
	acts map[string][]string
	res  map[string][]string
}

func (g *groups) add(actions []string, resource string) {
	if len(actions) == 0 {
		return
	}
	if g.acts == nil {
		g.acts, g.res = map[string][]string{}, map[string][]string{}
	}
	k := strings.Join(actions, ",")
	if _, ok := g.acts[k]; !ok {
		g.keys = append(g.keys, k)
		g.acts[k] = actions
	}
	g.res[k] = append(g.res[k], resource)
}

func (g *groups) statements(sid string) []Statement {
	var out []Statement
	for i, k := range g.keys {
		s := sid
		if i > 0 {
			s = fmt.Sprintf("%s%d", sid, i+1)
		}
		out = append(out, Statement{Sid: s, Effect: "Allow", Action: g.acts[k], Resource: sortUniq(g.res[k])})
	}
	return out
}

func sortUniq(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = append([]string(nil), s...)
	sort.Strings(s)
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}
