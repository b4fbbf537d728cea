package plan

import (
	"fmt"
	"net/url"
	"strings"
)

// Mode is the command a plan is validated for.
type Mode string

const (
	ModeBackfill Mode = "backfill"
	ModeStream   Mode = "stream"
	ModeSync     Mode = "sync"
	ModeDiff     Mode = "diff"
)

// MaxTotalSegments is DynamoDB's upper bound for a parallel Scan.
const MaxTotalSegments = 1000000

// Normalize fills the defaults of the original ddb-sync: an output without
// a table or region takes the input's.
func (p *Plan) Normalize() {
	for i := range p.Entries {
		e := &p.Entries[i]
		e.Input.Table = strings.TrimSpace(e.Input.Table)
		e.Output.Table = strings.TrimSpace(e.Output.Table)
		if e.Output.Table == "" {
			e.Output.Table = e.Input.Table
		}
		if e.Output.Region == "" {
			e.Output.Region = e.Input.Region
		}
	}
}

// Validate checks the whole plan for the given command before any AWS
// call. It returns an *Error naming the entry, the field and what is
// allowed. Call Normalize first.
func (p *Plan) Validate(mode Mode) error {
	if err := p.validate(mode); err != nil {
		if p.Source != "" {
			err.Msg = "plan file " + p.Source + ": " + err.Msg
		}
		return err
	}
	return nil
}

func (p *Plan) validate(mode Mode) *Error {
	if len(p.Entries) == 0 {
		if p.Source != "" {
			return &Error{Msg: "the plan is empty: give at least one entry under \"plan:\" (see docs/plan.md)"}
		}
		return &Error{Msg: "the plan is empty: give at least one entry under \"plan:\""}
	}
	seen := map[string]int{}
	idle := 0
	for i, e := range p.Entries {
		where := fmt.Sprintf("plan entry %d (%s)", i+1, e.Description())
		if len(p.Entries) == 1 && p.Source == "" {
			where = e.Description()
		}
		fail := func(format string, args ...any) *Error {
			return &Error{Msg: where + ": " + fmt.Sprintf(format, args...)}
		}
		if e.Input.Table == "" {
			return &Error{Msg: fmt.Sprintf("plan entry %d: input.table is required (the table to read from)", i+1)}
		}
		for _, side := range []struct {
			name string
			t    Table
		}{{"input", e.Input}, {"output", e.Output}} {
			if err := validateTable(side.t); err != nil {
				return fail("%s.%s", side.name, err)
			}
		}
		if e.Input.Identity() == e.Output.Identity() {
			return fail("input and output are the same table (%s); name another output table, region, account or endpoint", e.Input)
		}
		if prev, ok := seen[e.Output.Identity()]; ok && mode != ModeDiff {
			return fail("output table %s is already the output of plan entry %d; two entries must not write one table", e.Output, prev)
		}
		seen[e.Output.Identity()] = i + 1

		b := e.Backfill
		if b.TotalSegments < 0 || b.TotalSegments > MaxTotalSegments {
			return fail("backfill.total_segments is %d; allowed: 1 to %d", b.TotalSegments, MaxTotalSegments)
		}
		segs, err := b.SegmentList()
		if err != nil {
			return fail("backfill.segments: %v", err)
		}
		if len(segs) > 0 {
			if b.TotalSegments == 0 {
				return fail("backfill.segments is set (%q) without backfill.total_segments; give the total the segments are numbered in", b.Segments)
			}
			for _, s := range segs {
				if s >= b.TotalSegments {
					return fail("backfill segment %d is out of range; with total_segments %d the segments are 0 to %d", s, b.TotalSegments, b.TotalSegments-1)
				}
			}
			if mode == ModeSync && !e.Stream.Disabled && !b.Disabled {
				return fail("backfill.segments splits the backfill across machines, which cannot be combined with streaming in one sync: changes applied from the stream while other machines still copy could be overwritten by their older copies; to share a sync between machines, run the same sync on each of them with a checkpoint table (checkpoint_table; the copy's segments, then the stream's shards, are shared through leases)")
			}
		}
		if b.MaxWCU < 0 {
			return fail("backfill.max_wcu is %v; allowed: 0 (no limit) or a positive number of write units per second", b.MaxWCU)
		}
		if b.MaxRCU < 0 {
			return fail("backfill.max_rcu is %v; allowed: 0 (no limit) or a positive number of read units per second", b.MaxRCU)
		}
		// The filter and the transform are compiled and type-checked
		// before any work: a bad expression names itself and its position.
		if _, err := e.Program(); err != nil {
			return fail("%v", err)
		}
		if e.Backfill.Disabled && e.Stream.Disabled && mode != ModeDiff {
			idle++
		}
	}
	if idle == len(p.Entries) {
		return &Error{Msg: fmt.Sprintf("nothing to do: every plan entry has %s disabled", map[Mode]string{ModeBackfill: "backfill", ModeStream: "stream", ModeSync: "both backfill and stream"}[mode])}
	}
	if p.CheckpointTable != nil {
		if p.CheckpointTable.Table == "" {
			return &Error{Msg: "checkpoint_table.table is required when checkpoint_table is given"}
		}
		if err := validateTable(*p.CheckpointTable); err != nil {
			return &Error{Msg: "checkpoint_table." + err.Error()}
		}
	}
	return nil
}

func validateTable(t Table) error {
	if t.Table != "" && !validTableName(t.Table) {
		return fmt.Errorf("table %q is not a valid DynamoDB table name (3 to 255 characters: letters, digits, '_', '-', '.')", t.Table)
	}
	if t.EndpointURL != "" {
		u, err := url.Parse(t.EndpointURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("endpoint_url %q is not an http:// or https:// URL with a host", t.EndpointURL)
		}
	}
	if t.RoleARN != "" && !strings.HasPrefix(t.RoleARN, "arn:") {
		return fmt.Errorf("role_arn %q is not an ARN (arn:aws:iam::ACCOUNT:role/NAME)", t.RoleARN)
	}
	if t.ExternalID != "" && t.RoleARN == "" {
		return fmt.Errorf("external_id is set without role_arn; it is only used when assuming a role")
	}
	if t.MFASerial != "" && t.RoleARN == "" {
		return fmt.Errorf("mfa_serial is set without role_arn; MFA is used when assuming a role (for a profile, put mfa_serial in the profile)")
	}
	return nil
}

func validTableName(s string) bool {
	if len(s) < 3 || len(s) > 255 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
		default:
			return false
		}
	}
	return true
}
