package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// ErrItemFailed is wrapped by the error of a stream that stopped because
// the filter or transform failed on a changed item (without
// SkipFailedItems). The batch is not checkpointed: the stream, run again
// with a corrected program (or SkipFailedItems), applies it.
var ErrItemFailed = errors.New("the filter or transform failed on a changed item")

// hasOldImages reports whether a view type's records carry the old image.
func hasOldImages(v types.StreamViewType) bool {
	return v == types.StreamViewTypeNewAndOldImages || v == types.StreamViewTypeOldImage
}

// CheckProgram checks a program (Config.Program) against the output
// table's key and the input's stream, before anything is written: the
// output key must be one the transform can produce, and when it is
// computed from anything but the input key attributes, the records must
// carry old images, the only way to find the output item of a REMOVE (or
// of the state a MODIFY leaves). Its errors are *plan.Error (exit 2).
// sync checks it before its copy starts.
func CheckProgram(cfg Config, info StreamInfo, out dynamo.KeySchema) error {
	return programError(checkProgram(cfg, info, out))
}

func checkProgram(cfg Config, info StreamInfo, out dynamo.KeySchema) error {
	p := cfg.Program
	if p == nil || !p.HasTransform() {
		return dynamo.CheckSameKeys(cfg.InputTable, info.Keys, cfg.OutputTable, out)
	}
	if err := p.CheckOutputKey(transform.KeySchema(out)); err != nil {
		return fmt.Errorf("output table %s has the key %s: %v", cfg.OutputTable, out, err)
	}
	if !p.KeyDependsOnlyOn(info.Keys.Names(), out.Names()) && !hasOldImages(info.ViewType) {
		return fmt.Errorf("the transform computes the output key (%s) from attributes other than the input key (%s), so the output item of a deleted or changed input item can only be found from its old image, and the stream of %s (view type %s) has none: enable a stream with old images (NEW_AND_OLD_IMAGES, or OLD_IMAGE) with\n  %s\n(for sync, before the copy starts), or compute the output key from the input key attributes alone",
			out, info.Keys, cfg.InputTable, info.ViewType, EnableHint(cfg.InputTable))
	}
	return nil
}

// keyChanges is what a batch's records say about one input key.
type keyChanges struct {
	key     map[string]types.AttributeValue // the input key
	olds    []map[string]types.AttributeValue
	final   map[string]types.AttributeValue // the latest new image; nil: removed
	read    bool                            // final must be read from the source
	created time.Time
}

// programChanges turns a shard's batch of records into the writes of the
// output under the program (Config.Program): for each input key, the
// output items its old states map to are deleted, and its latest state,
// if the filter keeps it, is written transformed. Deletes and puts of
// one output key are folded into one write, the put winning (the state
// it comes from is the latest). moves reports a change whose output key
// differs from the one it leaves: its deletes are then written before
// its puts.
//
// Records carry old images (NEW_AND_OLD_IMAGES, OLD_IMAGE), or the output
// key depends only on the input key (checked at start) and is computed
// from the record's keys.
func (e *engine) programChanges(ctx context.Context, recs []streamtypes.Record, view types.StreamViewType) (changes []*change, moves bool, applied, skipped int, err error) {
	order, applied, skipped, err := e.keyChangesOf(recs, view)
	if err != nil {
		return nil, false, 0, 0, err
	}
	if err := e.readFinal(ctx, order); err != nil {
		return nil, false, 0, 0, err
	}
	changes, moves, err = e.outputChanges(order)
	if err != nil {
		return nil, false, 0, 0, err
	}
	return changes, moves, applied, skipped, nil
}

// keyChangesOf gathers a batch's records by input key, in the order the
// keys are first met: the old states of each key (whose output items a
// change may delete) and its latest state (from the new image, or to be
// read from the table when the view type has none).
func (e *engine) keyChangesOf(recs []streamtypes.Record, view types.StreamViewType) (order []*keyChanges, applied, skipped int, err error) {
	fromRecord := view == types.StreamViewTypeNewImage || view == types.StreamViewTypeNewAndOldImages
	index := map[string]*keyChanges{}
	for _, r := range recs {
		if r.Dynamodb == nil {
			return nil, 0, 0, fmt.Errorf("stream record %s has no data", aws.ToString(r.EventID))
		}
		created := createdOf(r)
		if (e.cfg.SkipTTLDeletes && IsTTLDelete(r)) || (!e.cfg.SkipBefore.IsZero() && !created.IsZero() && created.Before(e.cfg.SkipBefore)) {
			skipped++
			continue
		}
		key, err := convert(r.Dynamodb.Keys)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("stream record %s: keys: %w", seqOf(r), err)
		}
		key = e.info.Keys.Key(key)
		ks := e.info.Keys.KeyString(key)
		kc := index[ks]
		if kc == nil {
			kc = &keyChanges{key: key}
			index[ks] = kc
			order = append(order, kc)
		}
		kc.created = created
		switch {
		case len(r.Dynamodb.OldImage) > 0:
			old, err := convert(r.Dynamodb.OldImage)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("stream record %s: old image: %w", seqOf(r), err)
			}
			kc.olds = append(kc.olds, old)
		case !hasOldImages(view) && len(kc.olds) == 0:
			// The output key depends on the input key alone.
			kc.olds = append(kc.olds, key)
		}
		kc.final, kc.read = nil, false
		switch {
		case r.EventName == streamtypes.OperationTypeRemove && fromRecord:
		case fromRecord:
			if len(r.Dynamodb.NewImage) == 0 {
				return nil, 0, 0, fmt.Errorf("stream record %s (%s): %w", seqOf(r), r.EventName, errNoImage)
			}
			if kc.final, err = convert(r.Dynamodb.NewImage); err != nil {
				return nil, 0, 0, fmt.Errorf("stream record %s: new image: %w", seqOf(r), err)
			}
		default:
			kc.read = true
		}
		applied++
	}
	return order, applied, skipped, nil
}

// outputChanges maps the input keys' changes to one change per output
// key, in the order first met: a put of the transformed latest state when
// the filter keeps it, else a delete of the output items its states map
// to. moves is true when a put's output key differs from an old state's
// (its delete must reach the table before the put).
func (e *engine) outputChanges(order []*keyChanges) (changes []*change, moves bool, err error) {
	p, outKeys := e.cfg.Program, e.outKeys
	deletes := map[string]*change{}
	puts := map[string]*change{}
	var keys []string // output keys, in the order first met
	add := func(m map[string]*change, c *change) string {
		ks := dynamo.KeySchema(outKeys).KeyString(c.key)
		if deletes[ks] == nil && puts[ks] == nil {
			keys = append(keys, ks)
		}
		m[ks] = c
		return ks
	}
	for _, kc := range order {
		putKey := ""
		if kc.final != nil {
			c, keep, err := e.transformFinal(kc)
			if err != nil {
				return nil, false, err
			}
			switch {
			case c != nil && keep:
				putKey = add(puts, c)
			case c != nil:
				add(deletes, c) // left the filter: its output item goes
			}
		}
		for _, old := range kc.olds {
			k, err := p.OutputKey(old, outKeys)
			if err != nil {
				// That state had no output item (its key could not be
				// computed, so it was never written).
				continue
			}
			if ks := add(deletes, &change{key: k, created: kc.created}); putKey != "" && ks != putKey {
				moves = true
			}
		}
	}
	changes = make([]*change, 0, len(keys))
	for _, ks := range keys {
		if c := puts[ks]; c != nil {
			changes = append(changes, c)
		} else {
			changes = append(changes, deletes[ks])
		}
	}
	return changes, moves, nil
}

// transformFinal applies the program to the latest state of an input key:
// a put of the transformed item (keep), or a delete of the output item of
// a state the filter rejects (!keep). An item the program fails on is
// logged and counted; it stops the stream unless SkipFailedItems (nil,
// false, nil: nothing to write for it).
func (e *engine) transformFinal(kc *keyChanges) (*change, bool, error) {
	p := e.cfg.Program
	out, keep, err := p.Apply(kc.final)
	if err == nil && keep && p.HasTransform() {
		err = transform.CheckKeys(out, e.outKeys)
	}
	if err != nil {
		e.st.RecordsFailed.Add(1)
		e.log.Error("item failed: "+err.Error(), zap.String("key", e.info.Keys.FormatKey(kc.key)))
		if !e.cfg.SkipFailedItems {
			return nil, false, fmt.Errorf("table %s, key %s: %w: %v; the batch is not checkpointed: run again with a corrected transform, or skip such items (%s)",
				e.cfg.InputTable, e.info.Keys.FormatKey(kc.key), ErrItemFailed, err, e.cfg.Names.Of("SkipFailedItems"))
		}
		return nil, false, nil
	}
	if keep {
		return &change{key: dynamo.KeySchema(e.outKeys).Key(out), item: out, created: kc.created}, true, nil
	}
	k, err := p.OutputKey(kc.final, e.outKeys)
	if err != nil {
		return nil, false, nil // never written: nothing to delete
	}
	return &change{key: k, created: kc.created}, false, nil
}

// readFinal reads from the source the latest state of the keys whose
// records carry no new image (KEYS_ONLY, OLD_IMAGE).
func (e *engine) readFinal(ctx context.Context, kcs []*keyChanges) error {
	var reads []*change
	var of []*keyChanges
	for _, kc := range kcs {
		if kc.read {
			reads = append(reads, &change{key: kc.key, read: true})
			of = append(of, kc)
		}
	}
	if len(reads) == 0 {
		return nil
	}
	if err := e.readCurrent(ctx, reads); err != nil {
		return err
	}
	for i, c := range reads {
		of[i].final = c.item
	}
	return nil
}

// programError makes a start check's failure a usage error (exit 2).
func programError(err error) error {
	if err == nil {
		return nil
	}
	return &plan.Error{Msg: err.Error()}
}
