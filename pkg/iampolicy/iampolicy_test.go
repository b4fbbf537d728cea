package iampolicy

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

func tbl(name, region, account string) Table {
	return Table{Name: name, Region: region, Account: account}
}

// parsed is a policy read back from its JSON.
type parsed struct {
	Version   string
	Statement []struct {
		Sid      string
		Effect   string
		Action   []string
		Resource []string
	}
}

func build(t *testing.T, r Run) parsed {
	t.Helper()
	p, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	var out parsed
	if err := json.Unmarshal(p.JSON(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Version != "2012-10-17" {
		t.Errorf("Version %q", out.Version)
	}
	for _, s := range out.Statement {
		if s.Effect != "Allow" || len(s.Action) == 0 || len(s.Resource) == 0 {
			t.Errorf("statement %+v: want Allow with actions and resources", s)
		}
	}
	return out
}

// bySid maps Sid → actions and resources.
func bySid(p parsed) map[string][2][]string {
	m := map[string][2][]string{}
	for _, s := range p.Statement {
		m[s.Sid] = [2][]string{s.Action, s.Resource}
	}
	return m
}

func d(names ...string) []string {
	for i, n := range names {
		names[i] = "dynamodb:" + n
	}
	return names
}

const acct = "123456789012"

func TestPolicies(t *testing.T) {
	in := tbl("orders", "us-east-1", acct)
	out := tbl("orders-copy", "eu-west-1", "999988887777")
	inARN := "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
	outARN := "arn:aws:dynamodb:eu-west-1:999988887777:table/orders-copy"
	streamARN := inARN + "/stream/*"
	one := []Entry{{Input: in, Output: out, Backfill: true, Stream: true}}

	for _, tc := range []struct {
		name string
		run  Run
		want map[string][2][]string
	}{
		{"backfill", Run{Command: Backfill, Entries: one}, map[string][2][]string{
			"InputTables":  {d("DescribeTable", "Scan"), {inARN}},
			"OutputTables": {d("BatchWriteItem", "DescribeTable"), {outARN}},
		}},
		{"backfill --skip-expired --create-output-table", Run{Command: Backfill, Entries: one, Flags: Flags{SkipExpired: true, CreateOutputTable: true}}, map[string][2][]string{
			"InputTables":  {d("DescribeContinuousBackups", "DescribeTable", "DescribeTimeToLive", "ListTagsOfResource", "Scan"), {inARN}},
			"OutputTables": {d("BatchWriteItem", "CreateTable", "DescribeTable", "TagResource", "UpdateContinuousBackups", "UpdateTimeToLive"), {outARN}},
		}},
		{"stream, view type unknown", Run{Command: Stream, Entries: one}, map[string][2][]string{
			"InputTables":  {d("DescribeTable", "GetItem"), {inARN}},
			"InputStreams": {d("DescribeStream", "GetRecords", "GetShardIterator"), {streamARN}},
			"OutputTables": {d("BatchWriteItem", "DescribeTable"), {outARN}},
		}},
		{"stream NEW_AND_OLD_IMAGES", Run{Command: Stream, Entries: one, Flags: Flags{StreamViewType: "new_and_old_images"}}, map[string][2][]string{
			"InputTables":  {d("DescribeTable"), {inARN}},
			"InputStreams": {d("DescribeStream", "GetRecords", "GetShardIterator"), {streamARN}},
			"OutputTables": {d("BatchWriteItem", "DescribeTable"), {outARN}},
		}},
		{"sync", Run{Command: Sync, Entries: one, Flags: Flags{StreamViewType: "NEW_IMAGE", CreateOutputTable: true}}, map[string][2][]string{
			"InputTables":  {d("BatchGetItem", "DescribeContinuousBackups", "DescribeTable", "DescribeTimeToLive", "ListTagsOfResource", "Scan"), {inARN}},
			"InputStreams": {d("DescribeStream", "GetRecords", "GetShardIterator"), {streamARN}},
			"OutputTables": {d("BatchGetItem", "BatchWriteItem", "CreateTable", "DeleteItem", "DescribeTable", "Scan", "TagResource", "UpdateContinuousBackups", "UpdateTimeToLive"), {outARN}},
		}},
		{"sync, stream disabled: no stream actions", Run{Command: Sync, Entries: []Entry{{Input: in, Output: out, Backfill: true}}}, map[string][2][]string{
			"InputTables":  {d("DescribeTable", "Scan"), {inARN}},
			"OutputTables": {d("BatchWriteItem", "DescribeTable"), {outARN}},
		}},
		{"sync, backfill disabled: no Scan, no CreateTable", Run{Command: Sync, Entries: []Entry{{Input: in, Output: out, Stream: true}}, Flags: Flags{SkipExpired: true, CreateOutputTable: true}}, map[string][2][]string{
			"InputTables":  {d("DescribeTable", "GetItem"), {inARN}},
			"InputStreams": {d("DescribeStream", "GetRecords", "GetShardIterator"), {streamARN}},
			"OutputTables": {d("BatchWriteItem", "DescribeTable"), {outARN}},
		}},
		{"diff, report only", Run{Command: Diff, Entries: one}, map[string][2][]string{
			"MasterTables": {d("BatchGetItem", "DescribeTable", "Scan"), {inARN}},
			"SlavesTables": {d("BatchGetItem", "DescribeTable", "Scan"), {outARN}},
		}},
		{"diff --write-missing", Run{Command: Diff, Entries: one, Flags: Flags{WriteMissing: true}}, map[string][2][]string{
			"MasterTables": {d("BatchGetItem", "DescribeTable", "Scan"), {inARN}},
			"SlavesTables": {d("BatchGetItem", "DescribeTable", "PutItem", "Scan"), {outARN}},
		}},
		{"diff --write-differing --scan-for-extra", Run{Command: Diff, Entries: one, Flags: Flags{WriteDiffering: true, ScanForExtra: true}}, map[string][2][]string{
			"MasterTables": {d("BatchGetItem", "DescribeTable", "Scan"), {inARN}},
			"SlavesTables": {d("BatchGetItem", "DescribeTable", "PutItem", "Scan"), {outARN}},
		}},
		{"diff --delete-extra", Run{Command: Diff, Entries: one, Flags: Flags{DeleteExtra: true}}, map[string][2][]string{
			"MasterTables": {d("BatchGetItem", "DescribeTable", "Scan"), {inARN}},
			"SlavesTables": {d("BatchGetItem", "DeleteItem", "DescribeTable", "Scan"), {outARN}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bySid(build(t, tc.run))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("policy:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestManyEntriesCheckpointAndRoles(t *testing.T) {
	a := tbl("orders", "us-east-1", acct)
	b := tbl("users", "us-east-1", acct)
	oa := Table{Name: "orders", Region: "eu-west-1", Account: "999988887777", RoleARN: "arn:aws:iam::999988887777:role/writer"}
	ob := Table{Name: "users", Region: "eu-west-1", Account: "999988887777", RoleARN: "arn:aws:iam::999988887777:role/writer"}
	cp := tbl("ddbsync-checkpoints", "us-east-1", acct)
	p := build(t, Run{Command: Sync, Checkpoint: &cp, Entries: []Entry{
		{Input: a, Output: oa, Backfill: true, Stream: true},
		{Input: b, Output: ob, Backfill: false, Stream: true}, // backfill disabled: other input actions
	}})
	got := bySid(p)
	want := map[string][2][]string{
		"InputTables":  {d("BatchGetItem", "DescribeTable", "GetItem", "Scan"), {"arn:aws:dynamodb:us-east-1:123456789012:table/orders"}},
		"InputTables2": {d("DescribeTable", "GetItem"), {"arn:aws:dynamodb:us-east-1:123456789012:table/users"}},
		"InputStreams": {d("DescribeStream", "GetRecords", "GetShardIterator"), {"arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/*", "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/*"}},
		// sync with the copy also reconciles its output (Scan, BatchGetItem, DeleteItem).
		"OutputTables":    {d("BatchGetItem", "BatchWriteItem", "DeleteItem", "DescribeTable", "Scan"), {"arn:aws:dynamodb:eu-west-1:999988887777:table/orders"}},
		"OutputTables2":   {d("BatchWriteItem", "DescribeTable"), {"arn:aws:dynamodb:eu-west-1:999988887777:table/users"}},
		"CheckpointTable": {CheckpointActions, {"arn:aws:dynamodb:us-east-1:123456789012:table/ddbsync-checkpoints"}},
		"AssumeRoles":     {{"sts:AssumeRole"}, {"arn:aws:iam::999988887777:role/writer"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("policy:\n got %v\nwant %v", got, want)
	}
	var sids []string
	for _, s := range p.Statement {
		sids = append(sids, s.Sid)
	}
	if strings.Join(sids, ",") != "InputTables,InputTables2,InputStreams,OutputTables,OutputTables2,CheckpointTable,AssumeRoles" {
		t.Errorf("statement order %v", sids)
	}
}

func TestPartitions(t *testing.T) {
	for region, arn := range map[string]string{
		"cn-north-1":    "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/t1",
		"us-gov-west-1": "arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/t1",
		"ap-south-2":    "arn:aws:dynamodb:ap-south-2:123456789012:table/t1",
	} {
		if got := tbl("t1", region, acct).ARN(); got != arn {
			t.Errorf("%s: %s, want %s", region, got, arn)
		}
	}
}

func TestBuildRejects(t *testing.T) {
	ok := tbl("orders", "us-east-1", acct)
	for _, tc := range []struct {
		run  Run
		want string
	}{
		{Run{Command: "copy", Entries: []Entry{{Input: ok, Output: ok}}}, `command "copy" has no policy; allowed: backfill, stream, sync, diff`},
		{Run{Command: Backfill}, "no tables"},
		{Run{Command: Backfill, Entries: []Entry{{Input: ok, Output: tbl("x12", "", acct)}}}, `region "" is not an AWS region`},
		{Run{Command: Backfill, Entries: []Entry{{Input: ok, Output: tbl("x12", "us-east-1", "12")}}}, `account "12" is not a 12-digit`},
	} {
		if _, err := Build(tc.run); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Build(%+v) = %v; want %q", tc.run, err, tc.want)
		}
	}
}

// The permission tables of README.md and docs/iam.md are the ones this
// package produces.
func TestDocsTablesInStep(t *testing.T) {
	want := MarkdownTable(PermissionRows())
	for _, path := range []string{"../../README.md", "../../docs/iam.md"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		if path == "../../README.md" {
			b := strings.Index(s, "<!-- iam-policy:begin -->")
			e := strings.Index(s, "<!-- iam-policy:end -->")
			if b < 0 || e < b {
				t.Fatalf("%s: no <!-- iam-policy:begin --> … <!-- iam-policy:end --> section", path)
			}
			s = s[b:e]
		}
		if got := tableIn(s); got != want {
			t.Errorf("%s: the permission table is out of step with pkg/iampolicy; replace it with:\n\n%s\ngot:\n%s", path, want, got)
		}
	}
}

// tableIn returns the first Markdown table that starts with the
// permission table's header.
func tableIn(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	for _, l := range lines {
		if len(out) == 0 && !strings.HasPrefix(l, "| command | side |") {
			continue
		}
		if !strings.HasPrefix(l, "|") {
			break
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}
