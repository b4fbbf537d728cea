package lease

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/plan"
)

// Kinds of work; Scope(entry.ID(), KindBackfill) names an entry's scan
// segment leases.
const (
	KindBackfill = "backfill"
	KindStream   = "stream"
)

// SegmentUnit is the unit ID of a scan segment: "segment-00003", the name
// pkg/backfill gives the segment's checkpoint document.
func SegmentUnit(segment int) string { return fmt.Sprintf("segment-%05d", segment) }

// Segments returns the units of a parallel scan in total segments.
func Segments(total int) []Unit {
	us := make([]Unit, total)
	for i := range us {
		us[i] = Unit{ID: SegmentUnit(i)}
	}
	return us
}

func tableRef(t plan.Table) string {
	ref := t.String()
	if t.EndpointURL != "" {
		ref += "@" + t.EndpointURL
	}
	return ref
}

// BackfillFingerprint describes what a backfill's segment leases depend
// on: the two tables and the total number of segments.
func BackfillFingerprint(e plan.Entry, totalSegments int) string {
	return fmt.Sprintf("input=%s output=%s total_segments=%d", tableRef(e.Input), tableRef(e.Output), totalSegments)
}

// StreamFingerprint describes what a stream's shard leases depend on: the
// two tables and the stream ARN (a table deleted and created again has a
// new stream, whose shards are not the old one's).
func StreamFingerprint(e plan.Entry, streamARN string) string {
	return fmt.Sprintf("input=%s output=%s stream=%s", tableRef(e.Input), tableRef(e.Output), streamARN)
}

// Fingerprint returns the fingerprint registered for scope, if any. A
// worker whose plan leaves a choice to the run (total segments chosen from
// the table size) reads it to make the same choice as the first worker.
func (m *Manager) Fingerprint(ctx context.Context, scope string) (string, bool, error) {
	pk, kind, err := splitScope(scope)
	if err != nil {
		return "", false, err
	}
	out, err := m.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(m.table), Key: key(pk, planPrefix+kind), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", false, m.fail("GetItem plan fingerprint of "+scope, err)
	}
	if out.Item == nil {
		return "", false, nil
	}
	fp, _ := out.Item[attrFingerprint].(*types.AttributeValueMemberS)
	if fp == nil {
		return "", true, nil
	}
	return fp.Value, true, nil
}

// CheckFingerprint compares fingerprint with the one registered for scope,
// writing nothing: a different one is the *plan.Error Register would
// return; none registered yet is fine. Commands call it for every entry
// before any entry starts.
func (m *Manager) CheckFingerprint(ctx context.Context, scope, fingerprint string) error {
	pk, kind, err := splitScope(scope)
	if err != nil {
		return err
	}
	stored, ok, err := m.Fingerprint(ctx, scope)
	if err != nil || !ok || stored == fingerprint {
		return err
	}
	return m.fingerprintError(pk, kind, stored, fingerprint)
}
