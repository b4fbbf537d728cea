package diff

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/pkg/stats"
)

// The merge method: every table is scanned once (the master and each
// slave at the same time, Parallel segments each), every item is reduced
// to its exact key and a digest of its compared attributes (digest.go),
// and the records are kept by key-hash partition in a store that spills
// to disk past the memory limit (spill.go). Once the scans are done the
// partitions are compared one at a time: a key only in the master is a
// missing candidate, only in a slave an extra candidate, in both with
// different digests a differing candidate. The scans are eventually
// consistent and not simultaneous, so each candidate is read again from
// both sides with consistent reads, compared with Compare, and only what
// is confirmed is reported or repaired (with the lookup's repair code).

// recordBytes estimates the memory a record takes while compared (key,
// digest, the rec and string headers).
const recordBytes = 96

// partitions chooses the number of partitions so that one partition of
// every table fits in a quarter of the memory limit.
func partitions(total tableSize, sides int, limit int64) int {
	est := (total.items + int64(sides)) * recordBytes
	p := est * 4 / max(limit, 1)
	if p < 16 {
		return 16
	}
	n := 1 << bits.Len64(uint64(p))
	return min(n, 4096)
}

func (d *Differ) runMerge(ctx context.Context) error {
	limit := d.cfg.MemoryLimit
	if limit <= 0 {
		limit = DefaultMemoryLimit
	}
	var total tableSize
	for _, t := range d.sizes {
		total.items += t.items
	}
	names := []string{d.cfg.Master.Label}
	for _, s := range d.slaves {
		names = append(names, s.Label)
	}
	parts := partitions(total, len(names), limit)

	var (
		dir string
		cp  *checkpointFile
		ck  *checkpointer
	)
	if d.cfg.StateDir != "" {
		dir = filepath.Join(d.cfg.StateDir, "diff-"+d.resumeID())
		var err error
		if cp, err = d.openResume(dir, names); err != nil {
			return err
		}
		if cp != nil {
			parts = cp.Parts
		}
	}
	mkdir := func() (string, error) {
		if dir != "" {
			return dir, nil
		}
		var err error
		dir, err = os.MkdirTemp("", "ddbsync-diff-spill-")
		if err != nil {
			return "", fmt.Errorf("spill directory: %w", err)
		}
		return dir, nil
	}
	st := newStore(len(names), d.cfg.Parallel, parts, limit, mkdir)
	st.log = d.log
	if d.cfg.StateDir != "" {
		st.dir = dir
		ck = &checkpointer{st: st, path: filepath.Join(dir, "checkpoint.json"), id: d.resumeID(), names: names}
		if cp != nil {
			if err := d.restore(st, cp); err != nil {
				return err
			}
			done := 0
			for _, sd := range st.sides {
				for _, g := range sd.segs {
					if g.done {
						done++
					}
				}
			}
			for _, s := range d.slaves {
				s.st.Scanned.Add(st.sides[0].items)
			}
			d.log.Info(fmt.Sprintf("merge: resuming from %s: %d of %d scan segments done, %d master items already scanned",
				dir, done, len(names)*d.cfg.Parallel, st.sides[0].items))
		}
	}
	err := d.mergeScan(ctx, st, ck)
	if err == nil && ck != nil {
		err = ck.page()
	}
	if err == nil {
		d.log.Debug(fmt.Sprintf("merge: scans done; comparing %d partitions (%d spill rounds, %d bytes in spill files)", st.parts, st.spills.Load(), st.spilled.Load()))
		err = d.mergeCompare(ctx, st)
	}
	if dir != "" && (err == nil || d.cfg.StateDir == "") {
		// Finished (or not resumable): the state is of no further use.
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			d.log.Warn(fmt.Sprintf("merge: could not remove %s: %v", dir, rerr))
		}
	} else if err != nil && dir != "" {
		d.log.Info(fmt.Sprintf("merge: stopped; run the same command again (same --state-dir) to continue from the state in %s", dir))
	}
	return err
}

// mergeScan scans the master and every slave at once into the store.
func (d *Differ) mergeScan(ctx context.Context, st *store, ck *checkpointer) error {
	g, gctx := errgroup.WithContext(ctx)
	tables := append([]Table{d.cfg.Master}, make([]Table, len(d.slaves))...)
	for i, s := range d.slaves {
		tables[i+1] = s.Table
	}
	for i, t := range tables {
		for seg := range d.cfg.Parallel {
			if st.sides[i].segs[seg].done {
				continue
			}
			g.Go(func() error { return d.mergeScanSegment(gctx, st, st.sides[i], t, seg, ck) })
		}
	}
	return g.Wait()
}

// mergeScanSegment scans one segment of one table into the store, from
// its position (the beginning, or where a resumed run stopped), writing
// a checkpoint after every page when ck is set.
func (d *Differ) mergeScanSegment(ctx context.Context, st *store, sd *side, t Table, seg int, ck *checkpointer) error {
	start := sd.segs[seg].start
	var (
		charge   func(float64)
		retried  func(n, th int64)
		scanned  func(n int64)
		slaveOne *slave
	)
	if sd.n == 0 {
		charge = func(u float64) {
			for _, s := range d.slaves {
				s.st.ConsumedRCU.Add(u / float64(len(d.slaves)))
			}
		}
		retried = func(n, th int64) {
			for _, s := range d.slaves {
				s.st.Retries.Add(n)
				s.st.Throttles.Add(th)
			}
		}
		scanned = func(n int64) {
			for _, s := range d.slaves {
				s.st.Scanned.Add(n)
			}
		}
	} else {
		slaveOne = d.slaves[sd.n-1]
		charge = slaveOne.addRCU
		retried = func(n, th int64) {
			slaveOne.st.Retries.Add(n)
			slaveOne.st.Throttles.Add(th)
		}
		scanned = func(int64) {}
	}
	g := digester{ignore: d.ignore}
	var b batch
	for {
		in := &dynamodb.ScanInput{
			TableName:              aws.String(t.Name),
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
			ExclusiveStartKey:      start,
		}
		if d.cfg.Parallel > 1 {
			in.Segment = aws.Int32(int32(seg))
			in.TotalSegments = aws.Int32(int32(d.cfg.Parallel))
		}
		if d.cfg.ScanLimit > 0 {
			in.Limit = aws.Int32(d.cfg.ScanLimit)
		}
		var out *dynamodb.ScanOutput
		var tally stats.Entry
		err := d.retry(ctx, &tally, t.Name, "Scan", func() error {
			var err error
			out, err = t.Client.Scan(ctx, in, countRetries(&tally))
			return err
		})
		if n, th := tally.Retries.Load(), tally.Throttles.Load(); n+th > 0 {
			retried(n, th)
		}
		if err != nil {
			return err
		}
		if out.ConsumedCapacity != nil {
			charge(aws.ToFloat64(out.ConsumedCapacity.CapacityUnits))
		}
		b.reset()
		for _, it := range out.Items {
			key := d.keys.KeyString(it)
			b.add(st.partitionOf(key), key, g.sum(it))
		}
		lek, n := out.LastEvaluatedKey, int64(len(out.Items))
		if err := st.add(sd, &b, func() {
			sd.segs[seg] = segPos{start: lek, done: len(lek) == 0}
			sd.items += n
		}); err != nil {
			return err
		}
		scanned(n)
		if ck != nil {
			if err := ck.page(); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		start = out.LastEvaluatedKey
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// mcand is a candidate difference found by comparing the scans.
type mcand struct {
	key        string // KeyString
	kind       string
	fromMaster bool // the master scan saw the item (counts in Scanned)
}

// mergeCompare compares the partitions one at a time and confirms the
// candidates, gathered over partitions so that the confirming reads go in
// full batches.
func (d *Differ) mergeCompare(ctx context.Context, st *store) error {
	extras := d.cfg.ScanForExtra || d.cfg.DeleteExtra
	pending := make([][]mcand, len(d.slaves))
	round := d.cfg.BatchReadLimit * d.cfg.Checkers
	for p := range st.parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		master, err := st.load(st.sides[0], p)
		if err != nil {
			return err
		}
		for i, s := range d.slaves {
			recs, err := st.load(st.sides[i+1], p)
			if err != nil {
				return err
			}
			pending[i] = append(pending[i], d.mergeJoin(s, master, recs, extras)...)
			if len(pending[i]) >= round {
				if err := d.confirmCandidates(ctx, s, pending[i]); err != nil {
					return err
				}
				pending[i] = nil
			}
		}
		st.release(p)
	}
	for i, s := range d.slaves {
		if err := d.confirmCandidates(ctx, s, pending[i]); err != nil {
			return err
		}
	}
	return nil
}

// mergeJoin walks two key-sorted record lists and returns the
// candidates, counting what matches.
func (d *Differ) mergeJoin(s *slave, master, slave []rec, extras bool) []mcand {
	var cands []mcand
	debug := d.cfg.Verbose && s.log.Core().Enabled(zap.DebugLevel)
	i, j := 0, 0
	for i < len(master) || j < len(slave) {
		switch {
		case j == len(slave) || (i < len(master) && master[i].key < slave[j].key):
			cands = append(cands, mcand{key: master[i].key, kind: KindMissing, fromMaster: true})
			i++
		case i == len(master) || slave[j].key < master[i].key:
			if extras {
				cands = append(cands, mcand{key: slave[j].key, kind: KindExtra})
			}
			j++
		default:
			if master[i].dig == slave[j].dig {
				s.st.Matching.Add(1)
				if debug {
					if k, err := d.decodeKey(master[i].key); err == nil {
						s.log.Debug("= " + d.keys.FormatKey(k))
					}
				}
			} else {
				cands = append(cands, mcand{key: master[i].key, kind: KindDiffering, fromMaster: true})
			}
			i++
			j++
		}
	}
	return cands
}

// confirmCandidates reads every candidate again from both sides with
// consistent reads (batched, several batches at once), reports or
// repairs what is confirmed, and counts the rest as resolved.
func (d *Differ) confirmCandidates(ctx context.Context, s *slave, cands []mcand) error {
	if len(cands) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.cfg.Checkers)
	for start := 0; start < len(cands); start += d.cfg.BatchReadLimit {
		batch := cands[start:min(start+d.cfg.BatchReadLimit, len(cands))]
		g.Go(func() error { return d.confirmBatch(gctx, s, batch) })
	}
	return g.Wait()
}

func (d *Differ) confirmBatch(ctx context.Context, s *slave, cands []mcand) error {
	keys := make([]item, len(cands))
	for i, c := range cands {
		k, err := d.decodeKey(c.key)
		if err != nil {
			return err
		}
		keys[i] = k
	}
	masterNow, err := d.batchGet(ctx, d.cfg.Master, keys, true, s.st, s.addRCU)
	if err != nil {
		return err
	}
	slaveNow, err := d.batchGet(ctx, s.Table, keys, true, s.st, s.addRCU)
	if err != nil {
		return err
	}
	extras := d.cfg.ScanForExtra || d.cfg.DeleteExtra
	rp := d.newRepairs()
	for i, c := range cands {
		m, mok := masterNow[c.key]
		sv, sok := slaveNow[c.key]
		var now candidate
		switch {
		case mok && !sok:
			now = candidate{kind: KindMissing, key: keys[i], master: m}
		case !mok && sok && extras:
			now = candidate{kind: KindExtra, key: keys[i], slave: sv}
		case mok && sok:
			if attrs := Compare(m, sv, d.ignore); attrs != nil {
				now = candidate{kind: KindDiffering, key: keys[i], master: m, slave: sv, attrs: attrs}
			}
		}
		if now.kind == "" {
			// Equal now, gone from both, or (without extra items
			// reported) only left in the slave: changed during the scans.
			s.resolved.Add(1)
			if c.fromMaster && (mok || !sok) {
				s.st.Matching.Add(1)
			}
			s.log.Debug(fmt.Sprintf("%s: %s candidate resolved on a consistent read", d.keys.FormatKey(keys[i]), c.kind))
			continue
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

// decodeKey turns a KeyString back into the key item.
func (d *Differ) decodeKey(ks string) (item, error) {
	bad := fmt.Errorf("internal error: undecodable key record %q", ks)
	b := []byte(ks)
	scalar := func() (types.AttributeValue, error) {
		if len(b) < 2 {
			return nil, bad
		}
		typ := b[0]
		n, w := binary.Uvarint(b[1:])
		if w <= 0 || uint64(len(b)-1-w) < n {
			return nil, bad
		}
		v := b[1+w : 1+w+int(n)]
		b = b[1+w+int(n):]
		switch typ {
		case 'S':
			return &types.AttributeValueMemberS{Value: string(v)}, nil
		case 'N':
			return &types.AttributeValueMemberN{Value: string(v)}, nil
		case 'B':
			return &types.AttributeValueMemberB{Value: append([]byte(nil), v...)}, nil
		}
		return nil, bad
	}
	k := item{}
	h, err := scalar()
	if err != nil {
		return nil, err
	}
	k[d.keys.Hash] = h
	if d.keys.Range != "" {
		if len(b) == 0 || b[0] != 0 {
			return nil, bad
		}
		b = b[1:]
		r, err := scalar()
		if err != nil {
			return nil, err
		}
		k[d.keys.Range] = r
	}
	if len(b) != 0 {
		return nil, bad
	}
	return k, nil
}
