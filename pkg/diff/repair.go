package diff

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
)

// Kinds of difference, as the report names them.
const (
	KindMissing   = "missing"   // in the master, not in the slave (+)
	KindDiffering = "differing" // in both, different (*)
	KindExtra     = "extra"     // in the slave, not in the master (-)
	// KindFailed is a master item the filter or transform failed on (an
	// evaluation error, a bad output key, or one of several master items
	// mapping to one output key) (!): neither compared nor repaired. Its
	// report line carries the master item's key, not an output key.
	KindFailed = "failed"
)

// Actions taken on a difference, as the report names them.
const (
	ActionNone    = "none"    // dry run for this kind
	ActionWritten = "written" // repaired with PutItem
	ActionDeleted = "deleted" // repaired with DeleteItem
	ActionSkipped = "skipped" // changed during diff (condition failed), or a newer slave version
	ActionError   = "error"   // the repair failed
)

var sigils = map[string]string{KindMissing: "+", KindDiffering: "*", KindExtra: "-", KindFailed: "!"}

// ReportLine is one line of the --report file.
type ReportLine struct {
	Kind       string   `json:"kind"`
	Slave      string   `json:"slave"`
	Key        any      `json:"key"`
	Attributes []string `json:"attributes,omitempty"`
	Action     string   `json:"action"`
	Reason     string   `json:"reason,omitempty"`
}

// candidate is one difference found in a chunk.
type candidate struct {
	kind string
	key  item // the output key (the slave's)
	// inKey is the input key of the master item (the output key without
	// a transform); nil for an extra item.
	inKey  item
	master item // the master item as the migration writes it; nil when absent
	slave  item // nil when absent
	attrs  []string
}

// checkMasterChunk looks the master items up in every slave, as the
// program (if any) makes them: filtered, transformed, by output key.
func (d *Differ) checkMasterChunk(ctx context.Context, items []item) error {
	type projected struct{ in, out item }
	var ps []projected
	var keys []item
	var failed, filtered int64
	seen := map[string]bool{}
	for _, m := range items {
		o, keep, err := d.project(m)
		switch {
		case err != nil:
			failed++
			d.logFailed(d.slaves, d.keys.Key(m), err)
			continue
		case !keep:
			filtered++
			continue
		}
		ps = append(ps, projected{in: d.keys.Key(m), out: o})
		if ks := d.out.KeyString(o); !seen[ks] {
			seen[ks] = true
			keys = append(keys, d.out.Key(o))
		}
	}
	for _, s := range d.slaves {
		s.failed.Add(failed)
		s.filtered.Add(filtered)
		got, err := d.batchGet(ctx, s.Table, keys, false, s.st, s.addRCU)
		if err != nil {
			return err
		}
		var cands []candidate
		for _, p := range ps {
			key := d.out.Key(p.out)
			sv, ok := got[d.out.KeyString(p.out)]
			switch {
			case !ok:
				cands = append(cands, candidate{kind: KindMissing, key: key, inKey: p.in, master: p.out})
			default:
				if attrs := Compare(p.out, sv, d.ignore); attrs != nil {
					cands = append(cands, candidate{kind: KindDiffering, key: key, inKey: p.in, master: p.out, slave: sv, attrs: attrs})
				} else {
					s.st.Matching.Add(1)
					if d.cfg.Verbose && s.log.Core().Enabled(zap.DebugLevel) {
						s.log.Debug("= " + d.out.FormatKey(p.out))
					}
				}
			}
		}
		s.st.Scanned.Add(int64(len(items)))
		if len(cands) > 0 {
			if err := d.settle(ctx, s, cands); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSlaveChunk looks slave items up in the master to find extra ones:
// an item is extra unless the master item it names (inputKeyOf) exists,
// passes the filter and maps to the item's key.
func (d *Differ) checkSlaveChunk(ctx context.Context, s *slave, items []item) error {
	ins := make([]item, len(items))
	var want []item
	for i, it := range items {
		if k, ok := d.inputKeyOf(it); ok {
			ins[i] = k
			want = append(want, k)
		}
	}
	got, err := d.batchGetAll(ctx, d.cfg.Master, want, false, s)
	if err != nil {
		return err
	}
	var cands []candidate
	for i, it := range items {
		if ins[i] != nil {
			if m, ok := got[d.keys.KeyString(ins[i])]; ok {
				o, keep, err := d.project(m)
				if err != nil {
					// Counted when the master pass reads it.
					s.log.Debug(fmt.Sprintf("%s: not extra: the program fails on the master item it was copied from", d.out.FormatKey(it)))
					continue
				}
				if keep && d.out.KeyString(o) == d.out.KeyString(it) {
					continue
				}
			}
		}
		cands = append(cands, candidate{kind: KindExtra, key: d.out.Key(it), slave: it})
	}
	if len(cands) == 0 {
		return nil
	}
	return d.settle(ctx, s, cands)
}

func (s *slave) addRCU(u float64) { s.st.ConsumedRCU.Add(u) }

func (d *Differ) repairs(kind string) bool {
	switch kind {
	case KindMissing:
		return d.cfg.WriteMissing
	case KindDiffering:
		return d.cfg.WriteDiffering
	case KindExtra:
		return d.cfg.DeleteExtra
	}
	return false
}

// settle counts, reports and (when asked) repairs the differences of one
// chunk. Differences to repair are read again from both sides with
// consistent reads first, and only what still differs is repaired.
func (d *Differ) settle(ctx context.Context, s *slave, cands []candidate) error {
	var fix []candidate
	for _, c := range cands {
		if d.repairs(c.kind) {
			fix = append(fix, c)
		} else {
			d.found(s, c, ActionNone, "")
		}
	}
	if len(fix) == 0 {
		return nil
	}
	keys := make([]item, len(fix))
	inKeys := make([]item, len(fix))
	for i, c := range fix {
		keys[i], inKeys[i] = c.key, c.inKey
	}
	reads, err := d.reread(ctx, s, keys, inKeys)
	if err != nil {
		return err
	}
	rp := d.newRepairs()
	for i, c := range fix {
		r := reads[i]
		m, mok := r.master, r.master != nil
		sv, sok := r.slave, r.slave != nil
		if r.failed != nil && !mok {
			// Changed during diff so that the program fails on it.
			s.failed.Add(1)
			d.logFailed([]*slave{s}, c.inKey, r.failed)
			continue
		}
		if c.kind == KindExtra && r.namedFailed {
			s.log.Debug(fmt.Sprintf("%s: not extra on re-read: the program fails on the master item it was copied from", d.out.FormatKey(c.key)))
			continue
		}
		var now candidate
		switch {
		case c.kind == KindExtra:
			if mok || !sok {
				// The master has the item now, or the slave lost it: not
				// extra (the master pass accounts for items in the master).
				d.log.Debug(fmt.Sprintf("%s: no longer extra on re-read", d.out.FormatKey(c.key)))
				continue
			}
			now = candidate{kind: KindExtra, key: c.key, slave: sv}
		case !mok && !sok:
			s.st.Matching.Add(1) // both gone: in sync after all
			continue
		case mok && !sok:
			now = candidate{kind: KindMissing, key: c.key, inKey: r.inKey, master: m}
		case !mok && sok:
			// The master lost the item since the scan: leave it to the next
			// run rather than act on a moving target.
			d.found(s, c, ActionSkipped, "changed during diff: the master no longer has the item")
			continue
		default:
			attrs := Compare(m, sv, d.ignore)
			if attrs == nil {
				s.st.Matching.Add(1) // the scan was stale
				continue
			}
			now = candidate{kind: KindDiffering, key: c.key, inKey: r.inKey, master: m, slave: sv, attrs: attrs}
		}
		if !d.repairs(now.kind) {
			d.found(s, now, ActionNone, "")
			continue
		}
		if err := rp.start(ctx, s, now); err != nil {
			return err
		}
	}
	return rp.wait()
}

// found counts a difference, logs it and writes its report line.
func (d *Differ) found(s *slave, c candidate, action, reason string) {
	switch c.kind {
	case KindMissing:
		s.st.Missing.Add(1)
	case KindDiffering:
		s.st.Differing.Add(1)
	case KindExtra:
		s.st.Extra.Add(1)
	}
	switch action {
	case ActionWritten:
		s.st.Repaired.Add(1)
	case ActionDeleted:
		s.st.Deleted.Add(1)
	case ActionSkipped:
		s.st.Conflicts.Add(1)
	case ActionError:
		s.st.Errors.Add(1)
	}
	keyText := d.out.FormatKey(c.key)
	switch {
	case action == ActionError:
		s.log.Warn(fmt.Sprintf("! %s: %s not repaired: %s", keyText, c.kind, reason))
	case action == ActionSkipped:
		s.log.Info(fmt.Sprintf("%s %s: skipped (%s)", sigils[c.kind], keyText, reason))
	case d.cfg.Verbose:
		msg := sigils[c.kind] + " " + keyText + " " + c.kind
		if len(c.attrs) > 0 {
			msg += " in " + strings.Join(c.attrs, ", ")
		}
		if action != ActionNone {
			msg += ": " + action
		}
		s.log.Info(msg)
	}
	if d.report != nil {
		d.reportMu.Lock()
		_ = d.report.Encode(ReportLine{Kind: c.kind, Slave: s.Label, Key: keyJSON(c.key), Attributes: c.attrs, Action: action, Reason: reason})
		d.reportMu.Unlock()
	}
}

// repair makes one conditional write. A failed condition is counted as
// skipped; a table that disappeared is fatal; other failures are counted
// as errors.
func (d *Differ) repair(ctx context.Context, s *slave, c candidate) error {
	cond, ok := d.repairCondition(s, c)
	if !ok {
		return nil
	}
	op := "PutItem"
	var want item // what the slave holds once the repair is done; nil: absent
	if c.kind == KindExtra {
		op = "DeleteItem"
	} else {
		want = d.replacement(c.master, c.slave)
	}
	err := d.write(ctx, s, c, op, cond, want)
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		if c.kind == KindExtra {
			d.found(s, c, ActionDeleted, "")
			return nil
		}
		return d.confirm(ctx, s, c, want)
	case errors.As(err, &ccf):
		// The condition failed: either someone else changed the item, or
		// an earlier attempt of this very write was applied and its answer
		// lost (a dropped connection), and the retry found the item
		// already repaired. Only the first is a conflict.
		done, rerr := d.landed(ctx, s, c.key, ccf, want)
		switch {
		case rerr != nil && (ctx.Err() != nil || dynamo.IsNotFound(rerr)):
			return rerr
		case rerr != nil:
			d.found(s, c, ActionError, op+": condition failed and the item could not be read again: "+dynamo.Describe(rerr))
		case !done:
			d.found(s, c, ActionSkipped, "changed during diff")
		case c.kind == KindExtra:
			s.log.Debug(fmt.Sprintf("%s: DeleteItem condition failed, but the item is already gone (an earlier attempt was applied)", d.out.FormatKey(c.key)))
			d.found(s, c, ActionDeleted, "")
		default:
			s.log.Debug(fmt.Sprintf("%s: PutItem condition failed, but the slave already holds the master's item (an earlier attempt was applied)", d.out.FormatKey(c.key)))
			return d.confirm(ctx, s, c, want)
		}
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case dynamo.IsNotFound(err):
		return err
	default:
		d.found(s, c, ActionError, op+": "+dynamo.Describe(err))
		return nil
	}
}

// repairCondition is the condition of the repair of c: the slave item is
// still the one diff read (or its version, with VersionAttribute), or
// still absent. ok is false when the repair is not to be made (a newer
// slave version, an item too large for a condition): it was reported.
func (d *Differ) repairCondition(s *slave, c candidate) (cond condition, ok bool) {
	if c.kind == KindMissing {
		return condition{expr: "attribute_not_exists(#k)", names: map[string]string{"#k": d.out.Hash}}, true
	}
	if d.cfg.VersionAttribute != "" {
		if older, why := d.olderVersion(c.master, c.slave); older {
			d.found(s, c, ActionSkipped, why)
			return condition{}, false
		}
		return versionCondition(d.cfg.VersionAttribute, c.slave), true
	}
	cond, err := itemCondition(c.slave)
	if err != nil {
		d.found(s, c, ActionError, fmt.Sprintf("%v; compare a version attribute instead (%s)", err, d.cfg.Names.Of("VersionAttribute")))
		return condition{}, false
	}
	return cond, true
}

// write sends the repair's conditional PutItem (of want) or DeleteItem
// (op), through the retry pacer, and counts the write units it used.
func (d *Differ) write(ctx context.Context, s *slave, c candidate, op string, cond condition, want item) error {
	var consumed *types.ConsumedCapacity
	err := d.retry(ctx, s.st, s.Name, op, func() error {
		if c.kind == KindExtra {
			out, err := s.Client.DeleteItem(ctx, conditionalDelete(s.Name, c.key, cond), countRetries(s.st))
			if out != nil {
				consumed = out.ConsumedCapacity
			}
			return err
		}
		out, err := s.Client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                           aws.String(s.Name),
			Item:                                want,
			ConditionExpression:                 aws.String(cond.expr),
			ExpressionAttributeNames:            cond.names,
			ExpressionAttributeValues:           cond.values,
			ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}, countRetries(s.st))
		if out != nil {
			consumed = out.ConsumedCapacity
		}
		return err
	})
	if consumed != nil {
		s.st.ConsumedWCU.Add(aws.ToFloat64(consumed.CapacityUnits))
	}
	return err
}

// confirm settles a put that reached the slave (c is missing or
// differing, want what the slave now holds). The master is read again
// with a consistent read: if it deleted or changed the item since diff's
// re-read, the write raced with that change (for a missing item, the
// replication's delete of the absent slave item was a no-op before the
// put). A write of an item the master deleted is undone with a delete
// conditional on the slave item being exactly what diff wrote; either way
// the repair counts as skipped (changed during diff), not written. A
// change the master makes after this read reaches the slave through the
// replication, after the put.
func (d *Differ) confirm(ctx context.Context, s *slave, c candidate, want item) error {
	got, err := d.batchGet(ctx, d.cfg.Master, []item{c.inKey}, true, s.st, s.addRCU)
	switch {
	case err != nil && (ctx.Err() != nil || dynamo.IsNotFound(err)):
		return err
	case err != nil:
		d.found(s, c, ActionError, "written, but the master could not be read again to confirm it still holds that item: "+dynamo.Describe(err))
		return nil
	}
	m, ok := got[d.keys.KeyString(c.inKey)]
	if ok {
		// With a program: the master item must still pass the filter and
		// map to this key; otherwise it counts as deleted.
		var keep bool
		var perr error
		m, keep, perr = d.project(m)
		ok = perr == nil && keep && d.out.KeyString(m) == d.out.KeyString(c.key)
	}
	if ok {
		if Compare(c.master, m, d.ignore) == nil {
			d.found(s, c, ActionWritten, "")
			return nil
		}
		d.found(s, c, ActionSkipped, "changed during diff: the master changed the item while it was repaired (the slave holds the master's previous item until the change is replicated)")
		return nil
	}
	// The master deleted the item: take the write back, unless the slave
	// item changed since (then someone else, the replication, wrote it).
	cond, err := itemCondition(want)
	if err != nil && d.cfg.VersionAttribute != "" {
		cond, err = versionCondition(d.cfg.VersionAttribute, want), nil
	}
	if err != nil {
		d.found(s, c, ActionError, "written, but the master deleted the item meanwhile and the write cannot be undone: "+err.Error())
		return nil
	}
	err = d.write(ctx, s, candidate{kind: KindExtra, key: c.key}, "DeleteItem", cond, nil)
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
	case errors.As(err, &ccf):
		gone, rerr := d.landed(ctx, s, c.key, ccf, nil)
		switch {
		case rerr != nil && (ctx.Err() != nil || dynamo.IsNotFound(rerr)):
			return rerr
		case rerr != nil:
			d.found(s, c, ActionError, "written, but the master deleted the item meanwhile; undoing the write failed its condition and the item could not be read again: "+dynamo.Describe(rerr))
			return nil
		case !gone:
			d.found(s, c, ActionSkipped, "changed during diff: the master deleted the item while it was repaired, and the slave item changed after the write (not undone)")
			return nil
		}
	case ctx.Err() != nil:
		return ctx.Err()
	case dynamo.IsNotFound(err):
		return err
	default:
		d.found(s, c, ActionError, "written, but the master deleted the item meanwhile and undoing the write failed: "+dynamo.Describe(err))
		return nil
	}
	s.log.Debug(fmt.Sprintf("%s: the master deleted the item while it was written to the slave; the write was undone", d.out.FormatKey(c.key)))
	d.found(s, c, ActionSkipped, "changed during diff: the master deleted the item while it was repaired; the write was undone")
	return nil
}

// landed reports whether the slave item, after a repair write failed its
// condition, is what the repair meant to leave: want (compared as the
// diff compares, ignored attributes left out), or no item when want is
// nil (a delete). The item comes from the exception (the write asks for
// ALL_OLD); when it carries none, which for a server honouring ALL_OLD
// means there is no item, a consistent read confirms it.
func (d *Differ) landed(ctx context.Context, s *slave, key item, ccf *types.ConditionalCheckFailedException, want item) (bool, error) {
	now := ccf.Item
	if len(now) == 0 {
		got, err := d.batchGet(ctx, s.Table, []item{key}, true, s.st, s.addRCU)
		if err != nil {
			return false, err
		}
		now = got[d.out.KeyString(key)]
	}
	if want == nil {
		return len(now) == 0, nil
	}
	return len(now) > 0 && Compare(want, now, d.ignore) == nil, nil
}

// replacement is the item written over the slave: the master's, without
// its ignored attributes, keeping the slave's ignored attributes.
func (d *Differ) replacement(master, slave item) item {
	if d.ignore.Empty() {
		return master
	}
	out := make(item, len(master))
	for k, v := range master {
		if !d.ignore.Ignored(k) {
			out[k] = v
		}
	}
	for k, v := range slave {
		if d.ignore.Ignored(k) {
			out[k] = v
		}
	}
	return out
}

type condition struct {
	expr   string
	names  map[string]string
	values map[string]types.AttributeValue
}

// maxExpression is DynamoDB's limit on the length of an expression.
const maxExpression = 4096

// itemCondition holds when the item still has every attribute with the
// value diff read (equality on sets, maps and lists compares whole values).
//
// It is written out rather than built with the SDK's expression builder:
// the builder reads "[" in a name as a list index even with
// NameNoDotSplit ("a[1]" becomes #0[1] with #0 = a), while a repair must
// name any attribute exactly; every name here is a placeholder for the
// attribute's whole name (TestConditionNamesAreExact).
func itemCondition(it item) (condition, error) {
	c := condition{names: map[string]string{}, values: map[string]types.AttributeValue{}}
	var b strings.Builder
	i := 0
	for name, v := range it {
		if i > 0 {
			b.WriteString(" AND ")
		}
		n, val := fmt.Sprintf("#a%d", i), fmt.Sprintf(":v%d", i)
		c.names[n] = name
		if _, isNull := v.(*types.AttributeValueMemberNULL); isNull {
			fmt.Fprintf(&b, "attribute_type(%s, :null)", n)
			c.values[":null"] = &types.AttributeValueMemberS{Value: "NULL"}
		} else {
			fmt.Fprintf(&b, "%s = %s", n, val)
			c.values[val] = v
		}
		i++
	}
	c.expr = b.String()
	if len(c.expr) > maxExpression {
		return condition{}, fmt.Errorf("the item has %d attributes, too many for a condition on each (the expression would exceed 4 KB)", len(it))
	}
	return c, nil
}

// versionCondition holds when the version attribute is still what diff
// read (or still absent).
func versionCondition(attr string, slave item) condition {
	c := condition{names: map[string]string{"#ver": attr}}
	v, ok := slave[attr]
	if !ok {
		c.expr = "attribute_not_exists(#ver)"
		return c
	}
	c.expr = "#ver = :ver"
	c.values = map[string]types.AttributeValue{":ver": v}
	return c
}

// olderVersion reports whether the master's version is older than the
// slave's, in which case the slave must not be overwritten.
func (d *Differ) olderVersion(master, slave item) (bool, string) {
	if master == nil || slave == nil {
		return false, ""
	}
	attr := d.cfg.VersionAttribute
	mv, sv := master[attr], slave[attr]
	if sv == nil {
		return false, ""
	}
	if mv == nil {
		return true, fmt.Sprintf("the slave has version attribute %s and the master none", attr)
	}
	mn, mok := mv.(*types.AttributeValueMemberN)
	sn, sok := sv.(*types.AttributeValueMemberN)
	if mok && sok {
		mr, ok1 := new(big.Rat).SetString(mn.Value)
		sr, ok2 := new(big.Rat).SetString(sn.Value)
		if ok1 && ok2 && mr.Cmp(sr) < 0 {
			return true, fmt.Sprintf("the slave's %s %s is newer than the master's %s", attr, sn.Value, mn.Value)
		}
		return false, ""
	}
	ms, mok := mv.(*types.AttributeValueMemberS)
	ss, sok := sv.(*types.AttributeValueMemberS)
	if mok && sok && ms.Value < ss.Value {
		return true, fmt.Sprintf("the slave's %s %q is newer than the master's %q", attr, ss.Value, ms.Value)
	}
	return false, ""
}

// repairs runs the repairs of one chunk concurrently, at most
// Config.Writers at once across the whole diff (d.writes), and keeps the
// first fatal error.
type repairs struct {
	d     *Differ
	wg    sync.WaitGroup
	mu    sync.Mutex
	fatal error
}

func (d *Differ) newRepairs() *repairs { return &repairs{d: d} }

// start repairs c in the background once a write slot is free; a
// cancelled ctx waits for the repairs started and returns its error.
func (r *repairs) start(ctx context.Context, s *slave, c candidate) error {
	select {
	case r.d.writes <- struct{}{}:
	case <-ctx.Done():
		r.wg.Wait()
		return ctx.Err()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() { <-r.d.writes }()
		if err := r.d.repair(ctx, s, c); err != nil {
			r.mu.Lock()
			if r.fatal == nil {
				r.fatal = err
			}
			r.mu.Unlock()
		}
	}()
	return nil
}

// wait waits for every repair started and returns the first fatal error.
func (r *repairs) wait() error {
	r.wg.Wait()
	return r.fatal
}

// conditionalDelete is the DeleteItem of a repair: conditional, returning
// the item as it is when the condition fails (see landed).
func conditionalDelete(table string, key item, cond condition) *dynamodb.DeleteItemInput {
	return &dynamodb.DeleteItemInput{
		TableName:                           aws.String(table),
		Key:                                 key,
		ConditionExpression:                 aws.String(cond.expr),
		ExpressionAttributeNames:            cond.names,
		ExpressionAttributeValues:           cond.values,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}
