package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
)

// change is the net effect of a batch's records on one key.
type change struct {
	key     map[string]types.AttributeValue
	item    map[string]types.AttributeValue // nil: delete
	read    bool                            // item comes from the source (KEYS_ONLY, OLD_IMAGE)
	created time.Time
}

// IsTTLDelete reports whether a record is a deletion made by DynamoDB's
// time to live (user identity of type Service, principal
// dynamodb.amazonaws.com).
func IsTTLDelete(r streamtypes.Record) bool {
	return r.EventName == streamtypes.OperationTypeRemove && r.UserIdentity != nil &&
		aws.ToString(r.UserIdentity.Type) == "Service" &&
		aws.ToString(r.UserIdentity.PrincipalId) == "dynamodb.amazonaws.com"
}

// Collapse reduces a shard's batch of records, in order, to the net change
// per key: the latest record of each key wins, so one BatchWriteItem never
// names a key twice and no key is written out of order. Records left out
// (TTL deletions with skipTTL, records created before skipBefore) are
// counted in skipped. viewType decides whether the new image is in the
// record or must be read from the source.
func Collapse(recs []streamtypes.Record, keys dynamo.KeySchema, viewType streamtypes.StreamViewType, skipTTL bool, skipBefore time.Time) (changes []*change, applied, skipped int, err error) {
	index := map[string]int{}
	fromRecord := viewType == streamtypes.StreamViewTypeNewImage || viewType == streamtypes.StreamViewTypeNewAndOldImages
	for _, r := range recs {
		if r.Dynamodb == nil {
			return nil, 0, 0, fmt.Errorf("stream record %s has no data", aws.ToString(r.EventID))
		}
		created := createdOf(r)
		// A record without a creation time is applied: it cannot be
		// shown to be older than the backfill.
		if (skipTTL && IsTTLDelete(r)) || (!skipBefore.IsZero() && !created.IsZero() && created.Before(skipBefore)) {
			skipped++
			continue
		}
		key, err := convert(r.Dynamodb.Keys)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("stream record %s: keys: %w", seqOf(r), err)
		}
		c := &change{key: keys.Key(key), created: created}
		switch {
		case r.EventName == streamtypes.OperationTypeRemove && fromRecord:
		case fromRecord:
			if len(r.Dynamodb.NewImage) == 0 {
				return nil, 0, 0, fmt.Errorf("stream record %s (%s): %w", seqOf(r), r.EventName, errNoImage)
			}
			if c.item, err = convert(r.Dynamodb.NewImage); err != nil {
				return nil, 0, 0, fmt.Errorf("stream record %s: new image: %w", seqOf(r), err)
			}
		default:
			c.read = true
		}
		ks := keys.KeyString(c.key)
		if i, ok := index[ks]; ok {
			changes[i] = c
		} else {
			index[ks] = len(changes)
			changes = append(changes, c)
		}
		applied++
	}
	return changes, applied, skipped, nil
}

// apply writes one batch of a shard's records and returns the last record.
func (e *engine) apply(ctx context.Context, recs []streamtypes.Record) (streamtypes.Record, error) {
	last := recs[len(recs)-1]
	view := e.info.ViewType
	if last.Dynamodb != nil && last.Dynamodb.StreamViewType != "" {
		view = types.StreamViewType(last.Dynamodb.StreamViewType)
	}
	var changes []*change
	var applied, skipped int
	var moves bool
	var err error
	if e.cfg.Program != nil {
		changes, moves, applied, skipped, err = e.programChanges(ctx, recs, view)
		if err != nil {
			return last, err
		}
	} else {
		changes, applied, skipped, err = Collapse(recs, e.info.Keys, streamtypes.StreamViewType(view), e.cfg.SkipTTLDeletes, e.cfg.SkipBefore)
		if err != nil {
			return last, fmt.Errorf("table %s: %w", e.cfg.InputTable, err)
		}
		if err := e.readCurrent(ctx, changes); err != nil {
			return last, err
		}
	}
	e.st.RecordsSkipped.Add(int64(skipped))
	if moves {
		// An item moved to another output key: its old output item is
		// deleted before the new one is written.
		var dels, puts []*change
		for _, c := range changes {
			if c.item == nil {
				dels = append(dels, c)
			} else {
				puts = append(puts, c)
			}
		}
		if err := e.write(ctx, dels); err != nil {
			return last, err
		}
		if err := e.write(ctx, puts); err != nil {
			return last, err
		}
	} else if err := e.write(ctx, changes); err != nil {
		return last, err
	}
	now := e.now()
	e.st.RecordsApplied.Add(int64(applied))
	var newest time.Time
	for _, c := range changes {
		if c.created.After(newest) {
			newest = c.created
		}
	}
	if !newest.IsZero() {
		e.st.LastApplied.Store(newest.UnixMilli())
		e.st.LatencyMillis.Store(max(0, now.Sub(newest).Milliseconds()))
	}
	if e.cfg.OnApplied != nil && len(changes) > 0 {
		out := make([]Applied, len(changes))
		for i, c := range changes {
			out[i] = Applied{Key: c.key, Item: c.item, Created: c.created, At: now}
		}
		e.cfg.OnApplied(out)
	}
	return last, nil
}

// write writes changes whose keys are distinct, so that its chunks may
// be written in any order and concurrently.
func (e *engine) write(ctx context.Context, changes []*change) error {
	reqs := make([]types.WriteRequest, len(changes))
	for i, c := range changes {
		if c.item != nil {
			reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: c.item}}
		} else {
			reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: c.key}}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.cfg.WriteWorkers)
	for start := 0; start < len(reqs); start += dynamo.MaxBatchWrite {
		chunk := reqs[start:min(start+dynamo.MaxBatchWrite, len(reqs))]
		g.Go(func() error {
			_, err := e.writer.Write(gctx, chunk)
			return err
		})
	}
	return g.Wait()
}

// readCurrent fills the changes of KEYS_ONLY and OLD_IMAGE streams with
// the item as it is now in the source (consistent read); an item gone is
// a delete.
func (e *engine) readCurrent(ctx context.Context, changes []*change) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, c := range changes {
		if !c.read {
			continue
		}
		g.Go(func() error {
			var out *dynamodb.GetItemOutput
			err := e.pacer().Call(gctx, func() error {
				var err error
				out, err = e.cfg.Source.GetItem(gctx, &dynamodb.GetItemInput{
					TableName:              aws.String(e.cfg.InputTable),
					Key:                    c.key,
					ConsistentRead:         aws.Bool(true),
					ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
				})
				return err
			})
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				return &dynamo.TableError{Table: e.cfg.InputTable, Op: "GetItem", Err: err}
			}
			if out.ConsumedCapacity != nil {
				e.st.ConsumedRCU.Add(aws.ToFloat64(out.ConsumedCapacity.CapacityUnits))
			}
			if len(out.Item) > 0 {
				c.item = out.Item
			}
			return nil
		})
	}
	return g.Wait()
}

// convert turns a stream image into DynamoDB attribute values with
// attributevalue.FromDynamoDBStreamsMap, after repairing one DynamoDB
// Local quirk: it encodes an empty map attribute as a bare {} (no "M"
// tag), which the SDK decodes as a nil or unknown union member.
func convert(m map[string]streamtypes.AttributeValue) (map[string]types.AttributeValue, error) {
	return attributevalue.FromDynamoDBStreamsMap(fixEmptyMaps(m))
}

func fixEmptyMaps(m map[string]streamtypes.AttributeValue) map[string]streamtypes.AttributeValue {
	out := make(map[string]streamtypes.AttributeValue, len(m))
	for k, v := range m {
		out[k] = fixEmpty(v)
	}
	return out
}

func fixEmpty(v streamtypes.AttributeValue) streamtypes.AttributeValue {
	switch t := v.(type) {
	case nil:
		return &streamtypes.AttributeValueMemberM{Value: map[string]streamtypes.AttributeValue{}}
	case *streamtypes.UnknownUnionMember:
		if t.Tag == "" || len(t.Value) == 0 || string(t.Value) == "{}" {
			return &streamtypes.AttributeValueMemberM{Value: map[string]streamtypes.AttributeValue{}}
		}
		return v
	case *streamtypes.AttributeValueMemberM:
		return &streamtypes.AttributeValueMemberM{Value: fixEmptyMaps(t.Value)}
	case *streamtypes.AttributeValueMemberL:
		l := make([]streamtypes.AttributeValue, len(t.Value))
		for i, x := range t.Value {
			l[i] = fixEmpty(x)
		}
		return &streamtypes.AttributeValueMemberL{Value: l}
	}
	return v
}
