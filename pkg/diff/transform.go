package diff

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// A diff with a filter and transform (Config.Program) compares each slave
// with what the migration would have written: every master item is run
// through the program as it is read (one evaluation per item, no extra
// reads), the items the filter rejects are left out, and the others are
// matched with slave items by their output key, the slaves' key schema.
//
// A difference is confirmed, as without a program, by consistent reads:
// the master by the item's input key (kept beside the output key in the
// merge's records), the program applied again, and the slave by the
// output key. An extra slave item is one that no master item maps to;
// to confirm that, diff must find the master item the slave item could
// have been copied from. When the output item keeps an unchanged copy of
// every master key attribute (passed through, renamed, or set by a plain
// selection; transform.Program.Carrier), the slave item names it: diff
// reads that master item and the slave item is extra unless it exists,
// passes the filter and maps to the same output key. When the output
// drops the master key, a slave item does not say where it came from:
// extra items are then found by the merge's scans and confirmed on the
// slave alone, so a master item written during the scans can make one
// wrongly reported; for that reason --delete-extra and the lookup of
// extra items (which needs the master key) are refused.

// FailedItemsError ends a run in which master items failed the filter or
// transform, unless Config.SkipFailedItems.
type FailedItemsError struct {
	Count int64
	// Option is how the caller spells SkipFailedItems.
	Option string
}

func (e *FailedItemsError) Error() string {
	return fmt.Sprintf("%d master item(s) could not be filtered or transformed (logged with their keys); skipping such items (%s) accepts that", e.Count, e.Option)
}

// Failed is the number of master items that failed the program (the
// largest count of any slave: each slave's line counts them).
func (r Result) Failed() int64 {
	var n int64
	for _, s := range r.Slaves {
		n = max(n, s.Failed)
	}
	return n
}

// outputKeys is the program's view of the slaves' key schema.
func outputKeys(k dynamo.KeySchema) transform.KeySchema {
	return transform.KeySchema{Hash: k.Hash, HashType: k.HashType, Range: k.Range, RangeType: k.RangeType}
}

// checkSlaveKeys checks the key schema of slave i and sets d.out: the
// master's key without a transform, or with one, the key every slave
// shares.
func (d *Differ) checkSlaveKeys(i int, s Table, sk dynamo.KeySchema) error {
	if d.prg == nil || !d.prg.HasTransform() {
		if err := dynamo.CheckSameKeys(d.cfg.Master.Label, d.keys, s.Label, sk); err != nil {
			return &plan.Error{Msg: err.Error()}
		}
		d.out = d.keys
		return nil
	}
	if i > 0 && sk != d.out {
		return &plan.Error{Msg: fmt.Sprintf("with a transform every slave must have the same key schema: %s has %s, %s has %s",
			d.cfg.Slaves[0].Label, d.out, s.Label, sk)}
	}
	d.out = sk
	return nil
}

// prepareProgram checks the program against the output key and settles
// how master records are keyed and how extra items can be confirmed.
func (d *Differ) prepareProgram() error {
	d.carriers = d.keys.Names()
	if d.prg == nil {
		return nil
	}
	if err := d.prg.CheckOutputKey(outputKeys(d.out)); err != nil {
		return &plan.Error{Msg: "the transform: " + err.Error()}
	}
	for _, name := range d.out.Names() {
		if d.ignore.Ignored(name) {
			return &plan.Error{Msg: fmt.Sprintf("the attributes to ignore (%s) match the slaves' key attribute %q; key attributes cannot be ignored", d.cfg.Names.Of("Ignore"), name)}
		}
	}
	var lost string
	for i, name := range d.keys.Names() {
		to, ok := d.prg.Carrier(name)
		if !ok {
			d.carriers, lost = nil, name
			break
		}
		d.carriers[i] = to
	}
	// The output key is the input key when the slaves have the master's
	// key schema and the transform leaves the key attributes alone.
	d.keyed = d.carriers == nil || d.out != d.keys
	for i, name := range d.keys.Names() {
		d.keyed = d.keyed || d.carriers[i] != name
	}
	if d.carriers != nil {
		return nil
	}
	why := fmt.Sprintf("the transform keeps no unchanged copy of the master's key attribute %s in the output items, so a slave item does not name the master item it was copied from", lost)
	switch {
	case d.cfg.DeleteExtra:
		return &plan.Error{Msg: fmt.Sprintf("%s: deleting extra items (%s) would delete slave items on a guess. Keep the master's key attributes in the output (passed through or renamed) to delete extra items, or only report them (%s)", why, d.cfg.Names.Of("DeleteExtra"), d.cfg.Names.Of("ScanForExtra"))}
	case d.cfg.ExtraOnly:
		return &plan.Error{Msg: why + ": extra items cannot be looked up in the master"}
	case d.cfg.ScanForExtra && (d.cfg.Method == MethodLookup || d.cfg.StartingKey != nil):
		return &plan.Error{Msg: fmt.Sprintf("%s: the lookup method cannot look extra items up in the master; use the merge method (%s merge, or auto, which chooses it)", why, d.cfg.Names.Of("Method"))}
	}
	return nil
}

// project is what the migration writes for master item m: keep is false
// when the filter rejects it; an error (*transform.ItemError) fails it.
func (d *Differ) project(m item) (out item, keep bool, err error) {
	if d.prg == nil {
		return m, true, nil
	}
	out, keep, err = d.prg.Apply(m)
	if err != nil || !keep {
		return nil, keep, err
	}
	if d.prg.HasTransform() {
		if err := transform.CheckKeys(out, outputKeys(d.out)); err != nil {
			return nil, false, err
		}
	}
	return out, true, nil
}

// logFailed logs a master item the program failed on, by its input key,
// and writes its report line for each of the slaves it counts against.
func (d *Differ) logFailed(slaves []*slave, inKey item, err error) {
	d.log.Warn(fmt.Sprintf("%s %s: failed: %v", sigils[KindFailed], d.keys.FormatKey(inKey), err))
	for _, s := range slaves {
		d.reportFailed(s, inKey, err.Error())
	}
}

// reportFailed writes the report line of a failed master item: kind
// failed, the master item's key, no action, the reason.
func (d *Differ) reportFailed(s *slave, inKey item, reason string) {
	if d.report == nil {
		return
	}
	d.reportMu.Lock()
	defer d.reportMu.Unlock()
	_ = d.report.Encode(ReportLine{Kind: KindFailed, Slave: s.Label, Key: keyJSON(inKey), Action: ActionNone, Reason: reason})
}

// inputKeyOf is the key of the master item a slave item names (see the
// top of the file); ok is false when it names none.
func (d *Differ) inputKeyOf(sv item) (item, bool) {
	if d.carriers == nil || sv == nil {
		return nil, false
	}
	k := make(item, len(d.carriers))
	for i, name := range d.keys.Names() {
		v, ok := sv[d.carriers[i]]
		if !ok {
			return nil, false
		}
		k[name] = v
	}
	if transform.CheckKeys(k, outputKeys(d.keys)) != nil {
		return nil, false
	}
	return k, true
}

// recKey is the merge record key of a transformed master item: its output
// KeyString, followed, when the output key is not the input key, by the
// input KeyString. KeyStrings are self-delimiting, so records sort by
// output key first. outKS is the output part.
func (d *Differ) recKey(out, in item) (rec, outKS string) {
	outKS = d.out.KeyString(out)
	if !d.keyed {
		return outKS, outKS
	}
	return outKS + d.keys.KeyString(in), outKS
}

// outPart is the output KeyString of a master record key (the merge's
// comparison calls it for every record: it allocates nothing).
func (d *Differ) outPart(rec string) string {
	if !d.keyed {
		return rec
	}
	n := scalarLen(rec, 0)
	if n > 0 && d.out.Range != "" {
		if n < len(rec) && rec[n] == 0 {
			if m := scalarLen(rec, n+1); m > 0 {
				return rec[:m]
			}
		}
		return rec
	}
	if n <= 0 {
		return rec
	}
	return rec[:n]
}

// scalarLen is the end of the KeyString scalar (type byte, uvarint
// length, value) that starts at pos, or -1 when s is malformed there.
func scalarLen(s string, pos int) int {
	if len(s)-pos < 2 {
		return -1
	}
	var n uint64
	var shift uint
	i := pos + 1
	for ; i < len(s); i++ {
		c := s[i]
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		shift += 7
		if shift > 63 {
			return -1
		}
	}
	if i >= len(s) || uint64(len(s)-i-1) < n {
		return -1
	}
	return i + 1 + int(n)
}

// decodeRec decodes a master record key into the output and input keys.
func (d *Differ) decodeRec(rec string) (out, in item, err error) {
	out, n, err := decodeKeyWith(d.out, rec)
	if err != nil {
		return nil, nil, err
	}
	if !d.keyed {
		if n != len(rec) {
			return nil, nil, badRecord(rec)
		}
		return out, out, nil
	}
	in, m, err := decodeKeyWith(d.keys, rec[n:])
	if err != nil || n+m != len(rec) {
		return nil, nil, badRecord(rec)
	}
	return out, in, nil
}

func badRecord(rec string) error {
	return fmt.Errorf("internal error: undecodable key record %q", rec)
}

// decodeKeyWith decodes the KeyString of schema ks at the start of s and
// returns the key and the length of its encoding.
func decodeKeyWith(ks dynamo.KeySchema, s string) (item, int, error) {
	b := []byte(s)
	pos := 0
	scalar := func() (types.AttributeValue, error) {
		if len(b)-pos < 2 {
			return nil, badRecord(s)
		}
		typ := b[pos]
		n, w := binary.Uvarint(b[pos+1:])
		if w <= 0 || uint64(len(b)-pos-1-w) < n {
			return nil, badRecord(s)
		}
		v := b[pos+1+w : pos+1+w+int(n)]
		pos += 1 + w + int(n)
		switch typ {
		case 'S':
			return &types.AttributeValueMemberS{Value: string(v)}, nil
		case 'N':
			return &types.AttributeValueMemberN{Value: string(v)}, nil
		case 'B':
			return &types.AttributeValueMemberB{Value: append([]byte(nil), v...)}, nil
		}
		return nil, badRecord(s)
	}
	k := item{}
	h, err := scalar()
	if err != nil {
		return nil, 0, err
	}
	k[ks.Hash] = h
	if ks.Range != "" {
		if pos >= len(b) || b[pos] != 0 {
			return nil, 0, badRecord(s)
		}
		pos++
		r, err := scalar()
		if err != nil {
			return nil, 0, err
		}
		k[ks.Range] = r
	}
	return k, pos, nil
}

// reading is what consistent re-reads found for one output key.
type reading struct {
	slave item // nil: the slave has no item
	// master is the transformed master item that maps to the key (nil:
	// none found), inKey its input key.
	master item
	inKey  item
	// failed is the program's error on the master item read by the
	// candidate's input key; namedFailed is set when the program fails on
	// the master item the slave item names (such a slave item is not
	// called extra).
	failed      error
	namedFailed bool
}

// reread reads the slave by every output key and the master by the
// input keys (inKeys[i] nil: unknown), and by the input key each slave
// item names, with consistent reads, and applies the program: what the
// candidates are now.
func (d *Differ) reread(ctx context.Context, s *slave, outKeys, inKeys []item) ([]reading, error) {
	slaveNow, err := d.batchGetAll(ctx, s.Table, outKeys, true, s)
	if err != nil {
		return nil, err
	}
	res := make([]reading, len(outKeys))
	tries := make([][]item, len(outKeys))
	var want []item
	for i, k := range outKeys {
		res[i].slave = slaveNow[d.out.KeyString(k)]
		if inKeys[i] != nil {
			tries[i] = append(tries[i], inKeys[i])
		}
		if named, ok := d.inputKeyOf(res[i].slave); ok && (inKeys[i] == nil || d.keys.KeyString(named) != d.keys.KeyString(inKeys[i])) {
			tries[i] = append(tries[i], named)
		}
		want = append(want, tries[i]...)
	}
	masterNow, err := d.batchGetAll(ctx, d.cfg.Master, want, true, s)
	if err != nil {
		return nil, err
	}
	for i, k := range outKeys {
		ks := d.out.KeyString(k)
		for t, in := range tries[i] {
			m, ok := masterNow[d.keys.KeyString(in)]
			if !ok {
				continue
			}
			out, keep, err := d.project(m)
			if err != nil {
				if t == 0 && inKeys[i] != nil {
					res[i].failed = err
				} else {
					res[i].namedFailed = true
				}
				continue
			}
			if keep && d.out.KeyString(out) == ks {
				res[i].master, res[i].inKey = out, in
				break
			}
		}
	}
	return res, nil
}

// batchGetAll reads the items with the given keys (duplicates allowed) in
// requests of at most BatchReadLimit keys, by the table's KeyString.
func (d *Differ) batchGetAll(ctx context.Context, t Table, keys []item, consistent bool, s *slave) (map[string]item, error) {
	found := map[string]item{}
	seen := map[string]bool{}
	var batch []item
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := d.batchGetInto(ctx, t, batch, consistent, s.st, s.addRCU, found)
		batch = batch[:0]
		return err
	}
	for _, k := range keys {
		ks := t.keys.KeyString(k)
		if seen[ks] {
			continue
		}
		seen[ks] = true
		batch = append(batch, t.keys.Key(k))
		if len(batch) == d.cfg.BatchReadLimit {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return found, nil
}

// describeProgram is the log's account of the program.
func (d *Differ) describeProgram() string {
	if d.prg == nil {
		return ""
	}
	var parts []string
	if d.prg.HasFilter() {
		parts = append(parts, "filtered")
	}
	if d.prg.HasTransform() {
		parts = append(parts, "transformed")
	}
	s := fmt.Sprintf("; the master is %s, matched by the slaves' key %s", strings.Join(parts, " and "), d.out)
	if d.carriers == nil {
		s += "; extra items are confirmed on the slave alone (the output items do not carry the master key)"
	}
	return s
}
